"""The registry: Catapult accounts and the conference ids confwatch tracks."""

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from conferences.callbacks import queue
from conferences.models import Account, CallbackEvent, Conference

MAX_IDS_PER_REQUEST = 200
MAX_ID_ERRORS_SHOWN = 10

# A conference id confwatch accepts (docs/catapult-api.md §5.2): 1-100 characters, ASCII
# letters, digits and "-_.~" only (URL-unreserved, so an id is one path segment as it is),
# starting with a letter or digit, so "." and ".." (which HTTP resolves to the collection)
# are refused. Real ids look like "conf-ixaagbn5wcyskisiy". Ids are checked once, here,
# where they enter the registry.
CONFERENCE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}")
ID_SEPARATORS = re.compile(r"[\s,;]+")


def add_account(*, name, user_id, token, secret, base_url, request_budget=1.0):
    """Create an account, or update the one with this name (new credentials unpause it)."""
    account = Account.objects.filter(name=name).first() or Account(name=name)
    account.user_id = user_id
    account.base_url = base_url
    account.request_budget = request_budget
    account.set_credentials(token=token, secret=secret)
    # New credentials deserve a try at once; the problem shown ends with a good poll.
    account.paused_until = None
    account.full_clean()
    account.save()
    return account


def validate_conference_id(value):
    """Raise ValidationError, with the reason, unless value is a conference id we accept."""
    if not isinstance(value, str):
        raise ValidationError("A conference id must be text.", code="invalid_conference_id")
    if CONFERENCE_ID_PATTERN.fullmatch(value):
        return
    shown = repr(value[:40]) + ("…" if len(value) > 40 else "")
    if not value:
        reason = "it is empty"
    elif len(value) > 100:
        reason = f"it is {len(value)} characters long; at most 100 are allowed"
    elif not value[0].isascii() or not value[0].isalnum():
        reason = "it must start with a letter (a-z, A-Z) or a digit (0-9)"
    else:
        bad = next(char for char in value if not CONFERENCE_ID_PATTERN.fullmatch("a" + char))
        reason = f"it contains {bad!r}; only a-z, A-Z, 0-9 and - _ . ~ are allowed"
    raise ValidationError(
        f"{shown} is not a conference id: {reason}.", code="invalid_conference_id"
    )


def validate_conference_ids(conference_ids):
    """Raise one ValidationError naming every id that is refused (the first few of them)."""
    errors = []
    for conference_id in conference_ids:
        try:
            validate_conference_id(conference_id)
        except ValidationError as error:
            errors.extend(error.messages)
    if len(errors) > MAX_ID_ERRORS_SHOWN:
        hidden = len(errors) - MAX_ID_ERRORS_SHOWN
        errors = [*errors[:MAX_ID_ERRORS_SHOWN], f"... and {hidden} more ids that are refused."]
    if errors:
        raise ValidationError(errors)


def parse_conference_ids(text):
    """Split pasted ids on whitespace, commas and semicolons; refuse what is not an id."""
    ids = list(dict.fromkeys(raw for raw in ID_SEPARATORS.split(text) if raw))
    validate_conference_ids(ids)
    if not ids:
        raise ValidationError("Give at least one conference id.")
    if len(ids) > MAX_IDS_PER_REQUEST:
        raise ValidationError(f"Track at most {MAX_IDS_PER_REQUEST} conferences at once.")
    return ids


def track_conferences(*, account, conference_ids, label="", tags=()):
    """Track each id on the account; ids already tracked are left as they are.

    Returns (added, already_tracked), two lists of conference ids. Raises ValidationError,
    writing nothing, if any id is not one we accept (whatever path it came in by).
    """
    conference_ids = list(conference_ids)
    validate_conference_ids(conference_ids)
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
        if added:
            release_kept_callbacks(account, added)
    return added, [cid for cid in conference_ids if cid in existing]


def release_kept_callbacks(account, conference_ids):
    """Callback events kept about these ids while they were not tracked wait again, and
    are processed once the tracking commits (conferences/callbacks/processing.py)."""
    kept = CallbackEvent.objects.filter(
        account=account, conference_id__in=conference_ids, awaiting_tracking=True
    )
    first = kept.order_by("pk").values_list("pk", flat=True).first()
    if first is None:
        return
    kept.update(processed_at=None, awaiting_tracking=False, result="waiting: tracked now")
    transaction.on_commit(lambda: queue.queue_processing(first, account_pk=account.pk), robust=True)


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


def pause(conferences):
    """Stop polling conferences; what was recorded of them stays."""
    return conferences.update(paused=True)


def resume(conferences):
    """Unpause conferences; they are due at once."""
    return conferences.update(paused=False, next_poll_at=timezone.now())
