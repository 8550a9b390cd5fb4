from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences.alerting import subscriptions
from conferences.models import Account, Subscription
from conferences.registry.tracking import ID_SEPARATORS


class Command(BaseCommand):
    help = (
        "Subscribe an email address or a channel (an Apprise URL, or webhook:// and "
        "webhooks://) to alerts: about every conference, an account's, a tag's or chosen "
        "conferences."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", nargs="?", help="An email address (or use --to).")
        parser.add_argument(
            "--to",
            metavar="TARGET",
            help="An email address or a channel URL: slack://..., json://..., "
            "webhook://host/path (signed), ... (see the README's channel kinds).",
        )
        parser.add_argument(
            "--secret",
            default="",
            help="webhook:// and webhooks://: the signing secret (default: one is made and "
            "printed once).",
        )
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
            help=f"Comma-separated, of: {','.join(Subscription.KINDS)} (default: state); "
            "the last six are rules.",
        )
        parser.add_argument("--tz", default="", help="Time zone, e.g. Europe/Berlin.")
        parser.add_argument("--members-at-most", type=int, metavar="N")
        parser.add_argument("--members-above", type=int, metavar="N")
        parser.add_argument(
            "--after",
            metavar="DURATION",
            help="Rules not_started, alone, all_held, all_muted (members_drop: optional): "
            "how long the condition must hold, e.g. 90s, 10m, 2h.",
        )
        parser.add_argument(
            "--drop", metavar="PERCENT", help="Rule members_drop: the drop in percent, e.g. 50."
        )
        parser.add_argument(
            "--expect",
            default="",
            metavar="SCHEDULE",
            help='Rule schedule: expected active, e.g. "Mon,Wed 09:00 Europe/Berlin".',
        )
        parser.add_argument(
            "--grace", metavar="DURATION", help="Rule schedule: how late it may start, e.g. 5m."
        )
        parser.add_argument(
            "--no-resolved",
            action="store_true",
            help="No email when a rule's condition clears.",
        )
        parser.add_argument(
            "--quiet",
            default="",
            metavar="HH:MM-HH:MM",
            help="Quiet hours in the time zone: alerts are held and summarised at their end.",
        )
        parser.add_argument(
            "--quiet-drop", action="store_true", help="Drop alerts in quiet hours instead."
        )

    def handle(self, *args, email, account, tag, conference_ids, kinds, tz, **options):
        if bool(email) == bool(options["to"]):
            raise CommandError("Give the target once: an email address, or --to TARGET.")
        email = email or options["to"]
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
                rule_after=options["after"],
                drop_percent=options["drop"],
                expect=options["expect"],
                grace=options["grace"],
                notify_resolved=not options["no_resolved"],
                quiet_hours=options["quiet"],
                quiet_drop=options["quiet_drop"],
                secret=options["secret"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if created:
            self.stdout.write(f"Subscribed {subscriptions.describe(subscription)}.")
            if subscription.new_secret:
                self.stdout.write(
                    f"Webhook signing secret (shown once, stored encrypted): "
                    f"{subscription.new_secret}"
                )
        else:
            self.stdout.write(
                f"Already subscribed ({subscriptions.describe(subscription)}); unchanged."
            )
