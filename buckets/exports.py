"""Writing a bucket's records to a CSV, JSON or ARFF file with flat memory.

Records are read a page at a time with keyset pagination on the (bucket, ts) index (``ts > last
ORDER BY ts LIMIT n``): each page is one index range scan, there is no long transaction or open
cursor, and progress written between pages is visible to other connections at once. Values are
read as JSON text: the JSON export copies it untouched; CSV and ARFF parse it once per row. Each
file says which device wrote each record: a ``device`` key in JSON, a ``device`` column in CSV and
ARFF when devices wrote records of the range (empty for the API's writes).

CSV and ARFF need their columns before the first row: one aggregate query over the same range asks
the database for the set of top-level keys (and, for ARFF, whether each holds only numbers).
"""

import csv
import functools
import json
import re
from contextlib import contextmanager
from datetime import date, timedelta

from django.db import connection, transaction

from buckets.models import BucketExport, BucketRecord

PAGE_SIZE = 5000

CONTENT_TYPES = {
    BucketExport.DataType.CSV: "text/csv; charset=utf-8",
    BucketExport.DataType.JSON: "application/json",
    BucketExport.DataType.ARFF: "text/x-arff; charset=utf-8",
}

# The CSV and ARFF column of records that are not JSON objects.
VALUE_COLUMN = "value"
# The CSV and ARFF column of the device that wrote each record, after ``ts``. Device ids are
# identifiers: the JSON export writes them without escaping.
DEVICE_COLUMN = "device"

_EPOCH_DATE = date(1970, 1, 1)


def _table():
    return connection.ops.quote_name(BucketRecord._meta.db_table)


def _range_sql(export, alias=""):
    conditions, params = [f"{alias}bucket_id = %s"], [export.bucket_id]
    if export.min_ts is not None:
        conditions.append(f"{alias}ts >= %s")
        params.append(export.min_ts)
    if export.max_ts is not None:
        conditions.append(f"{alias}ts <= %s")
        params.append(export.max_ts)
    return " AND ".join(conditions), params


@contextmanager
def _scan_cursor():
    """A cursor for the queries that scan the whole range: PostgreSQL's JIT off, for they are
    mis-estimated through the JSON set functions and it would spend more time compiling them
    than running them. (No transaction on SQLite: ours take the write lock.)"""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield cursor


def _count(export):
    where, params = _range_sql(export)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {_table()} WHERE {where}", params)  # noqa: S608 (table name only)
        return cursor.fetchone()[0]


def _pages(export):
    """Lists of (ts, JSON text or None, device or None), oldest first, ``PAGE_SIZE`` at a time."""
    where, params = _range_sql(export)
    value = "value::text" if connection.vendor == "postgresql" else "value"
    sql = f"SELECT ts, {value}, device FROM {_table()} WHERE {where} {{after}} ORDER BY ts LIMIT %s"  # noqa: S608 (table name only)
    after = []
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.format(after="AND ts > %s" if after else ""), params + after + [PAGE_SIZE]
            )
            rows = cursor.fetchall()
        if rows:
            yield rows
        if len(rows) < PAGE_SIZE:
            return
        after = [rows[-1][0]]


def _has_devices(export):
    """Whether devices wrote records of the range (an index scan that stops at the first)."""
    where, params = _range_sql(export)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_table()} WHERE {where} AND device IS NOT NULL)",  # noqa: S608 (table name only)
            params,
        )
        return bool(cursor.fetchone()[0])


def _keys(export):
    """The records' top-level keys, and whether some records are not objects: one scan."""
    where, params = _range_sql(export, alias="r.")
    if connection.vendor == "postgresql":
        sql = (
            "SELECT DISTINCT k, jsonb_typeof(r.value) = 'object' "  # noqa: S608 (table name only)
            f"FROM {_table()} r LEFT JOIN LATERAL jsonb_object_keys("
            "CASE WHEN jsonb_typeof(r.value) = 'object' THEN r.value END) k ON TRUE "
            f"WHERE {where}"
        )
    else:
        sql = (
            "SELECT DISTINCT k.key, json_type(r.value) = 'object' "  # noqa: S608 (table name only)
            f"FROM {_table()} r LEFT JOIN json_each("
            "CASE WHEN json_type(r.value) = 'object' THEN r.value END) k "
            f"WHERE {where}"
        )
    with _scan_cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    keys = {key for key, _ in found if key is not None}
    # An empty object has no key either: only a row that is not an object needs the column.
    others = any(key is None and not is_object for key, is_object in found)
    return keys, others


def _numeric_columns(export):
    """{key: True when every value of that key is a number or null}, for ARFF's attributes, and
    the same for records that are not objects (None when there are none)."""
    where, params = _range_sql(export, alias="r.")
    table = _table()
    if connection.vendor == "postgresql":
        keys_sql = (
            "SELECT k.key, bool_and(jsonb_typeof(k.value) IN ('number', 'null')) "  # noqa: S608 (table name only)
            f"FROM {table} r CROSS JOIN LATERAL jsonb_each(r.value) k "
            f"WHERE {where} AND jsonb_typeof(r.value) = 'object' GROUP BY k.key"
        )
        others_sql = (
            "SELECT COUNT(*), COALESCE(bool_and(r.value IS NULL OR "  # noqa: S608 (table name only)
            "jsonb_typeof(r.value) IN ('number', 'null')), TRUE) "
            f"FROM {table} r WHERE {where} "
            "AND (r.value IS NULL OR jsonb_typeof(r.value) <> 'object')"
        )
    else:
        keys_sql = (
            "SELECT k.key, MIN(k.type IN ('integer', 'real', 'null')) "  # noqa: S608 (table name only)
            f"FROM {table} r, json_each(r.value) k "
            f"WHERE {where} AND json_type(r.value) = 'object' GROUP BY k.key"
        )
        others_sql = (
            "SELECT COUNT(*), COALESCE(MIN(r.value IS NULL OR "  # noqa: S608 (table name only)
            "json_type(r.value) IN ('integer', 'real', 'null')), 1) "
            f"FROM {table} r WHERE {where} AND (r.value IS NULL OR json_type(r.value) <> 'object')"
        )
    with _scan_cursor() as cursor:
        cursor.execute(keys_sql, params)
        numeric = {key: bool(is_numeric) for key, is_numeric in cursor.fetchall()}
        cursor.execute(others_sql, params)
        others, others_numeric = cursor.fetchone()
    return numeric, bool(others_numeric) if others else None


def _columns(export, *, numeric=False):
    """[(key, numeric)]: the records' top-level keys, sorted, then ``value`` when some records
    are not objects (it takes in objects' own "value" key too, if there is one). ``numeric``
    (asked for ARFF only: it costs a heavier query) is True when all values of that column are
    numbers or null; without asking, it is None."""
    if numeric:
        by_key, others = _numeric_columns(export)
    else:
        keys, has_others = _keys(export)
        by_key, others = dict.fromkeys(keys), (None if not has_others else False)
    # Sorted here, not by the database's collation: the same order on every database.
    columns = sorted((key, flag) for key, flag in by_key.items() if key != VALUE_COLUMN)
    if others is not None or VALUE_COLUMN in by_key:
        flags = [flag for flag in (by_key.get(VALUE_COLUMN, True), others) if flag is not None]
        columns.append((VALUE_COLUMN, all(flags) if numeric else None))
    return columns


# Timestamps, as text for the file.


@functools.lru_cache(maxsize=4096)
def _minute(minutes):
    """``2023-11-14T22:13:`` for a number of minutes since the epoch."""
    days, minute_of_day = divmod(minutes, 1440)
    hour, minute = divmod(minute_of_day, 60)
    return f"{(_EPOCH_DATE + timedelta(days=days)).isoformat()}T{hour:02d}:{minute:02d}:"


def _iso(ts):
    """``2023-11-14T22:13:20.000Z`` (UTC). The minute is formatted once (records a second apart
    share it 60 times), the rest by arithmetic: a datetime per row would cost a third of the
    export's time."""
    minutes, millis = divmod(ts, 60_000)
    try:
        prefix = _minute(minutes)
    except OverflowError:
        return str(ts)
    second, millis = divmod(millis, 1000)
    return f"{prefix}{second:02d}.{millis:03d}Z"


def _seconds(ts):
    whole, millis = divmod(abs(ts), 1000)
    sign = "-" if ts < 0 else ""
    return f"{sign}{whole}" if not millis else f"{sign}{whole}.{millis:03d}".rstrip("0")


_TS_TEXT = {
    BucketExport.TimestampFormat.ISO: _iso,
    BucketExport.TimestampFormat.SECONDS: _seconds,
    BucketExport.TimestampFormat.MILLISECONDS: str,
}


def _ts_json(timestamp_format):
    if timestamp_format == BucketExport.TimestampFormat.ISO:
        return lambda ts: f'"{_iso(ts)}"'
    return _TS_TEXT[timestamp_format]


# Cells.


def _compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _cell(value):
    """A CSV cell: strings as they are, numbers and booleans as in JSON, objects and arrays as
    compact JSON, null or missing as empty."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    return _compact(value)


_ARFF_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _arff_quote(text):
    escaped = (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def _arff_name(name):
    return name if _ARFF_PLAIN.match(name) else _arff_quote(name)


def _arff_cell(value, numeric):
    if value is None:
        return "?"
    if numeric:
        return repr(value) if type(value) is float else str(value)
    return _arff_quote(_cell(value))


# Writers: each takes the export, an open text file, the pages and a progress callback.


def _row_cells(keys, value_index, value):
    """The cells of a record in column order: an object's keys, or a non-object in ``value``."""
    if type(value) is dict:
        return list(map(value.get, keys))
    cells = [None] * len(keys)
    if value_index is not None:
        cells[value_index] = value
    return cells


def _layout(export, *, numeric=False):
    """(columns, keys, index of the ``value`` column or None, whether there is a device column)."""
    columns = _columns(export, numeric=numeric)
    keys = [key for key, _ in columns]
    value_index = keys.index(VALUE_COLUMN) if VALUE_COLUMN in keys else None
    return columns, keys, value_index, _has_devices(export)


_scan = json.JSONDecoder().scan_once


def _load(raw):
    """A value read as JSON text. The decoder's scanner directly: the database's JSON text has
    no surrounding whitespace, and json.loads's checks around it cost a third of the parse."""
    if raw is None:
        return None
    try:
        value, end = _scan(raw, 0)
    except StopIteration:
        return json.loads(raw)
    return value if end == len(raw) else json.loads(raw)


# Cells the csv module writes as _cell would (None as empty, numbers as in JSON): most rows
# need no conversion in Python.
_CSV_PLAIN = frozenset({str, int, float, type(None)})


def _write_csv(export, out, pages, progress):
    _, keys, value_index, devices = _layout(export)
    ts_text = _TS_TEXT[export.timestamp_format]
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ts", DEVICE_COLUMN, *keys] if devices else ["ts", *keys])
    plain = _CSV_PLAIN.issuperset
    rows = 0
    for page in pages:
        lines = []
        for ts, raw, device in page:
            cells = _row_cells(keys, value_index, _load(raw))
            if not plain(map(type, cells)):
                cells = list(map(_cell, cells))
            if devices:
                cells.insert(0, device)
            lines.append((ts_text(ts), *cells))
        writer.writerows(lines)
        rows += len(page)
        progress(rows)
    return rows


def _write_json(export, out, pages, progress):
    ts_json = _ts_json(export.timestamp_format)
    out.write("[")
    separator = "\n"
    rows = 0
    for page in pages:
        out.write(
            separator
            + ",\n".join(
                f'{{"ts":{ts_json(ts)},"val":{raw if raw is not None else "null"}'
                + (f',"device":"{device}"}}' if device is not None else "}")
                for ts, raw, device in page
            )
        )
        separator = ",\n"
        rows += len(page)
        progress(rows)
    out.write("\n]\n")
    return rows


def _write_arff(export, out, pages, progress):
    columns, keys, value_index, devices = _layout(export, numeric=True)
    numeric = [is_numeric for _, is_numeric in columns]
    iso = export.timestamp_format == BucketExport.TimestampFormat.ISO
    ts_text = _TS_TEXT[export.timestamp_format]
    out.write(f"@relation {_arff_name(export.bucket.identifier)}\n\n")
    ts_type = "date \"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'\"" if iso else "numeric"
    out.write(f"@attribute ts {ts_type}\n")
    if devices:
        out.write(f"@attribute {DEVICE_COLUMN} string\n")
    for key, is_numeric in columns:
        out.write(f"@attribute {_arff_name(key)} {'numeric' if is_numeric else 'string'}\n")
    out.write("\n@data\n")
    rows = 0
    for page in pages:
        lines = []
        for ts, raw, device in page:
            cells = _row_cells(keys, value_index, _load(raw))
            lead = [ts_text(ts), _arff_cell(device, False)] if devices else [ts_text(ts)]
            lines.append(
                ",".join(
                    lead + [_arff_cell(cell, num) for cell, num in zip(cells, numeric, strict=True)]
                )
            )
        out.write("\n".join(lines) + "\n")
        rows += len(page)
        progress(rows)
    return rows


_WRITERS = {
    BucketExport.DataType.CSV: _write_csv,
    BucketExport.DataType.JSON: _write_json,
    BucketExport.DataType.ARFF: _write_arff,
}


def write_export(export, path, report):
    """Write the export's records to ``path``; returns the number of rows.

    ``report(rows, progress)`` is called after each page with the rows written so far and a
    percentage; it may raise to stop the export.
    """
    total = _count(export)

    def progress(rows):
        report(rows, min(99, rows * 100 // total) if total else 99)

    with open(path, "w", encoding="utf-8", newline="", buffering=1024 * 1024) as out:
        return _WRITERS[export.data_type](export, out, _pages(export), progress)
