from django.core.management.base import BaseCommand

from conferences.polling import rounds


class Command(BaseCommand):
    help = (
        "Poll every tracked conference that is neither paused nor completed once, now, "
        "within each account's request budget, and print a one-line summary."
    )

    def handle(self, *args, **options):
        summary = rounds.poll_round(force=True)
        self.stdout.write(summary.line())
