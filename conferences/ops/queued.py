"""One queued task per key at most: however often work is asked for, a task that has
not started yet takes it all, so a burst of requests makes one task, not a queue of them.

`queue_once(key, ...)` queues the task unless the key says one is queued already; the
task calls `started(key)` first thing, so that work asked for from then on queues the
next one. The key lapses after `lapse` seconds, should the queued task be lost or
expire unrun. Tasks are queued by name (conferences.tasks imports the services).
"""

import logging

import redis
from celery import signature
from django.conf import settings

logger = logging.getLogger(__name__)

_redis = None


def redis_client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=0.5, socket_connect_timeout=0.5
        )
    return _redis


def queue_once(key, *, task, lapse, args=(), countdown=None, expires=None, value=1):
    """Queue `task` unless one queued under `key` has not started yet. True when queued.
    A broker error is logged and returns False: the caller's work is stored, and beat's
    periodic task or a later request picks it up."""
    try:
        if not redis_client().set(key, value, nx=True, ex=max(1, round(lapse))):
            return False
        signature(task, args=args).apply_async(countdown=countdown or None, expires=expires)
    except Exception as error:  # noqa: BLE001 - see above
        logger.error("%s not queued: %s", task, type(error).__name__)
        return False
    return True


def started(key):
    """The task queued under `key` starts: work asked for from now on queues another."""
    try:
        redis_client().delete(key)
    except redis.RedisError as error:
        logger.warning("queue key %s not cleared: %s", key, type(error).__name__)
