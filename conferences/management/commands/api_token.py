from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from conferences import text
from conferences.models import ApiToken
from conferences.registry import tokens


class Command(BaseCommand):
    help = (
        "Read-only API tokens for the JSON API (docs/api.md): create one (its text is "
        "printed once, as the last word), list them, or revoke one."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create a token and print it once.")
        create.add_argument("name", metavar="NAME")
        create.add_argument("--user", required=True, help="The user the token reads as.")
        create.add_argument(
            "--expires", default="", metavar="DURATION", help="e.g. 90d or 12h (default: never)."
        )
        actions.add_parser("list", help="Every token, newest first (never its text).")
        revoke = actions.add_parser("revoke", help="Revoke a token by its name.")
        revoke.add_argument("name", metavar="NAME")

    def handle(self, *args, action, **options):
        try:
            getattr(self, action)(**options)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None

    def create(self, *, name, user, expires, **options):
        expires_in = tokens.clean_expiry(expires)
        token, token_text = tokens.create_token(
            name=name, user=tokens.find_user(user), expires_in=expires_in
        )
        until = text.local_text(token.expires_at) if token.expires_at else "never expires"
        until = f"expires {until}" if token.expires_at else until
        self.stdout.write(
            f"Token {token.name!r} reads as {token.user.username} and {until}. "
            f"It is shown only now; keep it secret: {token_text}"
        )

    def list(self, **options):
        rows = ApiToken.objects.select_related("user").order_by("-created_at", "-pk")
        now = timezone.now()
        self.stdout.write("name\tuser\tprefix\tcreated\texpires\tlast used\trevoked")
        for token in rows:
            cells = [
                token.name,
                token.user.username,
                token.prefix + "…",
                text.local_text(token.created_at),
                text.local_text(token.expires_at) if token.expires_at else "never",
                text.relative_text(token.last_used_at, now) if token.last_used_at else "never",
                text.local_text(token.revoked_at) if token.revoked_at else "no",
            ]
            self.stdout.write("\t".join(cells))

    def revoke(self, *, name, **options):
        token = tokens.revoke_token(name)
        self.stdout.write(f"Revoked token {token.name!r} ({token.prefix}…).")
