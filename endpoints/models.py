import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.identifiers import identifier_field
from core.models import OwnedModel, identifier_unique_per_owner
from endpoints.kinds import KINDS, config_errors


def new_endpoint_secret():
    return secrets.token_hex(32)


class Endpoint(OwnedModel):
    # Type.HTTP_REQUEST = "http_request", "HTTP request" and so on: each kind's type and label.
    Type = models.TextChoices(
        "Type", [(kind.type.upper(), (kind.type, kind.label)) for kind in KINDS.values()]
    )

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="endpoints"
    )
    identifier = identifier_field("endpoint ID")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.HTTP_REQUEST)
    config = models.JSONField(default=dict, blank=True)
    # Signs outgoing requests (X-Signature, HMAC-SHA256 of the body) so receivers can trust them.
    secret = models.CharField(max_length=64, default=new_endpoint_secret, editable=False)

    class Meta(OwnedModel.Meta):
        constraints = [identifier_unique_per_owner("endpoint", "an endpoint")]

    def clean(self):
        errors = config_errors(self.type, self.config)
        if errors:
            raise ValidationError(
                {"config": [f"{name}: {msg}" for name, msgs in errors.items() for msg in msgs]}
            )


class EndpointCall(models.Model):
    """A call to make, written in the callback's transaction so that it is never lost."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="calls")
    device = models.ForeignKey(
        "devices.Device",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="endpoint_calls",
    )
    payload = models.JSONField(null=True)
    ts = models.BigIntegerField(help_text="Milliseconds since the epoch of the triggering data.")
    # Defaults in the database too: the device callback's function on PostgreSQL records a call
    # with only what the call decides (devices/migrations/0005_callback.sql).
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    created = models.DateTimeField(auto_now_add=True)
    # Pending: when the call is due. Sending: when the worker's lease ends; past it, the worker is
    # presumed dead and the requeue sweep puts the call back to pending.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, db_default="")

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created"], name="endpoint_call_endpoint_created"),
            models.Index(
                fields=["next_attempt_at"],
                name="endpoint_call_pending",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self):
        return f"call {self.pk} of {self.endpoint_id} ({self.status})"


class EndpointAttempt(models.Model):
    """One try at delivering a call: what the console's attempt log shows."""

    call = models.ForeignKey(EndpointCall, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["call", "started_at"], name="endpoint_attempt_call")]

    def __str__(self):
        result = self.status_code or self.error[:40] or "ok"
        return f"attempt on call {self.call_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {result}"
