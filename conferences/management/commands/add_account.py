import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences.catapult import REAL_API_BASE_URL
from conferences.models import REQUEST_BUDGET_MAX, REQUEST_BUDGET_MIN
from conferences.registry import tracking

# The option each of the account's fields comes from, to name it in an error.
OPTIONS = {
    "name": "NAME",
    "user_id": "--user-id",
    "base_url": "--base-url",
    "request_budget": "--budget",
}


class Command(BaseCommand):
    help = (
        "Add a Catapult account (or update the one with this name). The API token and "
        "secret come from --token/--secret or CATAPULT_API_TOKEN/CATAPULT_API_SECRET."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--user-id", required=True, help="Catapult user id (u-...)")
        parser.add_argument("--base-url", default=REAL_API_BASE_URL)
        parser.add_argument("--token", help="API token (default: $CATAPULT_API_TOKEN)")
        parser.add_argument("--secret", help="API secret (default: $CATAPULT_API_SECRET)")
        parser.add_argument(
            "--budget",
            type=float,
            default=1.0,
            help=f"Requests per second, {REQUEST_BUDGET_MIN:g} to {REQUEST_BUDGET_MAX:g} "
            "(default 1).",
        )

    def handle(self, *args, name, user_id, base_url, token, secret, budget, **options):
        token = token or os.environ.get("CATAPULT_API_TOKEN")
        secret = secret or os.environ.get("CATAPULT_API_SECRET")
        if not token or not secret:
            raise CommandError(
                "The API token and secret are required: pass --token and --secret or set "
                "CATAPULT_API_TOKEN and CATAPULT_API_SECRET."
            )
        try:
            account = tracking.add_account(
                name=name,
                user_id=user_id,
                token=token,
                secret=secret,
                base_url=base_url,
                request_budget=budget,
            )
        except ValidationError as error:
            by_field = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
            refused = [
                f"{OPTIONS.get(field, field)}: {message}" if field else message
                for field, messages in by_field.items()
                for message in messages
            ]
            raise CommandError(f"Account {name} not saved: " + "; ".join(refused)) from None
        self.stdout.write(
            f"Account {account.name}: user {account.user_id} at {account.base_url}, "
            f"budget {account.request_budget:g} requests/s."
        )
