import getpass
import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conferences.registry import roles

PASSWORD_VARIABLE = "CONFWATCH_USER_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create a staff user in a support role: viewer (reads everything, changes nothing) "
        f"or admin (manages tracking, accounts and subscriptions). The password comes from "
        f"${PASSWORD_VARIABLE}, or is asked for when that is unset."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(roles.ROLES))
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, email, **options):
        password = os.environ.get(PASSWORD_VARIABLE) or self.ask_password()
        try:
            user = roles.create_user(username=username, role=role, password=password, email=email)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Created {user.username}, {roles.ROLES[role]} (staff).")

    def ask_password(self):
        if not sys.stdin.isatty():
            raise CommandError(f"Set {PASSWORD_VARIABLE}: there is no terminal to ask on.")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ; nothing was created.")
        if not password:
            raise CommandError("The password is empty; nothing was created.")
        return password
