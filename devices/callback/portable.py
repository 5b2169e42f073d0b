"""The callback's portable writer: the ORM, in one transaction (SQLite; on PostgreSQL only in the
parity test). The rules come from ``rules.py``; records go through the bucket's own service."""

from django.db import connection, transaction

from buckets.services import bucket_write_records
from devices.callback import rules
from devices.models import ConnectionEvent, Device, DeviceDailyStats, Property
from devices.selectors import device_for_callback
from endpoints.models import Endpoint
from endpoints.services import endpoint_call_record


@transaction.atomic
def write(call):
    """Write ``call`` (``ingest.Call``): returns its ``rules.Written``."""
    device = device_for_callback(username=call.username, identifier=call.identifier)
    reason = rules.refusal(device, call.generation)
    if reason is not None:
        return rules.Written(reason)
    set_property = wrote_bucket = None
    if call.stores:
        records = call.records
        if device.write_bucket_id and (records.explicit or records.server):
            bucket_write_records(
                bucket_id=device.write_bucket_id,
                device=call.identifier,
                explicit=records.explicit,
                server=records.server,
                now_ms=call.now_ms,
            )
            wrote_bucket = device.write_bucket_identifier
        if device.set_property_id:
            Property.objects.filter(pk=device.set_property_id).update(
                value=call.payload, modified=call.at
            )
            set_property = device.set_property_identifier
        if device.call_endpoint_id:
            # Instances standing for the rows, to reference them without reading them.
            endpoint_call_record(
                endpoint=Endpoint(pk=device.call_endpoint_id),
                device=Device(pk=device.id),
                payload=call.payload,
                ts=call.call_ts,
            )
    body = rules.response_text(
        device,
        stored=call.stores,
        echo=call.echo if call.stores else None,
        send_value=device.send_property_value,
    )
    came_online = _record_activity(device, call)
    _count(device, call, tx_bytes=0 if body is None else len(body.encode()))
    return rules.Written(
        None,
        body,
        came_online=came_online,
        set_property=set_property,
        wrote_bucket=wrote_bucket,
    )


def _record_activity(device, call):
    """The device is connected until its deadline; the call that connects it writes the
    "connected" event: a compare-and-swap on ``connected``, trying first the state the device was
    read in, whatever the sweep did since. Returns whether this call connected it."""
    fields = {
        "last_call_at": call.at,
        "remote_ip": call.remote_ip,
        "timeout_at": rules.deadline(call.at, device.timeout_minutes),
    }
    rows = Device.objects.filter(pk=device.id)
    swaps = [(True, fields), (False, {"connected": True, "connected_at": call.at, **fields})]
    for was_connected, changes in swaps if device.connected else reversed(swaps):
        if rows.filter(connected=was_connected).update(**changes):
            if not was_connected:
                ConnectionEvent.objects.create(
                    device_id=device.id,
                    kind=ConnectionEvent.Kind.CONNECTED,
                    at=call.at,
                    remote_ip=call.remote_ip,
                )
            return not was_connected
    return False


def _count(device, call, *, tx_bytes):
    """Today's statistics of the device grow by one call and its bytes (an upsert)."""
    table = connection.ops.quote_name(DeviceDailyStats._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            # The table name is the only interpolated value (S608).
            f"INSERT INTO {table} AS s (device_id, date, calls, rx_bytes, tx_bytes) "  # noqa: S608
            "VALUES (%s, %s, 1, %s, %s) ON CONFLICT (device_id, date) DO UPDATE SET "
            "calls = s.calls + 1, rx_bytes = s.rx_bytes + excluded.rx_bytes, "
            "tx_bytes = s.tx_bytes + excluded.tx_bytes",
            [device.id, call.stats_date, call.size, tx_bytes],
        )
