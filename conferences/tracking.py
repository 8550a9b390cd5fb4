"""The registry: Catapult accounts and the conference ids confwatch tracks."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from conferences.models import Account, Conference

MAX_IDS_PER_REQUEST = 200


def add_account(*, name, user_id, token, secret, base_url, request_budget=1.0):
    """Create an account, or update the one with this name (new credentials unpause it)."""
    account = Account.objects.filter(name=name).first() or Account(name=name)
    account.user_id = user_id
    account.base_url = base_url
    account.request_budget = request_budget
    account.set_credentials(token=token, secret=secret)
    account.paused_until = None
    account.problem, account.problem_message, account.problem_at = "", "", None
    account.full_clean()
    account.save()
    return account


def parse_conference_ids(text):
    """Split pasted ids on commas and whitespace; refuse what cannot be an id."""
    ids = []
    for raw in text.replace(",", " ").split():
        if len(raw) > 100 or not raw.isprintable() or "/" in raw:
            raise ValidationError(f"{raw[:40]!r} is not a conference id.")
        if raw not in ids:
            ids.append(raw)
    if not ids:
        raise ValidationError("Give at least one conference id.")
    if len(ids) > MAX_IDS_PER_REQUEST:
        raise ValidationError(f"Track at most {MAX_IDS_PER_REQUEST} conferences at once.")
    return ids


def track_conferences(*, account, conference_ids, label="", tags=()):
    """Track each id on the account; ids already tracked are left as they are.

    Returns (added, already_tracked), two lists of conference ids.
    """
    tags = sorted({tag.strip().lower() for tag in tags if tag.strip()})
    with transaction.atomic():
        existing = set(
            Conference.objects.filter(
                account=account, conference_id__in=conference_ids
            ).values_list("conference_id", flat=True)
        )
        added = [cid for cid in conference_ids if cid not in existing]
        Conference.objects.bulk_create(
            [
                Conference(account=account, conference_id=cid, label=label, tags=list(tags))
                for cid in added
            ],
            ignore_conflicts=True,
        )
    return added, [cid for cid in conference_ids if cid in existing]


class NotTracked(LookupError):
    pass


def find_conference(conference_id, *, account_name=None):
    """The tracked conference with this Catapult id; account_name settles an id that is
    tracked on several accounts. Raises NotTracked or LookupError with a clear message."""
    matches = Conference.objects.select_related("account").filter(conference_id=conference_id)
    if account_name:
        matches = matches.filter(account__name=account_name)
    matches = list(matches[:2])
    if not matches:
        raise NotTracked(f"{conference_id} is not tracked.")
    if len(matches) > 1:
        raise LookupError(f"{conference_id} is tracked on several accounts; name the account.")
    return matches[0]


def resume(conferences):
    """Unpause conferences; they are due at once."""
    return conferences.update(paused=False, next_poll_at=timezone.now())
