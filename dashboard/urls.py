from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

# Sign in and out, and change one's own password. Django's password reset (a mailed link)
# is switched off: an admin sets a new password in the admin or with changepassword.
account_urls = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(account_urls)),
    path("", include("conferences.web.urls")),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's).
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
        name="favicon",
    ),
]

# Errors: Django's own handlers render templates/400.html, 403.html and 404.html (the
# product's pages, with navigation); the 500 handler answers JSON for the API and 503 when
# the database is down.
handler500 = "conferences.web.views.health.server_error"
