from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences import subscriptions
from conferences.models import Account, Subscription
from conferences.tracking import ID_SEPARATORS


class Command(BaseCommand):
    help = (
        "Subscribe an email address to alerts: about every conference, an account's, a "
        "tag's or chosen conferences."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--account", help="Account name: its conferences only.")
        parser.add_argument("--tag", default="", help="Conferences with this tag only.")
        parser.add_argument(
            "--conference",
            nargs="+",
            action="extend",
            default=[],
            dest="conference_ids",
            metavar="ID",
            help="These conferences only (Catapult ids, within --account if given).",
        )
        parser.add_argument(
            "--kinds",
            default="state",
            help=f"Comma-separated, of: {','.join(Subscription.KINDS)} (default: state).",
        )
        parser.add_argument("--tz", default="", help="Time zone, e.g. Europe/Berlin.")
        parser.add_argument("--members-at-most", type=int, metavar="N")
        parser.add_argument("--members-above", type=int, metavar="N")

    def handle(self, *args, email, account, tag, conference_ids, kinds, tz, **options):
        if account is not None:
            try:
                account = Account.objects.get(name=account)
            except Account.DoesNotExist:
                raise CommandError(
                    f"No account named {account!r}; add it with add_account."
                ) from None
        conference_ids = [cid for text in conference_ids for cid in ID_SEPARATORS.split(text)]
        try:
            subscription, created = subscriptions.subscribe(
                email=email,
                account=account,
                tag=tag,
                conference_ids=[cid for cid in conference_ids if cid],
                kinds=kinds,
                time_zone=tz,
                members_at_most=options["members_at_most"],
                members_above=options["members_above"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if created:
            self.stdout.write(f"Subscribed {subscriptions.describe(subscription)}.")
        else:
            self.stdout.write(
                f"Already subscribed ({subscriptions.describe(subscription)}); unchanged."
            )
