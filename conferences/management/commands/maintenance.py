from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from conferences.alerting import maintenance
from conferences.models import MaintenanceWindow
from conferences.registry.tracking import ID_SEPARATORS
from conferences.text import local_text


class Command(BaseCommand):
    help = (
        "Maintenance windows: alerts about what a window covers are held during it and "
        "summarised when it ends. Subcommands: add, list, end."
    )

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True)
        add = commands.add_parser("add", help="Add a window.")
        scope = add.add_mutually_exclusive_group(required=True)
        scope.add_argument("--account", metavar="NAME", help="Every conference of an account.")
        scope.add_argument("--tag", metavar="TAG", help="Every conference with this tag.")
        scope.add_argument(
            "--conference",
            nargs="+",
            action="extend",
            dest="conference_ids",
            metavar="ID",
            help="These conferences (Catapult ids).",
        )
        add.add_argument("--from", dest="starts", required=True, metavar='"YYYY-MM-DD HH:MM"')
        add.add_argument("--until", required=True, metavar='"YYYY-MM-DD HH:MM"')
        add.add_argument(
            "--weekly", action="store_true", help="Every week at the same local times."
        )
        add.add_argument(
            "--tz", default="", help="Time zone, e.g. Europe/Berlin (default: the site's)."
        )
        add.add_argument("--reason", default="", metavar="TEXT")
        commands.add_parser("list", help="List current and coming windows.")
        end = commands.add_parser("end", help="End a window now (a weekly one for good).")
        end.add_argument("window_id", type=int, metavar="ID")

    def handle(self, *args, action, **options):
        getattr(self, action)(**options)

    def add(self, *, account, tag, conference_ids, starts, until, weekly, tz, reason, **_):
        conference_ids = [cid for text in conference_ids or [] for cid in ID_SEPARATORS.split(text)]
        try:
            window = maintenance.create_window(
                account_name=account,
                tag=tag or "",
                conference_ids=[cid for cid in conference_ids if cid],
                starts=starts,
                until=until,
                weekly=weekly,
                time_zone=tz,
                reason=reason,
                by="manage.py maintenance",
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Added maintenance {window.pk}: {describe(window)}.")

    def list(self, **_):
        now = timezone.now()
        found = maintenance.open_windows(now)
        if not found:
            self.stdout.write("No current or coming maintenance windows.")
        for occurrence in found:
            state = "now" if occurrence.current(now) else "coming"
            self.stdout.write(
                f"{occurrence.window.pk}  {state:6}  {describe(occurrence.window, occurrence)}"
            )

    def end(self, *, window_id, **_):
        window = MaintenanceWindow.objects.filter(pk=window_id).first()
        if window is None:
            raise CommandError(f"No maintenance window {window_id}.")
        if not maintenance.end_window(window):
            raise CommandError(f"Maintenance {window_id} has ended already.")
        self.stdout.write(f"Ended maintenance {window_id}; its summaries go out now.")


def describe(window, occurrence=None):
    occurrence = occurrence or maintenance.occurrence(window, 0)
    zone = maintenance.zone_of(window)
    start = local_text(occurrence.starts_at, zone=zone, seconds=False, named=True)
    end = local_text(occurrence.ends_at, zone=zone, seconds=False, named=True)
    line = f"{window.describe_scope()}, {start} until {end}"
    if window.weekly:
        line += ", weekly"
    if window.reason:
        line += f": {window.reason}"
    return line
