from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences.models import Account
from conferences.registry import tracking


class Command(BaseCommand):
    help = "Track one or more Catapult conference ids on an account."

    def add_arguments(self, parser):
        parser.add_argument("conference_ids", nargs="+", metavar="CONF_ID")
        parser.add_argument("--account", required=True, help="Account name")
        parser.add_argument("--label", default="")
        parser.add_argument("--tag", action="append", default=[], dest="tags")

    def handle(self, *args, conference_ids, account, label, tags, **options):
        try:
            account = Account.objects.get(name=account)
        except Account.DoesNotExist:
            raise CommandError(f"No account named {account!r}; add it with add_account.") from None
        try:
            ids = tracking.parse_conference_ids(" ".join(conference_ids))
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        added, existing = tracking.track_conferences(
            account=account, conference_ids=ids, label=label, tags=tags
        )
        for conference_id in added:
            self.stdout.write(f"Tracking {conference_id} on {account.name}.")
        for conference_id in existing:
            self.stdout.write(f"{conference_id} is already tracked on {account.name}; unchanged.")
