from django.conf import settings
from django.db import models

from thinger_http.identifiers import IDENTIFIER_MAX_LENGTH, identifier_validator


class Bucket(models.Model):
    class Source(models.TextChoices):
        API = "api", "API (device callbacks and REST writes)"

    class RetentionUnit(models.TextChoices):
        HOURS = "hours", "hours"
        DAYS = "days", "days"
        WEEKS = "weeks", "weeks"
        MONTHS = "months", "months"
        YEARS = "years", "years"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="buckets"
    )
    identifier = models.CharField(
        "bucket ID", max_length=IDENTIFIER_MAX_LENGTH, validators=[identifier_validator]
    )
    name = models.CharField(max_length=255, blank=True)
    description = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    # Null period: keep records forever.
    retention_period = models.PositiveIntegerField(null=True, blank=True)
    retention_unit = models.CharField(
        max_length=8, choices=RetentionUnit.choices, default=RetentionUnit.MONTHS
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "identifier"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "identifier"],
                name="bucket_identifier_unique_per_owner",
                violation_error_message="You already have a bucket with this ID.",
            )
        ]

    def __str__(self):
        return f"{self.owner.username}/{self.identifier}" if self.owner_id else self.identifier


class BucketRecord(models.Model):
    """One stored record. ``ts`` is milliseconds since the epoch, unique within the bucket.

    The unique (bucket, ts) index is also the index every read and range delete uses.
    """

    id = models.BigAutoField(primary_key=True)
    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="records")
    ts = models.BigIntegerField()
    value = models.JSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "ts"], name="bucket_record_unique_ts")
        ]

    def __str__(self):
        return f"{self.bucket_id}@{self.ts}"
