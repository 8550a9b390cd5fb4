"""Polling: one round claims the due conferences (claims.py), fetches them within each
account's request budget (dispatch.py), then records what was observed (results.py).

Blast radius: one account's failure (a budget that is not a number, an unreadable secret,
any error in its claim, its sending or the recording of its answers) stops only its own
share of the round; it is recorded on the account (PollStatus.ACCOUNT_ERROR, logged once
per episode) and the other accounts are polled on time. An answer the database refuses
does not lose the round either (results.py).
"""

import time
import uuid

from django.conf import settings

from conferences.models import Account
from conferences.ops import metrics
from conferences.polling import claims, dispatch, results
from conferences.recording import observations


@metrics.ROUND_SECONDS.time()
def poll_round(*, horizon=None, force=False, conference_ids=None, conference_pks=None):
    """Poll one round: every account's due conferences, within its budget.

    With force=True every tracked conference that is neither paused nor completed is
    polled whether due or not (still paced by each account's budget). conference_ids
    (Catapult ids, on any account) or conference_pks (tracked conferences) narrow it.

    No garbage collector pass runs during the round (observations.collector_paused): a
    round's objects hold no cycles (a round of 10,000 left 0 to 5 for the collector),
    and its passes walked them all, over and over: 30 ms of a round of 2,000, 250 ms of
    one of 10,000, growing faster than the round. The collector resumes once the round's
    objects are gone, so its next pass is short.
    """
    with observations.collector_paused():
        return claim_fetch_record(
            horizon=settings.CONFWATCH_ROUND_SECONDS if horizon is None else horizon,
            force=force,
            conference_ids=conference_ids,
            conference_pks=conference_pks,
        )


def claim_fetch_record(*, horizon, force, conference_ids, conference_pks):
    """The round itself: claim each account's share, send the requests, record the
    answers (see poll_round)."""
    token = uuid.uuid4()
    deadline = time.time() + settings.CONFWATCH_ROUND_DEADLINE
    plans = []
    accounts = Account.objects.order_by("pk")
    if conference_pks is not None:
        # A few chosen conferences (poll now, a callback's confirming poll): only their
        # accounts' rows are locked.
        accounts = accounts.filter(conferences__pk__in=conference_pks).distinct()
    for account in accounts:
        try:
            # Its budget and its client first: an account that cannot be polled claims
            # nothing (client_for keeps the client for fetch_plans).
            dispatch.client_for(account, pool_size=dispatch.concurrency_for(account))
            plan = claims.claim_due_conferences(
                account_pk=account.pk,
                token=token,
                horizon=horizon,
                deadline=deadline,
                force=force,
                conference_ids=conference_ids,
                conference_pks=conference_pks,
            )
        except Exception as error:
            dispatch.account_failed(account, error, during="claiming its conferences")
            continue
        if plan is not None:
            plans.append(plan)
    if not plans:
        return results.RoundSummary()
    dispatch.fetch_plans(plans)
    return results.record_round(plans, token=token)
