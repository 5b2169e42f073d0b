"""Summaries of a bucket's records per slot of ``SLOT_MS`` (a continuous aggregate): per slot
and numeric field, how many numbers, their sum, minimum and maximum (``BucketSummary``), which
compose into the mean, minimum, maximum, sum and count of any interval that is a multiple of the
slot. ``buckets.aggregates`` reads them for the whole slots of a range and the records for the
rest, and gives the same figures as from the records alone.

Each bucket's mark (``BucketSummaryMark``) says which slots are summarized: ``[since, until)``.

- Beat runs ``bucket_summaries_update`` every minute: for each bucket, the slots from ``until``
  that ended ``GRACE_MS`` ago or more, a bounded number of records per run. Its mark row is
  locked (SKIP LOCKED) meanwhile, so two runs never summarize the same bucket at once.
- A record written with a time of its own older than ``FRESH_MS`` (the API, a device's own
  ``ts``), or deleted, drops the summaries from its slot on and lowers ``until``, in the writer's
  transaction (``summaries_drop``); the next runs summarize those slots again. Records stamped
  with the server's time (the callback's, the API's without a ``ts``) need nothing: their time
  is at or after the moment the request started (the bucket's clock never goes back), and a
  transaction commits well within ``GRACE_MS``, before a run reaches their slot.
- Deleting from the oldest record (retention, a clear up to a time) raises ``since`` instead,
  so that the summaries after it stay.

A read never writes: slots not summarized yet are read from the records.
"""

import contextlib
from datetime import UTC, datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from buckets.models import Bucket, BucketRecord, BucketSummary, BucketSummaryMark
from core.times import to_ms

SLOT_MS = 300_000
# A slot is summarized once it ended this long ago: longer than any writer's transaction.
GRACE_MS = 120_000
# A record written with its own time older than this may fall in a slot a run is summarizing:
# it drops the summaries from there on. Half the grace: a run only reaches slots that ended
# GRACE_MS ago.
FRESH_MS = GRACE_MS // 2
# Records summarized per run at most (all buckets), and per statement.
RECORDS_PER_RUN = 500_000
RECORDS_PER_STATEMENT = 100_000


def slot_floor(ts):
    """The start of the slot holding ``ts`` (floor division: times before the epoch too)."""
    return ts - ts % SLOT_MS


def bucket_summaries_update(*, now_ms=None, records=RECORDS_PER_RUN):
    """Summarize the slots of every bucket that ended ``GRACE_MS`` ago or more, from where each
    bucket's summaries stop, about ``records`` records in all at most; returns how many records
    were summarized (0: nothing is left to do). A bucket another run holds is skipped."""
    now_ms = to_ms(timezone.now()) if now_ms is None else now_ms
    cutoff = slot_floor(now_ms - GRACE_MS)
    _create_marks()
    done = 0
    candidates = BucketSummaryMark.objects.filter(until__lt=cutoff).values_list("pk", flat=True)
    for bucket_id in list(candidates):
        if done >= records:
            break
        try:
            done += _summarize_bucket(bucket_id, cutoff, now_ms, records - done)
        except IntegrityError:
            continue  # the bucket was deleted meanwhile: its summaries would name no bucket
    return done


def _create_marks():
    """A mark for each bucket holding records that has none, starting at its oldest record's
    slot. A run summarizes a mark only once it is ``GRACE_MS`` old: a writer of past records
    that started before the mark existed has committed by then."""
    first = BucketRecord.objects.filter(bucket_id=OuterRef("pk")).order_by("ts")
    missing = Bucket.objects.filter(summary_mark__isnull=True).annotate(
        first_ts=Subquery(first.values("ts")[:1])
    )
    marks = [
        BucketSummaryMark(bucket_id=pk, since=slot_floor(ts), until=slot_floor(ts))
        for pk, ts in missing.filter(first_ts__isnull=False).values_list("pk", "first_ts")
    ]
    # A bucket deleted meanwhile fails them all: the next run makes the others' marks.
    with contextlib.suppress(IntegrityError), transaction.atomic():
        BucketSummaryMark.objects.bulk_create(marks, ignore_conflicts=True)


def _summarize_bucket(bucket_id, cutoff, now_ms, records):
    """Summarize one bucket's slots from its ``until`` towards ``cutoff``, ``records`` records at
    most (whole slots, at least one), in one transaction holding its mark; returns how many."""
    grace_start = datetime.fromtimestamp((now_ms - GRACE_MS) / 1000, tz=UTC)
    with transaction.atomic():
        mark = (
            BucketSummaryMark.objects.select_for_update(skip_locked=True)
            .filter(pk=bucket_id, until__lt=cutoff, created__lte=grace_start)
            .first()
        )
        if mark is None:
            return 0
        rows = BucketRecord.objects.filter(bucket_id=bucket_id, ts__gte=mark.until)
        first = rows.order_by("ts").values_list("ts", flat=True).first()
        if first is None or first >= cutoff:
            mark.until = cutoff
            mark.save(update_fields=["until"])
            return 0
        low = slot_floor(first)
        limit = min(records, RECORDS_PER_STATEMENT)
        edge = rows.filter(ts__gte=low).order_by("ts").values_list("ts", flat=True)[limit:]
        edge = next(iter(edge[:1]), None)
        high = cutoff if edge is None else min(cutoff, max(slot_floor(edge), low + SLOT_MS))
        count = _summarize(bucket_id, low, high)
        mark.until = high
        mark.save(update_fields=["until"])
        return count


def _summarize(bucket_id, low, high):
    """Write the summaries of the slots from ``low`` to ``high`` (ms, slot edges, ``high``
    excluded) from the records, in the database; returns how many records they hold."""
    from buckets import aggregates

    scope = aggregates.records_scope(bucket_id, SLOT_MS, low, high - 1)
    table = connection.ops.quote_name(BucketSummary._meta.db_table)
    numbers = aggregates.numbers_sql(scope)
    sql = f"""
        {numbers}
        INSERT INTO {table} (bucket_id, slot, path, numbers, total, least, greatest)
        SELECT %s, bin, NULL, COUNT(*), NULL, NULL, NULL FROM records GROUP BY bin
        UNION ALL
        SELECT %s, bin, path, COUNT(n), SUM(n), MIN(n), MAX(n) FROM numbers
        WHERE n IS NOT NULL GROUP BY bin, path
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, scope.params + [bucket_id, bucket_id])
    return (
        BucketSummary.objects.filter(
            bucket_id=bucket_id, slot__gte=low, slot__lt=high, path=None
        ).aggregate(n=Sum("numbers"))["n"]
        or 0
    )


def summaries_drop(*, bucket_id, min_ts, max_ts=None):
    """Records of ``bucket_id`` from ``min_ts`` to ``max_ts`` (ms, inclusive; None: open) were
    written or deleted, in the caller's transaction: drop the summaries they change. From the
    oldest record on (``min_ts`` None), ``since`` moves past ``max_ts``; else ``until`` comes
    down to ``min_ts``'s slot. Locks the mark (waiting for a run summarizing the bucket)."""
    mark = BucketSummaryMark.objects.select_for_update().filter(pk=bucket_id).first()
    if mark is None:
        return
    summaries = BucketSummary.objects.filter(bucket_id=bucket_id)
    if min_ts is None and max_ts is None:
        summaries._raw_delete(summaries.db)
        mark.delete()
        return
    if min_ts is None:
        since = slot_floor(max_ts) + SLOT_MS
        if since <= mark.since:
            return
        doomed = summaries.filter(slot__lt=since)
        doomed._raw_delete(doomed.db)
        mark.since, mark.until = since, max(mark.until, since)
        mark.save(update_fields=["since", "until"])
        return
    until = max(mark.since, slot_floor(min_ts))
    if until >= mark.until:
        return
    doomed = summaries.filter(slot__gte=until)
    doomed._raw_delete(doomed.db)
    mark.until = until
    mark.save(update_fields=["until"])


def summaries_drop_for_write(*, bucket_id, explicit, now_ms):
    """Records written with times of their own (``explicit``: ts to value): drop the summaries
    they change, when the oldest is older than ``FRESH_MS`` (no query otherwise)."""
    if explicit:
        oldest = min(explicit)
        if oldest < now_ms - FRESH_MS:
            summaries_drop(bucket_id=bucket_id, min_ts=oldest)


def summarized_span(bucket_id, low, high):
    """The summarized slots of ``bucket_id`` within ``[low, high)`` (None: open), as
    ``(start, end)`` on slot edges, or None when it has none."""
    mark = BucketSummaryMark.objects.filter(pk=bucket_id).values_list("since", "until").first()
    if mark is None:
        return None
    start, end = mark
    if low is not None:
        start = max(start, -(-low // SLOT_MS) * SLOT_MS)
    if high is not None:
        end = min(end, slot_floor(high))
    return (start, end) if start < end else None
