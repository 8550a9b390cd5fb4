from django.core.management.base import BaseCommand, CommandError

from conferences.models import Account, Subscription
from conferences.registry.crypto import SecretUnreadable, reencrypt

BATCH = 100


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored Catapult token and secret, and every channel URL and "
        "webhook secret, with the first key of CONFWATCH_ENCRYPTION_KEY (after putting a "
        "new key first; the old ones still decrypt). Drop an old key only after this "
        "succeeded."
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
        channels_done, channels_unreadable = self.rotate_channels()
        self.stdout.write(f"Re-encrypted {channels_done} channel subscriptions with the first key.")
        unreadable += channels_unreadable
        if unreadable:
            raise CommandError(
                f"No key decrypts the credentials of {', '.join(unreadable)}: keep the key "
                "they were saved with in CONFWATCH_ENCRYPTION_KEY, or enter them again."
            )

    def rotate_channels(self):
        """The channel URLs and webhook secrets of subscriptions, as the accounts'."""
        done, unreadable = 0, []
        channels = Subscription.objects.exclude(channel_encrypted="").order_by("pk")
        for pk, label, url, secret in channels.values_list(
            "pk", "email", "channel_encrypted", "webhook_secret_encrypted"
        ).iterator(chunk_size=BATCH):
            try:
                new_url, new_secret = reencrypt(url), reencrypt(secret) if secret else ""
            except SecretUnreadable:
                unreadable.append(f"subscription {pk} ({label})")
                continue
            done += Subscription.objects.filter(
                pk=pk, channel_encrypted=url, webhook_secret_encrypted=secret
            ).update(channel_encrypted=new_url, webhook_secret_encrypted=new_secret)
        return done, unreadable
