import sys

from django.core.management.base import BaseCommand, CommandError

from conferences.models import Account
from conferences.registry import importing


class Command(BaseCommand):
    help = (
        "Track the conference ids of a CSV file (conference_id[,label[,tags]] per line, "
        "an optional header) on an account. All or nothing: if any row is refused, nothing "
        "is imported and each refused row is printed with its reason (exit status 1). "
        "Ids already tracked are left unchanged. FILE '-' reads standard input."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv")
        parser.add_argument("--account", required=True, help="Account name")

    def handle(self, *args, file, account, **options):
        try:
            account = Account.objects.get(name=account)
        except Account.DoesNotExist:
            raise CommandError(f"No account named {account!r}; add it with add_account.") from None
        try:
            if file == "-":
                data = sys.stdin.buffer.read(importing.MAX_BYTES + 1)
            else:
                with open(file, "rb") as handle:
                    data = handle.read(importing.MAX_BYTES + 1)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        try:
            result = importing.import_conferences(account=account, data=data)
        except importing.FileRefused as error:
            raise CommandError(f"{file}: {error} Nothing was imported.") from None
        for refusal in result.refused:
            self.stderr.write(f"refused {refusal}")
        if options["verbosity"] > 1:
            for conference_id in result.added:
                self.stdout.write(f"added {conference_id}")
            for conference_id in result.already_tracked:
                self.stdout.write(f"already tracked {conference_id}")
        if not result.imported:
            raise CommandError(result.summary())
        self.stdout.write(result.summary())
