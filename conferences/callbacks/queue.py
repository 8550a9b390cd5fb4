"""Queueing the processing of callback events: one queued task per account at most.

The task is named, not imported (conferences.tasks imports the processing, which
imports this), and is queued after the commit that stored the events it processes.
"""

import logging

import redis
from celery import signature
from django.conf import settings

logger = logging.getLogger(__name__)

# The task that processes an account's waiting events (conferences/tasks.py).
PROCESS_TASK = "conferences.tasks.process_callbacks"

_redis = None


def redis_client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=0.5, socket_connect_timeout=0.5
        )
    return _redis


# While this key exists, a task processing the account's waiting events is queued (and
# not started): more events of the account need no other task. It lapses after this long
# (seconds), should that task be lost.
QUEUED_KEY = "confwatch:callbacks-queued:{account_pk}"
QUEUED_KEY_SECONDS = 300


def queue_processing(event_pk, *, account_pk, countdown=0):
    """Have the account's waiting events processed (in `countdown` seconds): one queued
    task per account at most, however many events arrive (the task processes the
    waiting events, in order)."""
    try:
        key = QUEUED_KEY.format(account_pk=account_pk)
        if not redis_client().set(key, event_pk, nx=True, ex=QUEUED_KEY_SECONDS):
            return
        signature(PROCESS_TASK, args=(account_pk,)).apply_async(countdown=countdown or None)
    except Exception as error:  # noqa: BLE001 - the event is stored; a later copy requeues it
        logger.error("callback event %s not queued: %s", event_pk, type(error).__name__)


def processing_started(account_pk):
    """The account's queued task starts: events from now on queue another one."""
    try:
        redis_client().delete(QUEUED_KEY.format(account_pk=account_pk))
    except redis.RedisError as error:
        logger.warning("callback queue key not cleared: %s", type(error).__name__)
