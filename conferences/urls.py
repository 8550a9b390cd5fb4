from django.urls import path

from conferences import views

app_name = "conferences"

urlpatterns = [
    path("", views.conference_list, name="list"),
    path("conferences/track/", views.track, name="track"),
    path("conferences/<int:pk>/", views.conference_detail, name="detail"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:pk>/delete/", views.alert_delete, name="alert-delete"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("api/conferences/", views.api_conferences, name="api-list"),
    path("api/conferences/<str:conference_id>/history/", views.api_history, name="api-history"),
    path("conferences/<int:pk>/history.<str:fmt>", views.conference_export, name="history-export"),
]
