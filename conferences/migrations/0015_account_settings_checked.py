# Accounts refuse a budget that is not a finite number within bounds, and a base URL
# that is not plain (conferences.models.validate_request_budget and api_host). Rows saved
# before may hold such values: this migration checks each one, changes nothing silently
# and deletes nothing.
# - A budget that is not finite becomes 1 request/s (the default: nan or inf says
#   nothing of what was meant); a finite one out of bounds becomes the nearest bound.
# - A base URL that is not plain pauses the account (a backslash, an @ or a control
#   character may send its credentials to another host than the one it seems to name):
#   fixing it in the admin asks for the credentials again, and new credentials unpause it.
# - A host outside CONFWATCH_ALLOWED_API_HOSTS is only reported: the allow-list is the
#   running environment's, and the pages show such an account as misconfigured.
# What was changed is printed and kept on the account (problem "account_error", shown on
# the overview and the account's page until its next good poll).

import math
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import migrations, models
from django.utils import timezone

import conferences.models

ACCOUNT_ERROR = "account_error"  # PollStatus.ACCOUNT_ERROR
# A paused account rests until someone fixes its base URL (a long time, not forever, so
# that every page can still show the date).
PAUSE_UNTIL_FIXED = timedelta(days=100 * 365)


def budget_fixed(budget):
    """The budget an out-of-bounds one becomes, or None when it is good."""
    try:
        conferences.models.validate_request_budget(budget)
    except ValidationError:
        pass
    else:
        return None
    if not math.isfinite(budget):
        return 1.0
    low, high = conferences.models.REQUEST_BUDGET_MIN, conferences.models.REQUEST_BUDGET_MAX
    return min(max(budget, low), high)


def say(line):
    """Print a line under the migration's own "Applying ..." line."""
    print(f"\n  {line}", end="")


def check_accounts(apps, schema_editor, *, write=say):
    """Check every account row's budget and base URL; fix, flag or report what fails."""
    Account = apps.get_model("conferences", "Account")
    now = timezone.now()
    for account in Account.objects.order_by("pk"):
        notes, paused = [], False
        fixed = budget_fixed(account.request_budget)
        if fixed is not None:
            notes.append(
                f"its request budget {account.request_budget!r} is not a finite number from "
                f"{conferences.models.REQUEST_BUDGET_MIN:g} to "
                f"{conferences.models.REQUEST_BUDGET_MAX:g}: it was set to {fixed:g}/s; check it "
                "in the admin"
            )
            account.request_budget = fixed
        try:
            host = conferences.models.api_host(account.base_url)
        except ValidationError as error:
            paused = True
            notes.append(
                f"its base URL {account.base_url!r} is refused ({' '.join(error.messages)}): "
                "the account is paused until the base URL is fixed in the admin with its "
                "credentials entered again"
            )
        else:
            if host not in settings.CONFWATCH_ALLOWED_API_HOSTS:
                write(
                    f"Account {account.name}: its base URL's host {host!r} is not on "
                    "CONFWATCH_ALLOWED_API_HOSTS here; allow it where confwatch runs, or "
                    "change the base URL."
                )
        if not notes:
            continue
        message = f"Changed when upgrading: {'; '.join(notes)}."
        write(f"Account {account.name}: {message}")
        account.problem = ACCOUNT_ERROR
        account.problem_message = message
        account.problem_at = account.problem_at or now
        fields = ["request_budget", "problem", "problem_message", "problem_at"]
        if paused:
            account.paused_until = now + PAUSE_UNTIL_FIXED
            fields.append("paused_until")
        account.save(update_fields=fields)


class Migration(migrations.Migration):
    dependencies = [
        ("conferences", "0014_poll_status_account_error"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="request_budget",
            field=models.FloatField(
                default=1.0,
                help_text="Requests per second confwatch may spend on this account "
                "(0.05 to 10,000).",
                validators=[conferences.models.validate_request_budget],
            ),
        ),
        migrations.RunPython(check_accounts, migrations.RunPython.noop),
    ]
