"""Celery tasks: a few lines each, calling one service. Each carries its name
(`name=`), so queued tasks and beat entries resolve wherever the code lives."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from conferences.alerting import fanout, rules
from conferences.callbacks import processing
from conferences.ops import outages, queued
from conferences.polling import rounds, support
from conferences.registry import retention


@shared_task(name="conferences.tasks.poll_round", ignore_result=True)
def poll_round():
    """One round of polling; beat sends it every CONFWATCH_ROUND_SECONDS with `expires`.
    When the round recorded events, their alerts go out at once."""
    return outages.run(run_round, task="polling round")


def run_round():
    summary = rounds.poll_round()
    if summary.events:
        queue_alert_pass()
    return summary.line()


@shared_task(name="conferences.tasks.poll_now", ignore_result=True)
def poll_now(conference_pks, user_pk):
    """Poll chosen conferences now (the admin's "poll now" action, within the budget);
    each outcome goes to the admin log for the user who asked."""
    result = support.poll_now(conference_pks=conference_pks, user_pk=user_pk)
    if result.summary and result.summary.events:
        queue_alert_pass()
    return result.summary.line() if result.summary else "nothing to poll"


@shared_task(name="conferences.tasks.send_alerts", ignore_result=True)
def send_alerts():
    """Fan out new events and send due alerts; beat sends it every
    CONFWATCH_ALERT_SECONDS with `expires`, and queue_alert_pass when events come."""
    queued.started(ALERT_PASS_KEY)
    return outages.run(lambda: fanout.run_pass(rules_too=False).line(), task="alert pass")


@shared_task(name="conferences.tasks.evaluate_rules", ignore_result=True)
def evaluate_rules():
    """Evaluate the alert rules; beat sends it every CONFWATCH_RULE_SECONDS with
    `expires`. What fired or resolved goes out in an alert pass at once."""
    return outages.run(run_rules, task="rule evaluation")


def run_rules():
    events = rules.evaluate(now=timezone.now())
    if events:
        queue_alert_pass()
    return f"{len(events)} rule events"


# While this key exists, an alert pass asked for by new events is queued and has not
# started: more events need no other pass (it fans out whatever is new when it runs).
ALERT_PASS_KEY = "confwatch:alert-pass-queued"


def queue_alert_pass():
    """Send the alerts of events just recorded at once: one queued pass at most. Under a
    busy hour every round and callback batch records events; a pass each would fill the
    workers with alert passes and leave the polling rounds waiting (make bench-desk)."""
    expires = settings.CONFWATCH_ALERT_SECONDS * 2
    queued.queue_once(ALERT_PASS_KEY, task=send_alerts.name, lapse=expires, expires=expires)


@shared_task(name="conferences.tasks.prune_old_records", ignore_result=True)
def prune_old_records():
    """Delete history, events, poll errors and deliveries past their retention age, in
    small batches; beat sends it every CONFWATCH_RETENTION_SECONDS with `expires`."""
    return outages.run(lambda: retention.prune().line(), task="retention")


@shared_task(
    name="conferences.tasks.process_callbacks",
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    max_retries=3,
    retry_backoff=True,
    retry_jitter=False,
)
def process_callbacks(account_pk):
    """Apply the account's waiting callback events, oldest first (queued at most once per
    account, however many arrive); they never poll, they mark their conference due for
    the budgeted rounds. Alerts go out at once when they recorded events."""
    processed = processing.process_waiting(account_pk)
    if any(result.events for result in processed):
        queue_alert_pass()
    return f"{len(processed)} callback events processed"
