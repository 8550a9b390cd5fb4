from django.urls import path

from conferences.web import views

app_name = "conferences"

urlpatterns = [
    path("", views.conference_list, name="list"),
    path("conferences/track/", views.track, name="track"),
    path("conferences/<int:pk>/", views.conference_detail, name="detail"),
    path("alerts/", views.alerts, name="alerts"),
    path("conferences/<int:pk>/pause/", views.conference_pause, name="pause"),
    path("conferences/<int:pk>/resume/", views.conference_resume, name="resume"),
    path("conferences/<int:pk>/untrack/", views.conference_untrack, name="untrack"),
    path("preferences/", views.preferences, name="preferences"),
    path("alerts/<int:pk>/delete/", views.alert_delete, name="alert-delete"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("api/conferences/", views.api_conferences, name="api-list"),
    path("api/conferences/<str:conference_id>/history/", views.api_history, name="api-history"),
    path("health/", views.health, name="health"),
    # Rules, acknowledgements and share links (issue 12).
    path("acknowledge/<str:token>/", views.acknowledge_alert, name="acknowledge-alert"),
    path(
        "conferences/<int:pk>/acknowledge/",
        views.acknowledge_conference,
        name="acknowledge-conference",
    ),
    path("conferences/<int:pk>/share/", views.share_create, name="share-create"),
    path("share-links/<int:pk>/revoke/", views.share_revoke, name="share-revoke"),
    path("share/<str:token>/", views.shared_conference, name="shared"),
]

# Members and callbacks.
urlpatterns += [
    path("callbacks/<str:secret>/", views.callback, name="callback"),
    path("calls/", views.call_search, name="call-search"),
    path("api/calls/<str:call_id>/", views.api_call, name="api-call"),
    path("conferences/<int:pk>/history.<str:fmt>", views.conference_export, name="history-export"),
]
