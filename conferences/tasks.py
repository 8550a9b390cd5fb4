from celery import shared_task

from conferences import polling


@shared_task(ignore_result=True)
def poll_round():
    """One round of polling; beat sends it every CONFWATCH_ROUND_SECONDS with `expires`."""
    summary = polling.poll_round()
    return summary.line()
