"""Registered users and HTTP Basic credentials (username = API token, password = secret)."""

import base64
import binascii
import hmac
import threading
from dataclasses import dataclass

from simulator import errors

DEFAULT_USER_SPEC = "u-demo:demo-token:demo-secret"


@dataclass(frozen=True)
class User:
    user_id: str
    token: str
    secret: str


def parse_user_spec(spec):
    """``USER_ID:TOKEN:SECRET`` (the secret may itself contain ``:``)."""
    parts = spec.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"expected USER_ID:TOKEN:SECRET, got {spec!r}")
    return User(*parts)


def as_user(value):
    """Accept a User, a (user_id, token, secret) tuple or a ``USER_ID:TOKEN:SECRET`` string."""
    if isinstance(value, User):
        return value
    if isinstance(value, str):
        return parse_user_spec(value)
    user_id, token, secret = value
    return User(user_id, token, secret)


class Users:
    def __init__(self, users=()):
        self._lock = threading.Lock()
        self._by_token = {}
        self._order = []
        for user in users:
            self.add(as_user(user))

    def add(self, user):
        if not (user.user_id and user.token and user.secret):
            raise ValueError("user_id, token and secret must all be non-empty")
        with self._lock:
            self._by_token[user.token] = user
            self._order = [known for known in self._order if known.token != user.token]
            self._order.append(user)

    def all(self):
        with self._lock:
            return list(self._order)

    def first_user_id(self):
        with self._lock:
            return self._order[0].user_id if self._order else None

    def authenticate(self, authorization, *, path_user_id):
        """Return the user id the credentials belong to, or raise a 401 ApiError."""
        token, secret = decode_basic(authorization)
        with self._lock:
            user = self._by_token.get(token)
        if user is None or not hmac.compare_digest(user.secret.encode(), secret.encode()):
            raise errors.unauthorized("Invalid API token or secret")
        if user.user_id != path_user_id:
            raise errors.user_access_denied(
                credentials_user_id=user.user_id, path_user_id=path_user_id
            )
        return user.user_id


def decode_basic(authorization):
    if not authorization:
        raise errors.unauthorized("Authentication is required (HTTP Basic, token:secret)")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise errors.unauthorized("Only HTTP Basic authentication is supported")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.unauthorized("Malformed HTTP Basic credentials") from None
    token, separator, secret = decoded.partition(":")
    if not separator:
        raise errors.unauthorized("Malformed HTTP Basic credentials")
    return token, secret
