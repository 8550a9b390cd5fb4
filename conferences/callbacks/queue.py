"""Queueing the processing of callback events: one queued task per account at most
(ops/queued.py), queued after the commit that stored the events it processes."""

from conferences.ops import queued

# The task that processes an account's waiting events (conferences/tasks.py).
PROCESS_TASK = "conferences.tasks.process_callbacks"

# While this key exists, a task processing the account's waiting events is queued (and
# not started): more events of the account need no other task. It lapses after this long
# (seconds), should that task be lost.
QUEUED_KEY = "confwatch:callbacks-queued:{account_pk}"
QUEUED_KEY_SECONDS = 300


def queue_processing(event_pk, *, account_pk, countdown=0):
    """Have the account's waiting events processed (in `countdown` seconds): one queued
    task per account at most, however many events arrive (the task processes the
    waiting events, in order)."""
    queued.queue_once(
        QUEUED_KEY.format(account_pk=account_pk),
        task=PROCESS_TASK,
        args=(account_pk,),
        lapse=QUEUED_KEY_SECONDS,
        countdown=countdown,
        value=event_pk,
    )


def processing_started(account_pk):
    """The account's queued task starts: events from now on queue another one."""
    queued.started(QUEUED_KEY.format(account_pk=account_pk))
