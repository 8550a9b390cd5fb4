"""The Celery app: Django settings under the CELERY_ namespace, beat schedule in code."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def fresh_log_context(task_id=None, **kwargs):
    """A task's log lines start without the account or conference of the one before;
    its request id is the task's id."""
    from conferences.ops import logs

    logs.start(request_id=task_id)


@task_prerun.connect
@task_postrun.connect
def reuse_database_connection(**kwargs):
    """What Django does around each request: close the database connection when it is
    past CONN_MAX_AGE or unusable after an error (CELERY_DB_REUSE_MAX keeps Celery from
    closing it after every task); the next query checks it (CONN_HEALTH_CHECKS)."""
    from django.db import close_old_connections

    close_old_connections()


@app.on_after_finalize.connect
def schedule_polling(sender, **kwargs):
    from django.conf import settings

    seconds = settings.CONFWATCH_ROUND_SECONDS
    # One short round every few seconds; a round nobody picked up in time is dropped,
    # the next one covers the same conferences.
    sender.add_periodic_task(
        seconds,
        sender.signature("conferences.tasks.poll_round", expires=seconds),
        name="poll a round of due conferences",
    )
    alert_seconds = settings.CONFWATCH_ALERT_SECONDS
    sender.add_periodic_task(
        alert_seconds,
        sender.signature("conferences.tasks.send_alerts", expires=alert_seconds),
        name="send due alerts",
    )
    rule_seconds = settings.CONFWATCH_RULE_SECONDS
    sender.add_periodic_task(
        rule_seconds,
        sender.signature("conferences.tasks.evaluate_rules", expires=rule_seconds),
        name="evaluate alert rules",
    )


@app.on_after_finalize.connect
def schedule_retention(sender, **kwargs):
    from django.conf import settings

    seconds = settings.CONFWATCH_RETENTION_SECONDS
    sender.add_periodic_task(
        seconds,
        sender.signature("conferences.tasks.prune_old_records", expires=seconds),
        name="prune records past their retention",
    )
