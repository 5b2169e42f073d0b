from django.db.models import Q

from buckets.models import Bucket, BucketExport, BucketRecord

# At most this many records a page (Thinger.io clients page by moving max_ts or min_ts).
READ_MAX_ITEMS = 1000


def buckets_of(*, username, name=""):
    """The user's buckets by id; ``name``: only those with it in their id or name."""
    rows = Bucket.objects.filter(owner__username=username).order_by("identifier")
    if name:
        rows = rows.filter(Q(identifier__icontains=name) | Q(name__icontains=name))
    return rows


def bucket_by_path(*, username, identifier):
    """The bucket ``{bucket}`` of user ``{user}``, or None."""
    return (
        Bucket.objects.select_related("owner")
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def bucket_records(
    *, bucket, items=READ_MAX_ITEMS, min_ts=None, max_ts=None, sort="desc", device=None
):
    """(ts, value, device) of up to ``items`` records, newest first unless ``sort`` is ``asc``;
    ``min_ts`` and ``max_ts`` (ms) are inclusive and either may be None; ``device`` keeps only
    the records that device's callback wrote.

    One range scan of the (bucket, ts) index with a LIMIT, or of the (bucket, device, ts) index
    for one device: it costs the same in a bucket of ten million records as in one of a thousand.
    """
    rows = BucketRecord.objects.filter(bucket_id=bucket.pk)
    if device is not None:
        rows = rows.filter(device=device)
    if min_ts is not None:
        rows = rows.filter(ts__gte=min_ts)
    if max_ts is not None:
        rows = rows.filter(ts__lte=max_ts)
    rows = rows.order_by("ts" if sort == "asc" else "-ts")
    return rows.values_list("ts", "value", "device")[: max(0, min(items, READ_MAX_ITEMS))]


def bucket_record_count(*, bucket, limit):
    """How many records the bucket holds, counted up to ``limit + 1`` (a bucket that holds more
    says ``limit + 1``): a scan of the (bucket, ts) index that stops there, so the count costs no
    more in a bucket of ten million records than in one of ``limit``."""
    return BucketRecord.objects.filter(bucket_id=bucket.pk).values("ts")[: limit + 1].count()


def bucket_read(**kwargs):
    """Records as the API returns them: ``[{"ts", "val"}]``, with ``"device"`` on those a device's
    callback wrote (arguments of ``bucket_records``)."""
    return [
        {"ts": ts, "val": value} if device is None else {"ts": ts, "val": value, "device": device}
        for ts, value, device in bucket_records(**kwargs)
    ]


def bucket_exports(*, bucket):
    return BucketExport.objects.filter(bucket=bucket).order_by("-created", "-id")


def bucket_export_by_file(*, bucket, file):
    return BucketExport.objects.filter(bucket=bucket, file=file).first()


def bucket_export_progress(export):
    """What the console's progress bar shows: state, percentage, rows written so far."""
    return {
        "file": export.file,
        "state": export.state,
        "progress": export.progress,
        "rows": export.rows,
        "size": export.size,
        "error": export.error,
    }
