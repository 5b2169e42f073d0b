from django.conf import settings
from django.db import models
from django.db.models import Q

from core.identifiers import IDENTIFIER_MAX_LENGTH, identifier_field
from core.models import OwnedModel, identifier_unique_per_owner


class Bucket(OwnedModel):
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
    identifier = identifier_field("bucket ID")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    # Null period: keep records forever.
    retention_period = models.PositiveIntegerField(null=True, blank=True)
    retention_unit = models.CharField(
        max_length=8, choices=RetentionUnit.choices, default=RetentionUnit.MONTHS
    )
    # Thinger.io's config.tags: up to five identifiers, kept for clients that set them.
    tags = models.JSONField(default=list, blank=True)
    # The bucket's clock, where the database has no sequences (SQLite): the last millisecond it
    # gave a record at the server's time (buckets.clock). On PostgreSQL the clock is a sequence of
    # the bucket's own, which this value starts.
    last_server_ts = models.BigIntegerField(default=0, editable=False)

    class Meta(OwnedModel.Meta):
        constraints = [identifier_unique_per_owner("bucket", "a bucket")]


class BucketRecord(models.Model):
    """One stored record. ``ts`` is milliseconds since the epoch, unique within the bucket;
    ``device`` is the id of the device whose callback wrote it (None for the API's writes): text,
    so that a record keeps it when the device is deleted.

    The unique (bucket, ts) index is also the index every read and range delete uses; reads of
    one device's records use (bucket, device, ts).
    """

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the (bucket, ts) unique index serves every lookup by bucket, and a
    # second one lets PostgreSQL plan "all of the bucket's records, then sort" for small buckets.
    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="records", db_index=False
    )
    ts = models.BigIntegerField()
    value = models.JSONField(null=True)
    # NULL for the API's writes, which keeps them out of the device index.
    device = models.CharField(max_length=IDENTIFIER_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "ts"], name="bucket_record_unique_ts")
        ]
        indexes = [
            models.Index(
                fields=["bucket", "device", "ts"],
                name="bucket_record_device_ts",
                condition=Q(device__isnull=False),
            )
        ]

    def __str__(self):
        return f"{self.bucket_id}@{self.ts}"


class BucketExport(models.Model):
    """A file of a bucket's records, written by a Celery task to the exports storage
    (``STORAGES["exports"]``: ``<bucket pk>/<file>``).

    ``file`` is the name on the wire (``.../exports/{file}``); the task updates ``progress`` and
    ``rows`` as it goes, and ``updated`` tells a live task from one whose worker died.
    """

    class DataType(models.TextChoices):
        CSV = "csv", "CSV"
        JSON = "json", "JSON"
        ARFF = "arff", "ARFF"

    class TimestampFormat(models.TextChoices):
        ISO = "iso", "ISO 8601"
        SECONDS = "seconds", "seconds"
        MILLISECONDS = "milliseconds", "milliseconds"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="exports")
    file = models.CharField(max_length=128)
    data_type = models.CharField(max_length=8, choices=DataType.choices, default=DataType.CSV)
    timestamp_format = models.CharField(
        max_length=16, choices=TimestampFormat.choices, default=TimestampFormat.ISO
    )
    # Inclusive bounds in milliseconds; null is open.
    min_ts = models.BigIntegerField(null=True, blank=True)
    max_ts = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)
    size = models.PositiveBigIntegerField("size (bytes)", default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bucket_id", "-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["bucket", "file"], name="bucket_export_unique_file")
        ]

    def __str__(self):
        return self.file


class SummaryNumberField(models.FloatField):
    """A float (double precision) on PostgreSQL, which reads every number of a record as one. On
    SQLite a column of no type, which keeps an integer an integer: SQLite sums and compares the
    records' integers as integers, and so must their summaries (a REAL column would round those
    beyond 2**53)."""

    def db_type(self, connection):
        if connection.vendor == "sqlite":
            return ""
        return super().db_type(connection)


class BucketSummary(models.Model):
    """What a bucket's records of one slot (``buckets.summaries.SLOT_MS`` from ``slot``, ms) hold,
    so that a chart of a long range reads a row per slot and field, not every record: per
    numeric field (``path`` as ``buckets.aggregates`` names it) how many numbers, their sum,
    minimum and maximum; ``path`` None is the slot's own row, ``numbers`` its records. Written by
    ``buckets.summaries``; only slots of ``[since, until)`` of the bucket's mark are kept."""

    id = models.BigAutoField(primary_key=True)
    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="summaries", db_index=False
    )
    slot = models.BigIntegerField()
    path = models.TextField(null=True)  # noqa: DJ001 (None: the slot's row, "" a bare number)
    numbers = models.BigIntegerField()
    total = SummaryNumberField(null=True)
    least = SummaryNumberField(null=True)
    greatest = SummaryNumberField(null=True)

    class Meta:
        indexes = [models.Index(fields=["bucket", "slot"], name="bucket_summary_slot")]

    def __str__(self):
        return f"{self.bucket_id}@{self.slot} {self.path}"


class BucketSummaryMark(models.Model):
    """The slots of a bucket that are summarized: ``since`` (inclusive) to ``until`` (exclusive),
    ms on slot edges. Its row is locked while summaries of the bucket are written or dropped, so
    that two workers, or a worker and a writer of past records, take turns."""

    bucket = models.OneToOneField(
        Bucket, on_delete=models.CASCADE, primary_key=True, related_name="summary_mark"
    )
    since = models.BigIntegerField()
    until = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.bucket_id}: {self.since} to {self.until}"
