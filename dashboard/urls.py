from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.template import loader
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from conferences.views import server_error as conferences_server_error

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
    path("", include("conferences.urls")),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's).
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
        name="favicon",
    ),
]

# Errors: Django's own handlers render templates/400.html, 403.html and 404.html (the
# product's pages, with navigation). A 500 keeps the conferences app's answer (JSON for
# the API, 503 when the database is down) and shows people the product's 500 page.


def server_error(request):
    answer = conferences_server_error(request)
    if not answer["Content-Type"].startswith("text/plain"):
        return answer
    # Rendered without the request, like Django's own: no user, no database query.
    page = loader.render_to_string(
        "500.html", {"status": answer.status_code, "message": answer.content.decode()}
    )
    return HttpResponse(page, status=answer.status_code)


handler500 = server_error
