from django.core.management.base import BaseCommand, CommandError

from conferences.callbacks import receiver
from conferences.models import Account
from conferences.registry.crypto import SecretUnreadable


class Command(BaseCommand):
    help = (
        "Print the account's callback URL (absolute, from CONFWATCH_BASE_URL) to give "
        "Catapult as the conferences' callbackUrl; made on first use."
    )

    def add_arguments(self, parser):
        parser.add_argument("account", metavar="ACCOUNT")
        parser.add_argument(
            "--rotate", action="store_true", help="Make a new secret (the old URL stops working)"
        )

    def handle(self, *args, account, rotate, **options):
        found = Account.objects.filter(name=account).first()
        if found is None:
            raise CommandError(f"No account named {account!r}.")
        if rotate:
            receiver.set_up(found, username=None, rotate=True)
        try:
            self.stdout.write(receiver.callback_url(found))
        except SecretUnreadable as error:
            raise CommandError(f"{error} Run with --rotate.") from None
