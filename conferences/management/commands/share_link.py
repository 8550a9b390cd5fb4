from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences.alerting import sharing
from conferences.registry import tracking


class Command(BaseCommand):
    help = (
        "Print a read-only share link of a conference (absolute, from CONFWATCH_BASE_URL), "
        "or revoke one with --revoke URL."
    )

    def add_arguments(self, parser):
        parser.add_argument("conference_id", metavar="CONF_ID", nargs="?")
        parser.add_argument("--account", help="Account name, if the id is tracked on several")
        parser.add_argument(
            "--expires", default="", metavar="DURATION", help="e.g. 2h or 3d (default 7d)."
        )
        parser.add_argument("--revoke", metavar="URL", help="Revoke this share link.")

    def handle(self, *args, conference_id, account, expires, revoke, **options):
        if revoke:
            if conference_id:
                raise CommandError("Give either CONF_ID or --revoke URL, not both.")
            link = sharing.link_for_url(revoke)
            if link is None:
                raise CommandError("That is not a share link of this confwatch.")
            sharing.revoke(link)
            self.stdout.write(f"Revoked the share link of {link.conference.conference_id}.")
            return
        if not conference_id:
            raise CommandError("Give the conference id (or --revoke URL).")
        try:
            expires_in = sharing.clean_expiry(expires)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        try:
            conference = tracking.find_conference(conference_id, account_name=account)
        except LookupError as error:
            raise CommandError(str(error)) from None
        link = sharing.create_link(conference=conference, expires_in=expires_in)
        self.stdout.write(sharing.share_url(link))
