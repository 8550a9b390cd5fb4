import secrets
import time
from pathlib import Path

import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences.alerting import subscriptions
from conferences.models import Conference
from conferences.registry import tracking

DEMO_USER_ID = "u-demo"
DEMO_TOKEN = "demo-token"
DEMO_SECRET = "demo-secret"  # the simulator's default demo user; not a real credential
LABELS = ["Sales stand-up", "Support bridge", "Board call", "Ops war room", "Partner sync"]
TAGS = ["acme", "globex", "initech", "umbrella"]
DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = (
        "Prepare the demo: wait for the simulator, add its account with a matching request "
        "budget, track its scenario conferences, subscribe the demo user to state changes "
        "and print the URL and a login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default="http://127.0.0.1:8765")
        parser.add_argument("--budget", type=float, default=20.0)
        parser.add_argument("--web-url", default="http://127.0.0.1:8000/")
        parser.add_argument("--wait", type=float, default=30.0, help="Seconds to wait")
        parser.add_argument(
            "--file",
            default=".confwatch-demo.txt",
            help="Also write the URL and login here (demo_ready prints it last)",
        )

    def handle(self, *args, simulator_url, budget, web_url, wait, file, **options):
        ids = self.scenario_ids(simulator_url.rstrip("/"), wait=wait)
        try:
            account = tracking.add_account(
                name="demo",
                user_id=DEMO_USER_ID,
                token=DEMO_TOKEN,
                secret=DEMO_SECRET,
                base_url=simulator_url,
                request_budget=budget,
            )
        except ValidationError as error:
            raise CommandError("The demo account is refused: " + " ".join(error.messages)) from None
        # Conferences of an earlier demo run are gone from this simulator: keep their
        # history, stop polling them.
        stale = Conference.objects.filter(account=account, paused=False).exclude(
            conference_id__in=ids
        )
        stale_count = stale.update(paused=True)
        for index, conference_id in enumerate(ids):
            tracking.track_conferences(
                account=account,
                conference_ids=[conference_id],
                label=f"{LABELS[index % len(LABELS)]} {index + 1}",
                tags=[TAGS[index % len(TAGS)], "demo"],
            )
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(username="demo")
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.email = user.email or DEMO_EMAIL
        user.save()
        # Idempotent: a second run finds the same subscription and makes none.
        subscriptions.subscribe(email=user.email, user=user, kinds=("state",))
        text = (
            f"  confwatch demo: {len(ids)} conferences tracked"
            f"{f', {stale_count} from an earlier run paused' if stale_count else ''}.\n"
            f"  {user.email} is subscribed to state changes of every conference.\n"
            "  Alert emails arrive in var/mail/ and are listed on the mail lines.\n"
            "  Ctrl-C stops the demo.\n"
            f"  Open {web_url} and sign in as demo / {password}\n"
        )
        if not file:
            self.stdout.write("\n" + text)
            return
        path = Path(file)
        path.touch(mode=0o600)  # it holds a password
        path.write_text(text)
        self.stdout.write(
            f"confwatch demo: {len(ids)} conferences tracked; the URL and login follow once "
            f"everything runs (and are in {file})."
        )

    def scenario_ids(self, simulator_url, *, wait):
        deadline = time.monotonic() + wait
        while True:
            try:
                response = requests.get(f"{simulator_url}/_sim/conferences", timeout=(2, 5))
                response.raise_for_status()
                return [item["id"] for item in response.json()][:200]
            except (requests.RequestException, ValueError, KeyError, TypeError) as error:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"The simulator at {simulator_url} did not answer: {error}"
                    ) from None
                time.sleep(0.5)
