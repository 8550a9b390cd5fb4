from django.core.management.base import BaseCommand

from conferences.alerting import fanout


class Command(BaseCommand):
    help = (
        "One synchronous alert pass: turn new events into deliveries, then send what is "
        "due. Prints a one-line summary (events, deliveries, sent, failed)."
    )

    def handle(self, *args, **options):
        self.stdout.write(fanout.run_pass().line())
