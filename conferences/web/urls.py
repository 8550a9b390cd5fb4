from django.urls import path

from conferences.web.views import (
    account,
    acknowledgements,
    alerts,
    api,
    callbacks,
    calls,
    conference,
    health,
    maintenance,
    metrics,
    overview,
    sharing,
    track,
)

app_name = "conferences"

urlpatterns = [
    path("", overview.conference_list, name="list"),
    path("conferences/track/", track.track, name="track"),
    path("conferences/<int:pk>/", conference.conference_detail, name="detail"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("conferences/<int:pk>/pause/", overview.conference_pause, name="pause"),
    path("conferences/<int:pk>/resume/", overview.conference_resume, name="resume"),
    path("conferences/<int:pk>/untrack/", overview.conference_untrack, name="untrack"),
    path("preferences/", account.preferences, name="preferences"),
    path("alerts/<int:pk>/delete/", alerts.alert_delete, name="alert-delete"),
    path("alerts/<int:pk>/test/", alerts.alert_test, name="alert-test"),
    path("unsubscribe/<str:token>/", alerts.unsubscribe, name="unsubscribe"),
    path("api/conferences/", api.api_conferences, name="api-list"),
    path("api/conferences/<str:conference_id>/history/", api.api_history, name="api-history"),
    path("health/", health.health, name="health"),
    path("metrics", metrics.metrics, name="metrics"),
    # Acknowledgements and share links.
    path("acknowledge/<str:token>/", acknowledgements.acknowledge_alert, name="acknowledge-alert"),
    path(
        "conferences/<int:pk>/acknowledge/",
        acknowledgements.acknowledge_conference,
        name="acknowledge-conference",
    ),
    path("conferences/<int:pk>/share/", sharing.share_create, name="share-create"),
    path("share-links/<int:pk>/revoke/", sharing.share_revoke, name="share-revoke"),
    path("share/<str:token>/", sharing.shared_conference, name="shared"),
]

# Members and callbacks.
urlpatterns += [
    path("callbacks/<str:secret>/", callbacks.callback, name="callback"),
    path("calls/", calls.call_search, name="call-search"),
    path("maintenance/", maintenance.maintenance_list, name="maintenance"),
    path("maintenance/<int:pk>/end/", maintenance.maintenance_end, name="maintenance-end"),
    path("api/calls/<str:call_id>/", api.api_call, name="api-call"),
    path(
        "conferences/<int:pk>/history.<str:fmt>",
        conference.conference_export,
        name="history-export",
    ),
]
