from datetime import UTC, datetime

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

# Imported from here by the migrations, as the generation's default.
from core.identifiers import new_token_generation
from core.models import OwnedModel, identifier_unique_per_owner

ADMIN_ACCESS = {"*": {"*": "*"}}


class RefreshTokenFamily(models.Model):
    """The refresh tokens descended from one password login: each refresh spends the family's
    current token and issues the next. Presenting a spent one means it was copied, so the family
    is revoked: neither the thief nor the user can refresh again (the user logs in anew)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="refresh_token_families"
    )
    current = models.CharField(max_length=32)  # the jti of the one refresh token that may be used
    revoked = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    refreshed = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "thinger_http_refreshtokenfamily"  # where it was created
        verbose_name_plural = "refresh token families"

    def __str__(self):
        return f"{self.owner} since {self.created:%Y-%m-%d %H:%M}"


class AccessToken(OwnedModel):
    """A long-lived API access token (Thinger.io's /v1/users/{user}/tokens).

    The token value is a JWT naming this row; it is checked against the row on every request, so
    disabling, expiring or deleting the row revokes it at once. ``allow`` and ``deny`` follow
    Thinger.io's permission shape: ``{ResourceType: {resource name: action or [actions]}}``.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    identifier = models.CharField(
        "token ID",
        max_length=50,
        validators=[
            RegexValidator(r"^[a-zA-Z0-9_]{1,50}\Z", "Use 1 to 50 letters, digits or '_'.")
        ],
    )
    name = models.CharField(max_length=255)  # required, unlike other owned objects' names
    allow = models.JSONField(default=dict, blank=True)
    deny = models.JSONField(default=dict, blank=True)
    # Expiry in milliseconds since the epoch, as on the wire; null means never.
    expire = models.BigIntegerField(null=True, blank=True)
    generation = models.PositiveIntegerField(default=new_token_generation, editable=False)
    # When a request last authenticated with it, to the minute (services.access_token_touch).
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(OwnedModel.Meta):
        db_table = "thinger_http_accesstoken"  # where it was created
        constraints = [identifier_unique_per_owner("access_token", "a token")]

    @property
    def expires_at(self):
        """``expire`` as a datetime (None: never)."""
        return None if self.expire is None else datetime.fromtimestamp(self.expire / 1000, tz=UTC)

    def is_expired(self, now=None):
        """Past its expiry: refused like a revoked token."""
        now_ms = int((now or timezone.now()).timestamp() * 1000)
        return bool(self.expire) and self.expire <= now_ms
