from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from conferences import alerts, callback_processing, outages, polling, retention, support


@shared_task(ignore_result=True)
def poll_round():
    """One round of polling; beat sends it every CONFWATCH_ROUND_SECONDS with `expires`.
    When the round recorded events, their alerts go out at once."""
    return outages.run(run_round, task="polling round")


def run_round():
    summary = polling.poll_round()
    if summary.events:
        send_alerts.apply_async(expires=settings.CONFWATCH_ALERT_SECONDS * 2)
    return summary.line()


@shared_task(ignore_result=True)
def poll_now(conference_pks, user_pk):
    """Poll chosen conferences now (the admin's "poll now" action, within the budget);
    each outcome goes to the admin log for the user who asked."""
    result = support.poll_now(conference_pks=conference_pks, user_pk=user_pk)
    if result.summary and result.summary.events:
        send_alerts.apply_async(expires=settings.CONFWATCH_ALERT_SECONDS * 2)
    return result.summary.line() if result.summary else "nothing to poll"


@shared_task(ignore_result=True)
def send_alerts():
    """Fan out new events and send due alerts; beat sends it every
    CONFWATCH_ALERT_SECONDS with `expires`."""
    return outages.run(lambda: alerts.run_pass().line(), task="alert pass")


@shared_task(ignore_result=True)
def prune_old_records():
    """Delete history, events, poll errors and deliveries past their retention age, in
    small batches; beat sends it every CONFWATCH_RETENTION_SECONDS with `expires`."""
    return outages.run(lambda: retention.prune().line(), task="retention")


@shared_task(
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    max_retries=3,
    retry_backoff=True,
    retry_jitter=False,
)
def process_callback(event_pk):
    """Apply one received callback event, then confirm it with a poll of its conference
    (within the budget); alerts go out at once when it recorded events."""
    processed = callback_processing.process(event_pk)
    summary = None
    if processed.conference_pk is not None:
        summary = callback_processing.confirm(processed.conference_pk)
    if processed.events or (summary and summary.events):
        send_alerts.apply_async(expires=settings.CONFWATCH_ALERT_SECONDS * 2)
    return processed.message


@shared_task(ignore_result=True)
def confirm_callback(conference_pk):
    """The confirming poll of the last callbacks of a burst (callback_processing.confirm)."""
    summary = polling.poll_round(force=True, conference_pks=[conference_pk])
    if summary.events:
        send_alerts.apply_async(expires=settings.CONFWATCH_ALERT_SECONDS * 2)
    return summary.line()
