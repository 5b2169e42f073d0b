import calendar
import json
import logging
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from buckets import exports
from buckets.events import EXPORT_COMPLETED, RECORDS_WRITE
from buckets.models import Bucket, BucketExport, BucketRecord
from buckets.summaries import summaries_drop, summaries_drop_for_write
from core.db import gone, insert_unique, json_dumps, lock_existing, save_changes, updatable
from core.events import publish

logger = logging.getLogger(__name__)

# Timestamps are milliseconds since the epoch; a client's own ``ts`` outside this range is refused
# (the same bound as the device callback's).
MAX_TS = 2**53 - 1

# Rows per INSERT: four parameters a row keeps every statement below SQLite's limit on bound
# parameters, whatever the size of the batch.
_INSERT_CHUNK = 1000

# Records per DELETE when clearing or enforcing retention: each chunk is its own short
# transaction (unless the caller holds one), so writers are never blocked for long.
RECORDS_PER_DELETE = 50_000


def bucket_write_records(*, bucket_id, device=None, explicit, server, now_ms):
    """Store records in a bucket, within the caller's transaction; ``device`` is the id of the
    device whose callback writes them (None for the API).

    ``explicit`` maps a timestamp the client gave to its value: it replaces a stored record with
    that timestamp, so a device that retries stores the record once. ``server`` lists values to
    store at the server's time (``now_ms``): consecutive milliseconds of the bucket's clock, in
    order. They never replace anything: one whose millisecond a record with its own timestamp
    holds takes the clock's next, until all are stored, however many writers share the bucket.

    On PostgreSQL this is the database function ``thinger_bucket_write``
    (``buckets/migrations/0005_bucket_clock.sql``), whose clock never waits for another writer's
    transaction; elsewhere (SQLite, one writer at a time) the same steps with the clock in the
    bucket's row. Either way, records given a time older than ``summaries.FRESH_MS`` first drop
    the summaries they change.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT thinger_bucket_write(%s, %s, %s::jsonb, %s::jsonb, %s)",
                [bucket_id, device, *records_json(explicit, server), now_ms],
            )
        return
    summaries_drop_for_write(bucket_id=bucket_id, explicit=explicit, now_ms=now_ms)
    _insert_records(bucket_id, device, sorted(explicit.items()), replace=True)
    pending = list(server)
    while pending:
        first = _claim(bucket_id, now_ms, len(pending))
        rows = [(first + offset, value) for offset, value in enumerate(pending)]
        written = _insert_records(bucket_id, device, rows, replace=False)
        pending = [value for ts, value in rows if ts not in written]


def records_json(explicit, server):
    """The arguments ``p_explicit`` and ``p_server`` of ``thinger_bucket_write``: JSON texts, or
    None when there are no such records (PostgreSQL's jsonb keeps values, not their text)."""
    pairs = sorted(explicit.items())
    return (json_dumps(pairs) if pairs else None, json_dumps(server) if server else None)


def _claim(bucket_id, now_ms, count):
    """The first of ``count`` consecutive milliseconds of the bucket's clock (its row, where the
    database writes one transaction at a time), at or after ``now_ms``."""
    table = connection.ops.quote_name(Bucket._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_server_ts = "  # noqa: S608 (table name only)
            "CASE WHEN last_server_ts >= %s THEN last_server_ts + %s ELSE %s END "
            "WHERE id = %s RETURNING last_server_ts",
            [now_ms, count, now_ms + count - 1, bucket_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise IntegrityError(f"bucket {bucket_id} does not exist")
    return row[0] - count + 1


def _insert_records(bucket_id, device, rows, *, replace):
    """Insert (ts, value) rows, a chunk per statement; returns the set of ts that were written."""
    table = connection.ops.quote_name(BucketRecord._meta.db_table)
    conflict = (
        "DO UPDATE SET value = excluded.value, device = excluded.device"
        if replace
        else ("DO NOTHING")
    )
    written = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            params = []
            for ts, value in chunk:
                params += [bucket_id, ts, _json_text(value), device]
            cursor.execute(
                f"INSERT INTO {table} (bucket_id, ts, value, device) "  # noqa: S608 (table name)
                f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(chunk))} "
                f"ON CONFLICT (bucket_id, ts) {conflict} RETURNING ts",
                params,
            )
            written |= {row[0] for row in cursor.fetchall()}
    return written


def _json_text(value):
    """A record's value as the ORM writes it to a JSON column (None: SQL NULL): SQLite keeps the
    text as it is, and the ORM's lookups compare that text."""
    return None if value is None else json.dumps(value)


def record_ts(value):
    """A record's own ``ts``: milliseconds when it is a number (0 is 'unknown'), else None.

    Raises ValueError for a number that is not a time in milliseconds since the epoch.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not -MAX_TS <= value <= MAX_TS:
        raise ValueError(f"ts {value!r} is not a time in milliseconds since the epoch")
    return int(value) or None


@transaction.atomic
def bucket_write(*, bucket, values, now_ms=None):
    """Write records as ``POST .../buckets/{bucket}/data`` does; returns how many were stored.

    Each value's own numeric top-level ``ts`` is its time (and is removed from the value), as in
    the device callback; the others get the server's time. A disabled bucket stores nothing.
    """
    lock_existing(bucket)
    if not bucket.enabled or not values:
        return 0
    if now_ms is None:
        now_ms = int(timezone.now().timestamp() * 1000)
    explicit, server = {}, []
    for value in values:
        ts = record_ts(value.get("ts")) if isinstance(value, dict) else None
        if ts is None:
            server.append(value)
        else:
            explicit[ts] = {key: item for key, item in value.items() if key != "ts"}
    bucket_write_records(bucket_id=bucket.pk, explicit=explicit, server=server, now_ms=now_ms)
    count = len(explicit) + len(server)
    publish(bucket.owner.username, RECORDS_WRITE(bucket.identifier, ts=now_ms, records=count))
    return count


@transaction.atomic
def bucket_create(
    *,
    owner,
    identifier,
    name="",
    description="",
    enabled=True,
    tags=(),
    retention_period=None,
    retention_unit=Bucket.RetentionUnit.MONTHS,
):
    """A new bucket; ``retention_period`` 0 or None keeps records forever."""
    bucket = Bucket(
        owner=owner,
        identifier=identifier,
        name=name,
        description=description,
        enabled=enabled,
        tags=list(tags),
        retention_period=retention_period or None,
        retention_unit=retention_unit,
    )
    bucket.full_clean()
    return insert_unique(bucket)


_UPDATABLE = {"name", "description", "enabled", "tags", "retention_period", "retention_unit"}


@transaction.atomic
def bucket_update(*, bucket, **fields):
    """Change some of a bucket's settings (a partial update); its id never changes."""
    updatable("bucket_update", fields, _UPDATABLE)
    if "retention_period" in fields:
        fields["retention_period"] = fields["retention_period"] or None
    for name, value in fields.items():
        setattr(bucket, name, value)
    bucket.full_clean()
    return save_changes(bucket, fields)


def _remove_files_on_commit(names):
    def remove():
        storage = export_storage()
        for name in names:
            try:
                storage.delete(name)
            except Exception:
                logger.exception("could not remove export file %s", name)

    transaction.on_commit(remove)


@transaction.atomic
def bucket_delete(*, bucket):
    """Delete a bucket with its records and exports.

    Records go in set-based DELETEs (never loaded); callback settings writing to the bucket are
    switched off by the foreign key's SET NULL; export files are removed once this commits.
    """
    lock_existing(bucket)
    names = [export_name(export) for export in bucket.exports.all()]
    records = BucketRecord.objects.filter(bucket=bucket)
    records._raw_delete(records.db)  # one statement: chunks would not help in one transaction
    bucket.delete()
    _remove_files_on_commit(names)


def _records_in_range(bucket_id, min_ts, max_ts):
    rows = BucketRecord.objects.filter(bucket_id=bucket_id)
    if min_ts is not None:
        rows = rows.filter(ts__gte=min_ts)
    if max_ts is not None:
        rows = rows.filter(ts__lte=max_ts)
    return rows


def _delete_range(bucket_id, min_ts, max_ts):
    """Delete a bucket's records with min_ts <= ts <= max_ts (None: open), oldest first, in
    chunks cut at a timestamp found on the (bucket, ts) index; returns how many.

    Each chunk starts at the previous one's edge, so no query walks over the index entries of
    records already deleted (still there until vacuum, and all of them inside a transaction).
    Each chunk's transaction drops the summaries the range changes (a run may have summarized
    the records still there since the previous chunk).
    """
    chunk = RECORDS_PER_DELETE
    total = 0
    bounds = {"min_ts": min_ts, "max_ts": max_ts}
    while True:
        rows = _records_in_range(bucket_id, min_ts, max_ts)
        edge = rows.order_by("ts").values_list("ts", flat=True)[chunk : chunk + 1]
        edge = next(iter(edge), None)
        doomed = rows if edge is None else rows.filter(ts__lt=edge)
        # No savepoint: inside a caller's transaction this adds no query, on its own it commits
        # each chunk.
        with transaction.atomic(savepoint=False):
            summaries_drop(bucket_id=bucket_id, **bounds)
            total += doomed._raw_delete(doomed.db)
        if edge is None:
            return total
        min_ts = edge


def bucket_clear(bucket, min_ts=None, max_ts=None):
    """Delete a bucket's records, all of them or those with min_ts <= ts <= max_ts (ms, either
    bound may be None); returns how many. Set-based and chunked: nothing is loaded into Python,
    whatever the bucket's size. The console, the admin and the API call this. DoesNotExist if
    the bucket was deleted since it was read."""
    if not Bucket.objects.filter(pk=bucket.pk).exists():
        raise gone(bucket)
    return _delete_range(bucket.pk, min_ts, max_ts)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

_UNIT_DELTAS = {
    Bucket.RetentionUnit.HOURS: lambda n: timedelta(hours=n),
    Bucket.RetentionUnit.DAYS: lambda n: timedelta(days=n),
    Bucket.RetentionUnit.WEEKS: lambda n: timedelta(weeks=n),
}
_UNIT_MONTHS = {Bucket.RetentionUnit.MONTHS: 1, Bucket.RetentionUnit.YEARS: 12}


def _months_before(moment, months):
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def bucket_retention_cutoff(bucket, now):
    """The time before which the bucket's records expire (calendar months and years), or None
    when it keeps them forever (or the period reaches back before year 1)."""
    period = bucket.retention_period
    if not period:
        return None
    try:
        if bucket.retention_unit in _UNIT_MONTHS:
            return _months_before(now, period * _UNIT_MONTHS[bucket.retention_unit])
        return now - _UNIT_DELTAS[bucket.retention_unit](period)
    except (OverflowError, ValueError, KeyError):
        return None


def bucket_enforce_retention(*, now=None):
    """Delete every record older than its bucket's retention period; returns how many.

    Run by beat. Each bucket's expired records go oldest first, ``RECORDS_PER_DELETE`` at a time,
    each chunk its own transaction; a bucket with no expired records costs one index probe.
    """
    now = now or timezone.now()
    total = 0
    buckets = Bucket.objects.filter(retention_period__gt=0).only(
        "pk", "retention_period", "retention_unit"
    )
    for bucket in buckets.iterator():
        cutoff = bucket_retention_cutoff(bucket, now)
        if cutoff is None:
            continue
        deleted = _delete_range(bucket.pk, None, (cutoff - _EPOCH) // _MILLISECOND - 1)
        if deleted:
            logger.info("retention: deleted %d records of bucket %s", deleted, bucket.pk)
        total += deleted
    return total


# Exports.

_EXTENSIONS = {
    BucketExport.DataType.CSV: "csv",
    BucketExport.DataType.JSON: "json",
    BucketExport.DataType.ARFF: "arff",
}


def export_storage():
    """Where export files live (``STORAGES["exports"]``, ``EXPORTS_STORAGE_URL``): the workers
    that write them and the web processes that serve them must all reach it."""
    return storages["exports"]


def export_name(export):
    """An export's file in the exports storage: ``<bucket pk>/<file>``."""
    return f"{export.bucket_id}/{export.file}"


def export_open(export):
    """The export's file, open for reading; FileNotFoundError when it is missing."""
    storage = export_storage()
    name = export_name(export)
    if not storage.exists(name):
        raise FileNotFoundError(name)
    return storage.open(name, "rb")


def _export_file_name(bucket, data_type, now):
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return f"{bucket.identifier}-{stamp}-{secrets.token_hex(3)}.{_EXTENSIONS[data_type]}"


def _enqueue_export(export_id):
    from buckets.tasks import bucket_export_run

    try:
        # BUCKET_TASK_QUEUE: None is Celery's default queue (tests route to a worker of their own).
        bucket_export_run.apply_async(args=[export_id], queue=settings.BUCKET_TASK_QUEUE)
    except Exception:
        # The row stays pending; bucket_exports_requeue (beat) sends it again.
        logger.exception("could not enqueue export %s", export_id)


@transaction.atomic
def bucket_export_create(
    *,
    bucket,
    data_type=BucketExport.DataType.CSV,
    timestamp_format=BucketExport.TimestampFormat.ISO,
    min_ts=None,
    max_ts=None,
):
    """Record an export and have a worker write it once this commits; ``min_ts``/``max_ts`` of
    0 or None leave that end of the range open."""
    lock_existing(bucket)
    export = BucketExport(
        bucket=bucket,
        file=_export_file_name(bucket, data_type, timezone.now()),
        data_type=data_type,
        timestamp_format=timestamp_format,
        min_ts=min_ts or None,
        max_ts=max_ts or None,
    )
    export.full_clean()
    export.save()
    transaction.on_commit(lambda: _enqueue_export(export.pk))
    return export


@transaction.atomic
def bucket_export_delete(*, export):
    """Delete an export's row and, once that commits, its file; a running task notices and
    stops."""
    name = export_name(export)
    export.delete()
    _remove_files_on_commit([name])


# A pending export no worker has taken for this long is sent again (the broker was down, or the
# message was lost); a running one whose progress has not moved for EXPORT_STALE_AFTER lost its
# worker and may be taken over. Progress moves every page (milliseconds apart): an hour without
# any means the worker is gone, not slow.
EXPORT_REQUEUE_AFTER = timedelta(minutes=10)
EXPORT_STALE_AFTER = timedelta(hours=1)


def _claim_export(export_id, now):
    """Move an export to running; False when another worker has it (or it is done or gone)."""
    rows = BucketExport.objects.filter(pk=export_id)
    claimed = rows.filter(state=BucketExport.State.PENDING).update(
        state=BucketExport.State.RUNNING, updated=now
    ) or rows.filter(state=BucketExport.State.RUNNING, updated__lt=now - EXPORT_STALE_AFTER).update(
        updated=now, progress=0, rows=0
    )
    return bool(claimed)


class ExportCancelled(Exception):
    """The export's row was deleted while its file was being written."""


def bucket_export_run(*, export_id):
    """Write an export's file, keeping its progress in the database; returns the export, or None
    when there was nothing to do (claimed by another worker, finished or deleted).

    The file is written to a temporary file on the worker's disk, then stored under its name in
    the exports storage, and the export is done only once it is there: a download never sees
    half a file. Memory stays flat: records are read a page at a time along the (bucket, ts)
    index (see ``buckets.exports``).
    """
    now = timezone.now()
    if not _claim_export(export_id, now):
        return None
    export = BucketExport.objects.select_related("bucket__owner").filter(pk=export_id).first()
    if export is None:  # deleted since
        return None
    storage, name = export_storage(), export_name(export)
    running = BucketExport.objects.filter(pk=export_id, state=BucketExport.State.RUNNING)

    def report(rows, progress):
        if not running.update(rows=rows, progress=progress, updated=timezone.now()):
            raise ExportCancelled

    try:
        with tempfile.TemporaryDirectory(prefix="export-") as scratch:
            part = Path(scratch) / export.file
            rows = exports.write_export(export, part, report)
            storage.delete(name)  # what a worker that lost this export may have left
            with open(part, "rb") as written:
                stored = storage.save(name, File(written, name=export.file))
            if stored != name:
                raise RuntimeError(f"the exports storage kept the file as {stored!r}")
            size = storage.size(name)
    except ExportCancelled:
        return None
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        failed = running.update(
            state=BucketExport.State.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished=timezone.now(),
        )
        if failed:
            _announce_export(export, BucketExport.State.FAILED)
        return BucketExport.objects.filter(pk=export_id).first() if failed else None
    done = running.update(
        state=BucketExport.State.DONE,
        progress=100,
        rows=rows,
        size=size,
        finished=timezone.now(),
    )
    if not done:  # deleted meanwhile
        storage.delete(name)
        return None
    _announce_export(export, BucketExport.State.DONE)
    return BucketExport.objects.filter(pk=export_id).first()


def _announce_export(export, state):
    """The live event of a finished export, as Thinger.io's clients wait for it (the Node-RED
    export node reads the file at ``url``, which names it as ``file://users/...``)."""
    user, bucket = export.bucket.owner.username, export.bucket.identifier
    publish(
        user,
        EXPORT_COMPLETED(
            bucket,
            user=user,
            file=export.file,
            state=state.value,
            url=f"file://users/{user}/buckets/{bucket}/{export.file}",
            data_type=export.data_type,
            timestamp_format=export.timestamp_format,
            min_ts=export.min_ts,
            max_ts=export.max_ts,
        ),
    )


def bucket_exports_requeue(*, now=None):
    """Send again exports that no worker has taken (broker down when they were created) or whose
    worker died; returns how many. Run by beat."""
    now = now or timezone.now()
    waiting = Q(state=BucketExport.State.PENDING, updated__lt=now - EXPORT_REQUEUE_AFTER)
    lost = Q(state=BucketExport.State.RUNNING, updated__lt=now - EXPORT_STALE_AFTER)
    pending = BucketExport.objects.filter(waiting | lost).values_list("pk", flat=True)
    ids = list(pending[:1000])
    for export_id in ids:
        _enqueue_export(export_id)
    return len(ids)
