from django.core.management.base import BaseCommand, CommandError

from conferences.models import Account
from conferences.registry.crypto import SecretUnreadable, reencrypt

BATCH = 100


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored Catapult token and secret with the first key of "
        "CONFWATCH_ENCRYPTION_KEY (after putting a new key first; the old ones still "
        "decrypt). Drop an old key only after this succeeded."
    )

    def handle(self, *args, **options):
        done, unreadable, last_pk = 0, [], 0
        while True:
            batch = list(
                Account.objects.filter(pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", "name", "api_token_encrypted", "api_secret_encrypted")[:BATCH]
            )
            if not batch:
                break
            for pk, name, token, secret in batch:
                last_pk = pk
                try:
                    new_token, new_secret = reencrypt(token), reencrypt(secret)
                except SecretUnreadable:
                    unreadable.append(name)
                    continue
                # Only if nobody saved new credentials meanwhile.
                done += Account.objects.filter(
                    pk=pk, api_token_encrypted=token, api_secret_encrypted=secret
                ).update(api_token_encrypted=new_token, api_secret_encrypted=new_secret)
        self.stdout.write(f"Re-encrypted the credentials of {done} accounts with the first key.")
        if unreadable:
            raise CommandError(
                f"No key decrypts the credentials of {', '.join(unreadable)}: keep the key "
                "they were saved with in CONFWATCH_ENCRYPTION_KEY, or enter them again."
            )
