"""Encryption at rest for the Catapult API token and secret (Fernet from cryptography)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the current CONFWATCH_ENCRYPTION_KEY."""


def _fernet():
    digest = hashlib.sha256(settings.CONFWATCH_ENCRYPTION_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(text):
    return _fernet().encrypt(text.encode()).decode()


def decrypt(ciphertext):
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "A stored Catapult credential cannot be decrypted: CONFWATCH_ENCRYPTION_KEY (or "
            "SECRET_KEY, which it defaults to) changed since it was saved. Enter it again."
        ) from None
