"""The callback's writer on PostgreSQL: one round trip, to the database function
``thinger_callback`` (``devices/migrations/0009_callback_bucket_event.sql``), committed on its
own."""

from contextlib import nullcontext

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from buckets.services import records_json
from devices.callback.rules import Written
from devices.models import DEFAULT_TIMEOUT_MINUTES
from endpoints.services import endpoint_call_enqueue

# The function's arguments, in its order: the SQL names them p_<name>.
_CALL = (
    "SELECT reason, body, call_id, came_online, set_property, wrote_bucket "
    "FROM thinger_callback("
    "%s, %s, %s::bigint, %s, %s::jsonb, %s, %s::jsonb, %s::jsonb, %s::bigint, "
    "%s::timestamptz, %s::bigint, %s::date, %s::inet, %s::integer, %s::integer)"
)


def write(call):
    """Write ``call`` (``ingest.Call``): returns its ``Written``. An endpoint call it recorded
    goes to the workers once it commits."""
    explicit, server = None, None
    if call.stores:
        explicit, server = records_json(call.records.explicit, call.records.server)
    params = [
        call.username,
        call.identifier,
        call.generation,
        call.stores,
        call.value_text if call.stores else None,
        call.echo if call.stores else None,
        explicit,
        server,
        call.call_ts if call.stores else None,
        call.at,
        call.now_ms,
        call.stats_date,
        call.remote_ip,
        call.size,
        DEFAULT_TIMEOUT_MINUTES,
    ]
    db = connections[DEFAULT_DB_ALIAS]
    # Inside a caller's transaction, a savepoint keeps a failed call from aborting it; a request
    # has none (autocommit), and the function's statement is its own transaction.
    guard = transaction.atomic() if db.in_atomic_block else nullcontext()
    with guard, db.cursor() as cursor:
        cursor.execute(_CALL, params)
        reason, body, call_id, came_online, set_property, wrote_bucket = cursor.fetchone()
    if call_id is not None:
        transaction.on_commit(lambda: endpoint_call_enqueue(call_id=call_id))
    return Written(
        reason,
        body,
        came_online=bool(came_online),
        set_property=set_property,
        wrote_bucket=wrote_bucket,
    )
