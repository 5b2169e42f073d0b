from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

# new_token_generation is imported from here by the migrations, as the generation's default.
from core.identifiers import identifier_field, new_token_generation
from core.models import OwnedModel, identifier_unique_per_owner

DEFAULT_TIMEOUT_MINUTES = 10
TIMEOUT_MAX_MINUTES = 60 * 24 * 365  # a year


class Device(OwnedModel):
    class Type(models.TextChoices):
        HTTP = "HTTP", "HTTP Device (Sigfox, LoRa, cURL)"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices"
    )
    identifier = identifier_field("device ID")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.HTTP)
    token_generation = models.PositiveIntegerField(default=new_token_generation, editable=False)

    # Connection state, written by every callback and by the timeout sweep.
    connected = models.BooleanField(default=False)
    connected_at = models.DateTimeField(null=True, blank=True)
    last_call_at = models.DateTimeField(null=True, blank=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    # Stored rather than computed so that the sweep is one indexed range query.
    timeout_at = models.DateTimeField(null=True, blank=True)

    class Meta(OwnedModel.Meta):
        constraints = [identifier_unique_per_owner("device", "a device")]
        indexes = [
            models.Index(
                fields=["timeout_at"], name="device_timeout_due", condition=Q(connected=True)
            ),
        ]

    @property
    def status(self):
        """``connected``, ``disconnected`` or ``never`` (the console's green, red and grey dot)."""
        if self.connected:
            return "connected"
        return "disconnected" if self.last_call_at else "never"


# What a callback does, in SPEC order: each is a reference of CallbackSettings, named alike.
CALLBACK_ACTIONS = ("write_bucket", "set_property", "call_endpoint", "send_property")


class CallbackSettings(models.Model):
    """What a callback does (``CALLBACK_ACTIONS``, in order).

    An action is off when its reference is null; deleting the referenced object switches it off.
    """

    device = models.OneToOneField(
        Device, on_delete=models.CASCADE, primary_key=True, related_name="callback"
    )
    write_bucket = models.ForeignKey(
        "buckets.Bucket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_property = models.ForeignKey(
        "devices.Property", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    call_endpoint = models.ForeignKey(
        "endpoints.Endpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    send_property = models.ForeignKey(
        "devices.Property", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timeout = models.PositiveIntegerField(
        "timeout (minutes)",
        default=DEFAULT_TIMEOUT_MINUTES,
        validators=[MinValueValidator(1), MaxValueValidator(TIMEOUT_MAX_MINUTES)],
    )

    class Meta:
        verbose_name = "callback settings"
        verbose_name_plural = "callback settings"

    def __str__(self):
        return f"callback of {self.device}"

    def clean(self):
        """References must stay within the device's owner (buckets, endpoints) or the device."""
        try:
            device = self.device
        except Device.DoesNotExist:
            return  # not attached yet (an admin inline on a new device checks on its own)
        errors = {}
        for action in CALLBACK_ACTIONS:
            target = getattr(self, action)
            if target is None:
                continue
            if isinstance(target, Property):
                if target.device_id != device.pk:
                    errors[action] = "this property belongs to another device"
            elif target.owner_id != device.owner_id:
                errors[action] = f"this {target._meta.verbose_name} belongs to another user"
        if errors:
            raise ValidationError(errors)


class Property(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="properties")
    identifier = identifier_field("property ID")
    name = models.CharField(max_length=255, blank=True)
    description = models.CharField(max_length=255, blank=True)
    value = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "properties"
        ordering = ["device_id", "identifier"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "identifier"],
                name="property_identifier_unique_per_device",
                violation_error_message="This device already has a property with this ID.",
            )
        ]

    def __str__(self):
        return self.identifier


class DeviceDailyStats(models.Model):
    """Per-device, per-day counters, bumped by an upsert on every callback."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="daily_stats")
    date = models.DateField()
    calls = models.PositiveBigIntegerField(default=0)
    rx_bytes = models.PositiveBigIntegerField("bytes received", default=0)
    tx_bytes = models.PositiveBigIntegerField("bytes sent", default=0)

    class Meta:
        verbose_name = "daily statistics"
        verbose_name_plural = "daily statistics"
        ordering = ["device_id", "-date"]
        constraints = [
            models.UniqueConstraint(fields=["device", "date"], name="device_stats_one_row_per_day")
        ]

    def __str__(self):
        return f"{self.device_id} {self.date}"


class ConnectionEvent(models.Model):
    class Kind(models.TextChoices):
        CONNECTED = "connected", "Connected"
        DISCONNECTED = "disconnected", "Disconnected"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="connection_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    # Whether the alerts (devices.alerts) have looked at it; a default in the database too, for
    # the callback's function and the sweep, which insert without naming it.
    alerts_done = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["device", "-at"], name="connection_event_device_at"),
            models.Index(
                fields=["id"], name="connection_event_alerts_due", condition=Q(alerts_done=False)
            ),
        ]

    def __str__(self):
        return f"{self.device_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class CallbackActivity(models.Model):
    """A call to the device's callback that stored nothing: refused (4xx) or ignored (a body
    that is not JSON), with why; the same refusal again soon after counts on the same row
    (``devices.activity``). At most ``ACTIVITY_PER_DEVICE`` rows per device, the oldest go."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="activity")
    status = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=255)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    size = models.PositiveIntegerField("bytes received", default=0)

    class Meta:
        verbose_name_plural = "callback activity"
        ordering = ["-last_at", "-id"]
        indexes = [models.Index(fields=["device", "-last_at"], name="callback_activity_recent")]

    def __str__(self):
        return f"{self.device_id} {self.status} {self.reason}"


QUIET_MAX_MINUTES = 60 * 24 * 7


class AlertSettings(models.Model):
    """Whom to tell when a device disconnects (its timeout passed) or reconnects: the endpoints
    to call. One row per device that has its own (``device`` set), and one per user for the
    devices without (``device`` null, the user's default). ``quiet_minutes``: after an alert of a
    kind, further ones of that kind for the device wait this long (a flapping device is told
    once, then its state when the quiet period ends)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_settings"
    )
    device = models.OneToOneField(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_settings"
    )
    enabled = models.BooleanField(
        default=True, help_text="off: no alerts (for a device: not even the default ones)"
    )
    on_disconnect = models.BooleanField("when it disconnects", default=True)
    on_reconnect = models.BooleanField("when it reconnects", default=True)
    endpoints = models.ManyToManyField("endpoints.Endpoint", blank=True, related_name="+")
    quiet_minutes = models.PositiveIntegerField(
        "quiet period (minutes)",
        default=15,
        validators=[MaxValueValidator(QUIET_MAX_MINUTES)],
    )
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"
        constraints = [
            models.UniqueConstraint(
                fields=["owner"],
                condition=Q(device__isnull=True),
                name="alert_settings_one_default_per_owner",
            )
        ]

    def __str__(self):
        return f"alerts of {self.device}" if self.device_id else f"default alerts of {self.owner}"

    def wants(self, kind):
        """Whether a change to ``kind`` (a ConnectionEvent.Kind) is alerted."""
        flag = self.on_reconnect if kind == ConnectionEvent.Kind.CONNECTED else self.on_disconnect
        return self.enabled and flag


class AlertState(models.Model):
    """What the alerts last told about a device, and when, for the quiet period."""

    device = models.OneToOneField(
        Device, on_delete=models.CASCADE, primary_key=True, related_name="alert_state"
    )
    told = models.CharField(max_length=16, blank=True)  # the state the last alert named
    connected_told_at = models.DateTimeField(null=True, blank=True)
    disconnected_told_at = models.DateTimeField(null=True, blank=True)
    # A change came during the quiet period: its end tells the state then, if it differs.
    held = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["held"], name="alert_state_held", condition=Q(held=True))]

    def __str__(self):
        return f"alerts told {self.device_id}: {self.told or 'nothing'}"
