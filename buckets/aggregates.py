"""Aggregated bucket reads (``GET .../data?agg=1h&agg_type=mean``): one record per interval
holding records, ``{"ts": start of the interval, "val": {path: aggregate}}``, over every numeric
field of the records, nested ones by their dotted path. A record that is a bare number counts
under the path ``""``, and ``val`` is then that number when it is the only path; an interval
whose records hold no number has ``"val": {}``. Booleans, arrays, and numbers of 1e300 or more in
size are not fields.

Computed in the database, from one range scan of the (bucket, ts) index per part below; what
comes back is one row per interval (and field), never the records.

- PostgreSQL: the fields are found in a sample of the range (its newest and oldest records);
  every record with exactly those keys (the common case: a device sends the same shape) is
  aggregated by direct extraction, a column per field; the other records go through a generic
  walk of their objects (a recursive query). Both parts give, per interval and field, the count
  and the aggregate asked for (a sum, minimum or maximum), merged here.
- SQLite: ``json_tree`` walks each record.

An interval that is a multiple of ``buckets.summaries.SLOT_MS`` (5 minutes) over a range holding
an hour or more of summarized slots reads the summaries of those slots (a row per slot and
field: count, sum, minimum, maximum) and the records of the rest of the range, the edges and
the newest slots; what they give is what the records alone give.

What a record costs on PostgreSQL is the jsonb functions called on it (each unpacks its
argument anew): each field is extracted once, as its text, which tells its type and gives its
number; the shape check reads those texts, and the aggregates are only those ``agg_type`` needs.
"""

import operator

from django.db import connection

from buckets import summaries
from buckets.models import BucketRecord, BucketSummary, BucketSummaryMark
from buckets.selectors import READ_MAX_ITEMS, bucket_read

AGG_TYPES = ("mean", "min", "max", "sum", "count")
# The SQL aggregate each agg_type needs besides COUNT, and how two parts' results merge.
_AGGREGATE = {
    "mean": ("SUM", operator.add),
    "sum": ("SUM", operator.add),
    "min": ("MIN", min),
    "max": ("MAX", max),
    "count": ("COUNT", operator.add),
}
# Weeks start on Monday (1970-01-05), the other intervals at the epoch (UTC).
_WEEK_MS = 7 * 86_400_000
_WEEK_ORIGIN_MS = 4 * 86_400_000
# A chart draws at most CHART_RECORDS records as they are; a range holding more is drawn as means
# per interval, the shortest of CHART_INTERVALS (with what a chart calls them) that makes at most
# CHART_POINTS intervals of the range.
CHART_RECORDS = READ_MAX_ITEMS
CHART_POINTS = 800
CHART_INTERVALS = {
    60_000: "1-minute",
    300_000: "5-minute",
    900_000: "15-minute",
    1_800_000: "30-minute",
    3_600_000: "hourly",
    10_800_000: "3-hour",
    21_600_000: "6-hour",
    43_200_000: "12-hour",
    86_400_000: "daily",
    _WEEK_MS: "weekly",
}
# Records whose shape is learnt from, at each end of the range; fields past this many go through
# the generic walk.
SAMPLE = 100
MAX_FIELDS = 200
# A range whose whole summarized slots (buckets.summaries) span this much or more reads them
# instead of their records; a shorter one reads only records.
MIN_SUMMARIZED_MS = 3_600_000


def bucket_aggregate(
    *,
    bucket,
    step_ms,
    agg_type="mean",
    items=READ_MAX_ITEMS,
    min_ts=None,
    max_ts=None,
    sort="desc",
    device=None,
    fields=None,
):
    """The aggregates of ``bucket``'s records per interval of ``step_ms``: ``items`` intervals at
    most, newest first unless ``sort`` is ``asc``; ``min_ts``, ``max_ts`` (inclusive) and
    ``device`` as in ``bucket_records``. ``fields``: only these dotted paths (``temperature``,
    ``gps.lat``), as a chart of them needs; on PostgreSQL each is then read straight from the
    record, with no sample and no walk of the others, which costs a fraction per record."""
    if agg_type not in AGG_TYPES:
        raise ValueError(f"agg_type must be one of {', '.join(AGG_TYPES)}")
    order = "ASC" if sort == "asc" else "DESC"
    limit = max(0, min(items, READ_MAX_ITEMS))
    span = None
    short = None not in (min_ts, max_ts) and max_ts - min_ts < MIN_SUMMARIZED_MS
    if step_ms % summaries.SLOT_MS == 0 and device is None and not short:
        span = summaries.summarized_span(bucket.pk, min_ts, None if max_ts is None else max_ts + 1)
    partials = None
    if span is not None and span[1] - span[0] >= MIN_SUMMARIZED_MS:
        # The summaries of the span's slots, and the records on each side of it.
        partials = _summarized(bucket.pk, step_ms, span, agg_type, order, limit, fields)
    if partials is None:
        scope = _Scope(bucket.pk, step_ms, min_ts, max_ts, device)
        partials = _records_partials(scope, agg_type, order, limit, fields)
    else:
        for low, high in ((min_ts, span[0] - 1), (span[1], max_ts)):
            if low is None or high is None or low <= high:
                scope = _Scope(bucket.pk, step_ms, low, high, None)
                for start, found in _records_partials(
                    scope, agg_type, order, limit, fields
                ).items():
                    _add(partials, agg_type, start, None, 0, None)
                    for path, (count, value) in found.items():
                        _add(partials, agg_type, start, path, count, value)
    bins = sorted(partials, reverse=order == "DESC")[:limit]
    return [{"ts": start, "val": _values(partials[start], agg_type)} for start in bins]


def _records_partials(scope, agg_type, order, limit, fields):
    """The aggregates of the records of ``scope`` (per interval, the ``limit`` first in
    ``order``), as ``_add`` merges them."""
    if connection.vendor == "postgresql" and fields is not None:
        return _postgresql_named(scope, agg_type, order, limit, fields)
    if connection.vendor == "postgresql":
        return _postgresql(scope, agg_type, order, limit)
    return _sqlite(scope, agg_type, order, limit, fields)


def chart_interval(span_ms):
    """The interval a chart of ``span_ms`` draws means over (ms)."""
    for step in CHART_INTERVALS:
        if span_ms <= step * CHART_POINTS:
            return step
    return _WEEK_MS


def bucket_chart(*, bucket, min_ts, max_ts, fields=None, step_ms=None, agg_type="mean"):
    """What a chart of ``bucket``'s records from ``min_ts`` to ``max_ts`` (ms, inclusive) draws,
    oldest first, as the API answers it: ``(None, records)`` when the range holds
    ``CHART_RECORDS`` records or fewer, else ``(interval in ms, means per interval)``, the
    newest ``READ_MAX_ITEMS`` intervals at most. ``fields``: the paths it draws (the others are
    not aggregated); ``step_ms`` and ``agg_type``: an aggregation of its own, whatever the
    range holds."""
    if step_ms is None:
        in_range = BucketRecord.objects.filter(bucket_id=bucket.pk, ts__gte=min_ts, ts__lte=max_ts)
        if not in_range.order_by("ts")[CHART_RECORDS:].exists():
            records = bucket_read(
                bucket=bucket, items=CHART_RECORDS, min_ts=min_ts, max_ts=max_ts, sort="asc"
            )
            return None, records
        step_ms, agg_type = chart_interval(max_ts - min_ts), "mean"
    rows = bucket_aggregate(
        bucket=bucket,
        step_ms=step_ms,
        agg_type=agg_type,
        min_ts=min_ts,
        max_ts=max_ts,
        fields=fields,
    )
    return step_ms, rows[::-1]


class _Scope:
    """The records read: their WHERE clause, its parameters, and their interval's start."""

    def __init__(self, bucket_id, step_ms, min_ts, max_ts, device):
        origin = _WEEK_ORIGIN_MS if step_ms % _WEEK_MS == 0 else 0
        self.step = step_ms
        self.table = connection.ops.quote_name(BucketRecord._meta.db_table)
        clauses, self.params = ["r.bucket_id = %s"], [bucket_id]
        bounds = (("r.device = %s", device), ("r.ts >= %s", min_ts), ("r.ts <= %s", max_ts))
        for clause, value in bounds:
            if value is not None:
                clauses.append(clause)
                self.params.append(value)
        self.where = " AND ".join(clauses)
        # Floor division, so that times before the epoch fall in their interval too.
        self.start = f"(r.ts - ((r.ts - {origin}) %% {step_ms} + {step_ms}) %% {step_ms})"
        self.rows = BucketRecord.objects.filter(bucket_id=bucket_id)
        if device is not None:
            self.rows = self.rows.filter(device=device)
        if min_ts is not None:
            self.rows = self.rows.filter(ts__gte=min_ts)
        if max_ts is not None:
            self.rows = self.rows.filter(ts__lte=max_ts)


def _add(partials, agg_type, start, path, count, value):
    """Merge one part's count and aggregate of a field in an interval (the interval alone when
    ``path`` is None)."""
    fields = partials.setdefault(start, {})
    if path is None or not count:
        return
    known = fields.get(path)
    if known is None:
        fields[path] = [count, value]
    else:
        known[0] += count
        known[1] = _AGGREGATE[agg_type][1](known[1], value)


def _values(fields, agg_type):
    out = {}
    for path, (count, value) in sorted(fields.items()):
        if agg_type == "mean":
            value = value / count
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # 21.0 from one database is 21 from the other
        out[path] = value
    if set(out) == {""}:
        return out[""]
    return out


def _run(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- SQLite -----------------------------------------------------------------------------------

# The dotted path of a json_tree row (``$.env."rel hum"`` is ``env.rel hum``).
_SQLITE_PATH = "replace(substr(t.fullkey, 3), '\"', '')"


def _sqlite(scope, agg_type, order, limit, fields):
    named = ""
    if fields is not None:
        named = f"AND {_SQLITE_PATH} IN ({', '.join(['%s'] * len(fields))})" if fields else "AND 0"
    sql = f"""
        WITH records AS (
            SELECT {scope.start} AS bin, r.value AS v FROM {scope.table} r WHERE {scope.where}
        ), bins AS (
            SELECT DISTINCT bin FROM records ORDER BY bin {order} LIMIT {limit}
        ), fields AS (
            SELECT records.bin, {_SQLITE_PATH} AS path, t.value AS n
            FROM records JOIN bins ON bins.bin = records.bin, json_tree(records.v) t
            WHERE t.type IN ('integer', 'real') AND instr(t.fullkey, '[') = 0
              AND abs(t.value) < 1e300 {named}
        )
        SELECT bins.bin, f.path, COUNT(f.n), {_AGGREGATE[agg_type][0]}(f.n)
        FROM bins LEFT JOIN fields f ON f.bin = bins.bin
        GROUP BY bins.bin, f.path
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    partials = {}
    for row in _run(sql, scope.params + list(fields or ())):
        _add(partials, agg_type, *row)
    return partials


# --- PostgreSQL -------------------------------------------------------------------------------


def _shape(scope):
    """The keys of each object (by path) and the non-object paths in a sample of the records,
    or None when the sample has a record that is not an object or too many fields."""
    sample = list(scope.rows.order_by("ts").values_list("value", flat=True)[:SAMPLE])
    sample += scope.rows.order_by("-ts").values_list("value", flat=True)[:SAMPLE]
    objects, leaves = {}, set()

    def walk(value, prefix):
        objects.setdefault(prefix, set()).update(value)
        for key, item in value.items():
            if isinstance(item, dict):
                walk(item, (*prefix, key))
            else:
                leaves.add((*prefix, key))

    for value in sample:
        if not isinstance(value, dict):
            return None
        walk(value, ())
    if not sample or len(leaves) > MAX_FIELDS:
        return None
    return objects, sorted(leaves)


def _covered(objects, leaves):
    """SQL true for a record with only the sample's keys, where the sample has them (so each of
    its numbers is in a column), and its parameters. It reads the record's ``value`` and the
    text of each sampled field, ``t0``, ``t1``... (see ``_records``)."""
    clauses = ["jsonb_typeof(r.value) = 'object'", "r.value - %s::text[] = '{}'::jsonb"]
    params = [sorted(objects[()])]
    for prefix, keys in objects.items():
        if prefix:
            clauses.append(
                "CASE WHEN r.value #> %s::text[] IS NULL THEN true "
                "WHEN jsonb_typeof(r.value #> %s::text[]) = 'object' "
                "THEN (r.value #> %s::text[]) - %s::text[] = '{}'::jsonb ELSE false END"
            )
            params += [list(prefix)] * 3 + [sorted(keys)]
    # A field that is an object here holds numbers no column has: its text starts with "{".
    clauses += [f"(r.t{i} IS NULL OR ascii(r.t{i}) <> 123)" for i in range(len(leaves))]
    return " AND ".join(clauses), params


def _number(text):
    """SQL: the double that a jsonb value's text (``value::text``) is, NULL when the value is not
    a number or is 1e300 or more in size. Strings are quoted in that text, so it starts with a
    digit or "-" exactly when the value is a number; the double is read from the same text that
    PostgreSQL's own jsonb cast reads. A text of 300 characters at most is a number under 1e300;
    only a longer one is compared as a numeric."""
    return (
        f"CASE WHEN (ascii({text}) BETWEEN 48 AND 57 OR ascii({text}) = 45) "
        f"AND (octet_length({text}) <= 300 OR abs({text}::numeric) < 1e300) "
        f"THEN {text}::float8 END"
    )


def _records(scope, leaves, bounded=False):
    """SQL of the records read and its parameters: their interval ``bin``, ``value``, and the
    text of each sampled field, ``t0``, ``t1``..., extracted once per record: ``OFFSET 0`` keeps
    PostgreSQL from inlining the subquery into every expression that reads a column (and so
    extracting it again). ``bounded``: two more parameters, the lowest and highest ``ts``."""
    texts = "".join(f", (r.value #> %s::text[])::text AS t{i}" for i in range(len(leaves)))
    bounds = " AND r.ts >= %s AND r.ts <= %s" if bounded else ""
    sql = f"""
        SELECT {scope.start} AS bin, r.value{texts}
        FROM {scope.table} r WHERE {scope.where}{bounds}
        OFFSET 0
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    return sql, [list(path) for path in leaves] + scope.params


def _postgresql(scope, agg_type, order, limit):
    """One scan of the range: every interval (the ``limit`` first in ``order``), the count and
    aggregate of the sampled fields over the records of the sampled shape, and how many records
    are of another shape; then, only for the intervals holding such records, the generic walk."""
    shape = _shape(scope)
    objects, leaves = shape if shape is not None else ({}, [])
    covered, covered_params = _covered(objects, leaves) if shape is not None else ("false", [])
    function = _AGGREGATE[agg_type][0]
    records, records_params = _records(scope, leaves)
    numbers = "".join(f", {_number(f'r.t{i}')} AS x{i}" for i in range(len(leaves)))
    aggregates = "".join(
        f", COUNT(x{i}) FILTER (WHERE ok), {function}(x{i}) FILTER (WHERE ok)"
        for i in range(len(leaves))
    )
    sql = f"""
        SELECT bin, COUNT(*) FILTER (WHERE NOT ok){aggregates} FROM (
            SELECT r.bin, COALESCE({covered}, false) AS ok{numbers}
            FROM ({records}) r
            OFFSET 0
        ) records GROUP BY bin ORDER BY bin {order} LIMIT {limit}
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    partials, others = {}, []
    paths = [".".join(path) for path in leaves]
    for start, odd, *values in _run(sql, covered_params + records_params):
        _add(partials, agg_type, start, None, 0, None)
        if odd:
            others.append(start)
        for i, path in enumerate(paths):
            _add(partials, agg_type, start, path, *values[2 * i : 2 * i + 2])
    if others:
        # The intervals kept are consecutive: the records of other shapes between the first and
        # the last of them that hold some.
        records, records_params = _records(scope, leaves, bounded=True)
        records_params += [min(others), max(others) + scope.step - 1]
        sql = f"""
            WITH RECURSIVE fields(bin, path, v) AS (
                SELECT r.bin, '', r.value FROM ({records}) r
                WHERE NOT COALESCE({covered}, false)
                UNION ALL
                SELECT f.bin, CASE WHEN f.path = '' THEN e.key ELSE f.path || '.' || e.key END,
                       e.value
                FROM fields f, jsonb_each(f.v) e WHERE jsonb_typeof(f.v) = 'object'
            ), numbers AS (
                SELECT bin, path, {_number("t")} AS n FROM (
                    SELECT bin, path, v::text AS t FROM fields
                    WHERE jsonb_typeof(v) = 'number'
                    OFFSET 0
                ) leaves
            )
            SELECT bin, path, COUNT(n), {function}(n) FROM numbers
            WHERE n IS NOT NULL GROUP BY bin, path
        """  # noqa: S608 (names and numbers of this module; values are parameters)
        for row in _run(sql, records_params + covered_params):
            _add(partials, agg_type, *row)
    return partials


def _postgresql_named(scope, agg_type, order, limit, fields):
    """The aggregates of the named fields only, in one scan of the range: each field's text is
    extracted once per record (``#>``, by its path), and read as a number as ``_number`` says.
    A path part that is a number names a key of an object, never an element of an array (as
    the walk finds fields): the value holding it must be an object."""
    texts, params = [], []
    for i, field in enumerate(fields):
        path = field.split(".")
        guards = []
        for j, part in enumerate(path):
            if part.isdigit():
                guards.append("jsonb_typeof(r.value #> %s::text[]) = 'object'")
                params.append(path[:j])
        text = "(r.value #> %s::text[])::text"
        if guards:
            text = f"CASE WHEN {' AND '.join(guards)} THEN {text} END"
        params.append(path)
        texts.append(f", {text} AS t{i}")
    function = _AGGREGATE[agg_type][0]
    numbers = "".join(f", {_number(f'r.t{i}')} AS x{i}" for i in range(len(fields)))
    aggregates = "".join(f", COUNT(x{i}), {function}(x{i})" for i in range(len(fields)))
    sql = f"""
        SELECT bin{aggregates} FROM (
            SELECT r.bin{numbers} FROM (
                SELECT {scope.start} AS bin{"".join(texts)}
                FROM {scope.table} r WHERE {scope.where}
                OFFSET 0
            ) r
            OFFSET 0
        ) records GROUP BY bin ORDER BY bin {order} LIMIT {limit}
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    partials = {}
    for start, *values in _run(sql, params + scope.params):
        _add(partials, agg_type, start, None, 0, None)
        for i, path in enumerate(fields):
            _add(partials, agg_type, start, path, *values[2 * i : 2 * i + 2])
    return partials


# --- Summaries (buckets.summaries) ------------------------------------------------------------

# What each agg_type reads of a summary row: its column, and how its slots compose.
_SUMMARY = {
    "mean": "SUM(s.total)",
    "sum": "SUM(s.total)",
    "min": "MIN(s.least)",
    "max": "MAX(s.greatest)",
    "count": "CAST(SUM(s.numbers) AS BIGINT)",
}


def _summarized(bucket_id, step_ms, span, agg_type, order, limit, fields):
    """The aggregates of the summaries of the slots of ``span`` (per interval, the ``limit``
    first in ``order``), or None when there are none: then the records are read instead. One
    statement, which checks that the mark still covers the span in the same snapshot (a writer
    of past records may have dropped some since ``summarized_span`` read it)."""
    low, high = span
    origin = _WEEK_ORIGIN_MS if step_ms % _WEEK_MS == 0 else 0
    start = f"(s.slot - ((s.slot - {origin}) %% {step_ms} + {step_ms}) %% {step_ms})"
    summary = connection.ops.quote_name(BucketSummary._meta.db_table)
    mark = connection.ops.quote_name(BucketSummaryMark._meta.db_table)
    named, named_params = "", []
    if fields is not None:
        named = "AND (s.path IS NULL"
        if fields:
            named += f" OR s.path IN ({', '.join(['%s'] * len(fields))})"
            named_params = list(fields)
        named += ")"
    # The intervals kept are consecutive: the summaries between the first and the last of them.
    sql = f"""
        WITH bins AS (
            SELECT DISTINCT {start} AS bin FROM {summary} s
            WHERE s.bucket_id = %s AND s.slot >= %s AND s.slot < %s AND s.path IS NULL
              AND EXISTS (
                SELECT 1 FROM {mark} m
                WHERE m.bucket_id = %s AND m.since <= %s AND m.until >= %s
              )
            ORDER BY bin {order} LIMIT {limit}
        ), edges AS (
            SELECT MIN(bin) AS low, MAX(bin) + {step_ms} AS high FROM bins
        )
        SELECT {start} AS bin, s.path, CAST(SUM(s.numbers) AS BIGINT), {_SUMMARY[agg_type]}
        FROM edges, {summary} s
        WHERE s.bucket_id = %s AND s.slot >= %s AND s.slot < %s
          AND s.slot >= edges.low AND s.slot < edges.high {named}
        GROUP BY 1, s.path
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    params = [bucket_id, low, high, bucket_id, low, high, bucket_id, low, high, *named_params]
    rows = _run(sql, params)
    if not rows:
        return None
    partials = {}
    for start_ms, path, count, value in rows:
        _add(partials, agg_type, start_ms, None, 0, None)
        if path is not None:
            _add(partials, agg_type, start_ms, path, count, value)
    return partials


def records_scope(bucket_id, step_ms, min_ts, max_ts):
    """The records of ``bucket_id`` from ``min_ts`` to ``max_ts`` (ms, inclusive) per interval of
    ``step_ms``, for ``numbers_sql``."""
    return _Scope(bucket_id, step_ms, min_ts, max_ts, None)


def numbers_sql(scope):
    """A WITH clause of two tables over the records of ``scope``: ``records`` (``bin``, one row
    per record) and ``numbers`` (``bin``, ``path``, ``n``: each field of each record, ``n`` its
    number or NULL), found as the aggregates above find them (on PostgreSQL the generic walk);
    its parameters are ``scope.params``."""
    if connection.vendor == "postgresql":
        return f"""
            WITH RECURSIVE records AS (
                SELECT {scope.start} AS bin, r.value FROM {scope.table} r WHERE {scope.where}
            ), fields(bin, path, v) AS (
                SELECT r.bin, '', r.value FROM records r
                UNION ALL
                SELECT f.bin, CASE WHEN f.path = '' THEN e.key ELSE f.path || '.' || e.key END,
                       e.value
                FROM fields f, jsonb_each(f.v) e WHERE jsonb_typeof(f.v) = 'object'
            ), numbers AS (
                SELECT bin, path, {_number("t")} AS n FROM (
                    SELECT bin, path, v::text AS t FROM fields
                    WHERE jsonb_typeof(v) = 'number'
                    OFFSET 0
                ) leaves
            )
        """  # noqa: S608 (names and numbers of this module; values are parameters)
    return f"""
        WITH records AS (
            SELECT {scope.start} AS bin, r.value AS v FROM {scope.table} r WHERE {scope.where}
        ), numbers AS (
            SELECT records.bin, {_SQLITE_PATH} AS path, t.value AS n
            FROM records, json_tree(records.v) t
            WHERE t.type IN ('integer', 'real') AND instr(t.fullkey, '[') = 0
              AND abs(t.value) < 1e300
        )
    """  # noqa: S608 (names and numbers of this module; values are parameters)
