"""Encryption at rest for the Catapult API token and secret (Fernet from cryptography).

CONFWATCH_ENCRYPTION_KEY holds one key or several, comma-separated: the first encrypts,
every one of them decrypts (MultiFernet). To rotate, put a new key first, run
`manage.py rotate_keys` (it re-encrypts every stored credential with the first key),
then drop the old key.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any CONFWATCH_ENCRYPTION_KEY."""


UNREADABLE = (
    "A stored Catapult credential cannot be decrypted: none of the keys in "
    "CONFWATCH_ENCRYPTION_KEY (or SECRET_KEY, which it defaults to) is the one it was "
    "saved with. Enter it again, or add the old key after the new one."
)


def keys():
    configured = settings.CONFWATCH_ENCRYPTION_KEY
    if isinstance(configured, str):
        configured = [key.strip() for key in configured.split(",") if key.strip()]
    return list(configured)


def _fernet():
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys()]
    )


def encrypt(text):
    return _fernet().encrypt(text.encode()).decode()


def decrypt(ciphertext):
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(UNREADABLE) from None


def reencrypt(ciphertext):
    """The same secret encrypted with the first key (never decrypted into a variable)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(UNREADABLE) from None
