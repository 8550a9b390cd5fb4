import json

from django.core.management.base import BaseCommand, CommandError

from conferences.registry import tracking
from conferences.web.selectors import reports


class Command(BaseCommand):
    help = "Print a tracked conference's current status and its history."

    def add_arguments(self, parser):
        parser.add_argument("conference_id", metavar="CONF_ID")
        parser.add_argument("--account", help="Account name, if the id is tracked on several")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object"
        )

    def handle(self, *args, conference_id, account, as_json, **options):
        try:
            conference = tracking.find_conference(conference_id, account_name=account)
        except LookupError as error:
            raise CommandError(str(error)) from None
        data = reports.conference_with_history(conference)
        if as_json:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(
            f"{data['conference_id']} ({data['account']}): state {data['state']}, "
            f"{data['active_members']} active members, hold {data['hold']}, "
            f"mute {data['mute']}; polling {data['poll_status']}"
        )
        for item in data["history"]:
            self.stdout.write(
                f"  {item['first_seen_at']} .. {item['last_seen_at']}  {item['state']} "
                f"members={item['active_members']} hold={item['hold']} mute={item['mute']}"
            )
