"""Aggregated bucket reads (``GET .../data?agg=1h&agg_type=mean``): one record per interval
holding records, ``{"ts": start of the interval, "val": {path: aggregate}}``, over every numeric
field of the records, nested ones by their dotted path. A record that is a bare number counts
under the path ``""``, and ``val`` is then that number when it is the only path; an interval
whose records hold no number has ``"val": {}``. Booleans, arrays and numbers beyond 1e300 are not
fields.

Computed in the database, from one range scan of the (bucket, ts) index per part below; what
comes back is one row per interval (and field), never the records.

- PostgreSQL: the fields are found in a sample of the range (its newest and oldest records);
  every record with exactly those keys (the common case: a device sends the same shape) is
  aggregated by direct extraction, a column per field, which costs about what reading the ts
  does; the other records go through a generic walk of their objects (a recursive query). Both
  parts give sums, counts, minimums and maximums per interval and field, merged here.
- SQLite: ``json_tree`` walks each record.
"""

from django.db import connection

from buckets.models import BucketRecord
from buckets.selectors import READ_MAX_ITEMS

AGG_TYPES = ("mean", "min", "max", "sum", "count")
# Weeks start on Monday (1970-01-05), the other intervals at the epoch (UTC).
_WEEK_MS = 7 * 86_400_000
_WEEK_ORIGIN_MS = 4 * 86_400_000
# Records whose shape is learnt from, at each end of the range; fields past this many go through
# the generic walk.
SAMPLE = 100
MAX_FIELDS = 200


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
):
    """The aggregates of ``bucket``'s records per interval of ``step_ms``: ``items`` intervals at
    most, newest first unless ``sort`` is ``asc``; ``min_ts``, ``max_ts`` (inclusive) and
    ``device`` as in ``bucket_records``."""
    if agg_type not in AGG_TYPES:
        raise ValueError(f"agg_type must be one of {', '.join(AGG_TYPES)}")
    scope = _Scope(bucket.pk, step_ms, min_ts, max_ts, device)
    order = "ASC" if sort == "asc" else "DESC"
    limit = max(0, min(items, READ_MAX_ITEMS))
    if connection.vendor == "postgresql":
        partials = _postgresql(scope, order, limit)
    else:
        partials = _sqlite(scope, order, limit)
    bins = sorted(partials, reverse=order == "DESC")[:limit]
    return [{"ts": start, "val": _values(partials[start], agg_type)} for start in bins]


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


def _add(partials, start, path, total, count, low, high):
    """Merge one part's (sum, count, min, max) of a field in an interval."""
    fields = partials.setdefault(start, {})
    if path is None or not count:
        return
    known = fields.get(path)
    if known is None:
        fields[path] = [total, count, low, high]
    else:
        known[0] += total
        known[1] += count
        known[2] = min(known[2], low)
        known[3] = max(known[3], high)


def _values(fields, agg_type):
    out = {}
    for path, (total, count, low, high) in sorted(fields.items()):
        value = {
            "mean": total / count,
            "min": low,
            "max": high,
            "sum": total,
            "count": count,
        }[agg_type]
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


def _sqlite(scope, order, limit):
    sql = f"""
        WITH records AS (
            SELECT {scope.start} AS bin, r.value AS v FROM {scope.table} r WHERE {scope.where}
        ), bins AS (
            SELECT DISTINCT bin FROM records ORDER BY bin {order} LIMIT {limit}
        ), fields AS (
            SELECT records.bin, replace(substr(t.fullkey, 3), '"', '') AS path, t.value AS n
            FROM records JOIN bins ON bins.bin = records.bin, json_tree(records.v) t
            WHERE t.type IN ('integer', 'real') AND instr(t.fullkey, '[') = 0
              AND abs(t.value) < 1e300
        )
        SELECT bins.bin, f.path, SUM(f.n), COUNT(f.n), MIN(f.n), MAX(f.n)
        FROM bins LEFT JOIN fields f ON f.bin = bins.bin
        GROUP BY bins.bin, f.path
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    partials = {}
    for row in _run(sql, scope.params):
        _add(partials, *row)
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
    its numbers is in a column), and its parameters."""
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
    for path in leaves:
        clauses.append("jsonb_typeof(r.value #> %s::text[]) IS DISTINCT FROM 'object'")
        params.append(list(path))
    return " AND ".join(clauses), params


def _number(expression):
    """A jsonb number as a double (a number past the double's range is not one): compared and
    cast as jsonb, never through text, which costs more than the rest of the read. Each column
    is computed once per record: its subquery has ``OFFSET 0``, which keeps PostgreSQL from
    inlining it into each of the four aggregates that read it."""
    return (
        f"CASE WHEN jsonb_typeof({expression}) = 'number' "
        f"AND {expression} BETWEEN '-1e300'::jsonb AND '1e300'::jsonb "
        f"THEN ({expression})::float8 END"
    )


def _postgresql(scope, order, limit):
    """One scan of the range: every interval (the ``limit`` first in ``order``), the aggregates
    of the sampled fields over the records of the sampled shape, and how many records are of
    another shape; then, only for the intervals holding such records, the generic walk."""
    shape = _shape(scope)
    objects, leaves = shape if shape is not None else ({}, [])
    covered, covered_params = _covered(objects, leaves) if shape is not None else ("false", [])
    column = _number("r.value #> %s::text[]")
    columns = "".join(f", {column} AS x{i}" for i in range(len(leaves)))
    column_params = [list(path) for path in leaves for _ in range(column.count("%s"))]
    aggregates = "".join(
        f", SUM(x{i}) FILTER (WHERE ok), COUNT(x{i}) FILTER (WHERE ok), "
        f"MIN(x{i}) FILTER (WHERE ok), MAX(x{i}) FILTER (WHERE ok)"
        for i in range(len(leaves))
    )
    sql = f"""
        SELECT bin, COUNT(*) FILTER (WHERE NOT ok){aggregates} FROM (
            SELECT {scope.start} AS bin, COALESCE({covered}, false) AS ok{columns}
            FROM {scope.table} r WHERE {scope.where}
            OFFSET 0
        ) records GROUP BY bin ORDER BY bin {order} LIMIT {limit}
    """  # noqa: S608 (names and numbers of this module; values are parameters)
    partials, others = {}, []
    paths = [".".join(path) for path in leaves]
    for start, odd, *values in _run(sql, covered_params + column_params + scope.params):
        _add(partials, start, None, 0, 0, None, None)
        if odd:
            others.append(start)
        for i, path in enumerate(paths):
            _add(partials, start, path, *values[4 * i : 4 * i + 4])
    if others:
        sql = f"""
            WITH RECURSIVE fields(bin, path, v) AS (
                SELECT {scope.start}, '', r.value FROM {scope.table} r
                WHERE {scope.where} AND NOT COALESCE({covered}, false)
                  AND r.ts >= %s AND r.ts <= %s
                UNION ALL
                SELECT f.bin, CASE WHEN f.path = '' THEN e.key ELSE f.path || '.' || e.key END,
                       e.value
                FROM fields f, jsonb_each(f.v) e WHERE jsonb_typeof(f.v) = 'object'
            ), numbers AS (
                SELECT bin, path, {_number("v")} AS n FROM fields
            )
            SELECT bin, path, SUM(n), COUNT(n), MIN(n), MAX(n) FROM numbers
            WHERE n IS NOT NULL GROUP BY bin, path
        """  # noqa: S608 (names and numbers of this module; values are parameters)
        # The intervals kept are consecutive: the records of other shapes between the first and
        # the last of them that hold some.
        bounds = [min(others), max(others) + scope.step - 1]
        for row in _run(sql, scope.params + covered_params + bounds):
            _add(partials, *row)
    return partials
