"""API tokens: read-only access to the JSON API for scripts (conferences/registry/tokens.py
makes and checks them). Only a token's SHA-256 hash is stored; its text is shown once."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """Reads the JSON API as `user` until it expires or is revoked. `prefix` (the token's
    first characters, not secret) names it in lists and finds it when a request shows it."""

    name = models.CharField(max_length=100, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    token_hash = models.CharField(max_length=64, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            # registry.tokens.find_token: the rows whose prefix a presented token starts with.
            models.Index(fields=["prefix"], name="apitoken_prefix_idx"),
        ]

    def __str__(self):
        return self.name

    def usable_at(self, now):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
