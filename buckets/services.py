from django.db import connection

from buckets.models import BucketRecord

# Server-assigned timestamps that collide with stored ones move forward 1 ms at a time; a few
# rounds resolve any realistic collision, more than that means something is badly wrong.
_MAX_COLLISION_ROUNDS = 20


def _insert_records(bucket_id, rows, *, replace):
    """Insert (ts, value) rows in one statement; returns the set of ts that were written."""
    if not rows:
        return set()
    table = connection.ops.quote_name(BucketRecord._meta.db_table)
    value_field = BucketRecord._meta.get_field("value")
    placeholder = "(%s, %s, %s)"
    if connection.vendor == "postgresql":
        placeholder = "(%s, %s, %s::jsonb)"
    params = []
    for ts, value in rows:
        params += [bucket_id, ts, value_field.get_db_prep_save(value, connection)]
    conflict = "DO UPDATE SET value = excluded.value" if replace else "DO NOTHING"
    sql = (
        f"INSERT INTO {table} (bucket_id, ts, value) VALUES {', '.join([placeholder] * len(rows))} "  # noqa: S608 (table names only)
        f"ON CONFLICT (bucket_id, ts) {conflict} RETURNING ts"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def bucket_write_records(*, bucket_id, explicit, server):
    """Store records in a bucket; call inside the caller's transaction.

    ``explicit`` maps a timestamp the client gave to its value: it replaces a stored record with
    that timestamp, so a device that retries stores the record once. ``server`` is a list of
    (ts, value) with server-assigned timestamps, which never overwrite anything: on a collision
    the record moves to the next free millisecond.
    """
    _insert_records(bucket_id, list(explicit.items()), replace=True)
    pending = list(server)
    for _ in range(_MAX_COLLISION_ROUNDS):
        written = _insert_records(bucket_id, pending, replace=False)
        pending = [(ts, value) for ts, value in pending if ts not in written]
        if not pending:
            return
        taken = max(ts for ts, _ in pending)
        pending = [(taken + 1 + i, value) for i, (_, value) in enumerate(pending)]
    raise RuntimeError(f"could not find free timestamps in bucket {bucket_id}")
