"""Catapult credentials encrypted at rest, with key rotation: several keys, the first
encrypts, all decrypt; rotate_keys re-encrypts with the first."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from conferences.models import Account
from conferences.registry import crypto
from tests.conftest import make_account, reload

pytestmark = pytest.mark.django_db

OLD = "old-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
NEW = "new-key-9876543210-zyxwvutsrqponmlkjihgfedcba-9876543210"


def test_credentials_are_stored_encrypted_never_in_clear(settings):
    settings.CONFWATCH_ENCRYPTION_KEY = [OLD]
    account = make_account(token="tok-visible?", secret="sec-visible?")

    row = Account.objects.filter(pk=account.pk).values().get()

    assert "tok-visible?" not in repr(row) and "sec-visible?" not in repr(row)
    assert reload(account).credentials() == ("tok-visible?", "sec-visible?")


def test_a_new_key_first_still_reads_what_the_old_key_wrote(settings):
    settings.CONFWATCH_ENCRYPTION_KEY = [OLD]
    account = make_account(token="tok", secret="sec")

    settings.CONFWATCH_ENCRYPTION_KEY = f"{NEW}, {OLD}"  # as the environment gives it

    assert reload(account).credentials() == ("tok", "sec")


def test_rotate_keys_re_encrypts_so_the_old_key_can_be_dropped(settings):
    settings.CONFWATCH_ENCRYPTION_KEY = [OLD]
    first = make_account(name="acme", token="tok-a", secret="sec-a")
    second = make_account(name="globex", token="tok-b", secret="sec-b")
    settings.CONFWATCH_ENCRYPTION_KEY = [NEW, OLD]
    out = StringIO()

    call_command("rotate_keys", stdout=out)
    settings.CONFWATCH_ENCRYPTION_KEY = [NEW]

    assert "Re-encrypted the credentials of 2 accounts" in out.getvalue()
    assert reload(first).credentials() == ("tok-a", "sec-a")
    assert reload(second).credentials() == ("tok-b", "sec-b")
    assert "tok-a" not in out.getvalue()


def test_rotate_keys_names_the_accounts_no_key_decrypts_and_keeps_them(settings):
    settings.CONFWATCH_ENCRYPTION_KEY = [OLD]
    lost = make_account(name="lost", token="tok", secret="sec")
    stored = lost.api_token_encrypted
    settings.CONFWATCH_ENCRYPTION_KEY = [NEW]
    make_account(name="fine", token="tok-f", secret="sec-f")

    with pytest.raises(CommandError, match="No key decrypts the credentials of lost"):
        call_command("rotate_keys", stdout=StringIO())

    assert reload(lost).api_token_encrypted == stored
    with pytest.raises(crypto.SecretUnreadable, match="add the old key"):
        reload(lost).credentials()
