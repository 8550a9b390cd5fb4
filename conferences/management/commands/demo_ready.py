import signal
import sys
import time
from pathlib import Path

import requests
from django.core.management.base import BaseCommand
from django.utils import timezone

from conferences.models import Conference

DEMO_FILE = ".confwatch-demo.txt"


class Command(BaseCommand):
    help = (
        "The demo's last word: wait until the web server answers and the worker has polled "
        "(so every start-up message is out), print the URL and login that demo_setup wrote "
        f"to {DEMO_FILE}, then wait quietly until the demo stops."
    )

    def add_arguments(self, parser):
        parser.add_argument("--web-url", default="http://127.0.0.1:8000/")
        parser.add_argument("--file", default=DEMO_FILE)
        parser.add_argument("--wait", type=float, default=90.0, help="Seconds to wait at most")

    def handle(self, *args, web_url, file, wait, **options):
        # Ctrl-C (or honcho's SIGTERM) ends the demo: leave without a traceback.
        signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        started = timezone.now()
        path = Path(file)
        deadline = time.monotonic() + wait
        waiting_for = "the web server"
        while time.monotonic() < deadline:
            fresh = path.exists() and path.stat().st_mtime >= started.timestamp() - 5
            if fresh and self.web_answers(web_url):
                waiting_for = "the first poll"
                if Conference.objects.filter(last_polled_at__gte=started).exists():
                    break
            time.sleep(0.5)
        else:
            self.stderr.write(f"Not ready after {wait:.0f} s: still waiting for {waiting_for}.")
        time.sleep(1.0)  # the last start-up lines of the other processes
        if path.exists():
            self.stdout.write("\n" + path.read_text().rstrip() + "\n")
        self.stdout.flush()
        while True:
            time.sleep(3600)

    def web_answers(self, web_url):
        try:
            return requests.get(web_url, timeout=(1, 2), allow_redirects=False).status_code < 500
        except requests.RequestException:
            return False
