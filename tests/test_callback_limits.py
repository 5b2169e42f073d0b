"""The callback under pressure: rate limit, unreachable database, query budget (SPEC 1)."""

from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError, connection

from buckets.models import BucketRecord
from devices.models import Device
from devices.tokens import callback_token_for
from endpoints.models import EndpointCall
from tests.factories import BucketFactory, DeviceFactory, PropertyFactory, callback_configure

# What one callback with every action on costs. SQLite: the device with its settings and what
# they reference, savepoint, bucket insert, the bucket's clock, property update, endpoint call
# insert, device update, statistics upsert, savepoint release. PostgreSQL: one call of the
# callback's function, which a test's transaction guards with a savepoint (SAVEPOINT, the call,
# RELEASE); in production (autocommit) the call alone, see the last test here.
CALLBACK_QUERIES = {"sqlite": 9, "postgresql": 3}


def test_call_over_the_rate_is_429_with_retry_after(
    callback_client, callback_device, settings, assert_json_error
):
    settings.CALLBACK_RATE = "2/m"

    first = callback_client.post(callback_device, {"n": 1})
    second = callback_client.post(callback_device, {"n": 2})
    third = callback_client.post(callback_device, {"n": 3})

    assert (first.status_code, second.status_code) == (200, 200)
    assert_json_error(third, 429)
    assert 1 <= int(third["Retry-After"]) <= 60
    assert list(BucketRecord.objects.order_by("ts").values_list("value", flat=True)) == [
        {"n": 1},
        {"n": 2},
    ]
    assert EndpointCall.objects.count() == 2


def test_rate_is_per_device(callback_client, callback_device, settings):
    settings.CALLBACK_RATE = "2/m"
    other = DeviceFactory(owner=callback_device.owner)
    for n in range(3):
        callback_client.post(callback_device, {"n": n})

    response = callback_client.post(other, {"n": 1})

    assert response.status_code == 200


def test_no_rate_limit_when_it_is_off(callback_client, device, settings):
    settings.CALLBACK_RATE = None

    statuses = {callback_client.post(device, b"{}").status_code for _ in range(5)}

    assert statuses == {200}


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_unreachable_database_is_503_with_retry_after(
    callback_client, callback_device, settings, assert_json_error, assert_nothing_stored, error
):
    settings.CALLBACK_RETRY_AFTER_SECONDS = 7

    def unreachable(execute, sql, params, many, context):
        raise error("connection refused")

    with connection.execute_wrapper(unreachable):
        response = callback_client.post(callback_device, {"temperature": 21.5})

    assert_json_error(response, 503)
    assert response["Retry-After"] == "7"
    assert_nothing_stored()


@contextmanager
def endpoint_call_fails():
    """Recording the endpoint call fails as a disk would ("I/O error"): in the database function
    on PostgreSQL (a trigger), in the ORM elsewhere."""
    if connection.vendor != "postgresql":
        with mock.patch(
            "devices.callback.portable.endpoint_call_record",
            side_effect=OperationalError("disk I/O error"),
        ):
            yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_disk_error() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'disk I/O error' USING ERRCODE = 'io_error'; END $$; "
            "CREATE TRIGGER test_disk_error BEFORE INSERT ON endpoints_endpointcall "
            "FOR EACH ROW EXECUTE FUNCTION test_disk_error()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_disk_error ON endpoints_endpointcall")
        cursor.execute("DROP FUNCTION test_disk_error()")


@pytest.fixture
def failing_endpoint_call():
    with endpoint_call_fails():
        yield


def test_failed_write_mid_callback_is_503_and_leaves_nothing_behind(
    callback_client,
    callback_device,
    assert_json_error,
    assert_nothing_stored,
    failing_endpoint_call,
):
    """The bucket insert and property update already ran when the endpoint call fails: all of
    it is rolled back, so a device that retries after the 503 stores its data once."""
    response = callback_client.post(callback_device, {"temperature": 21.5})

    assert_json_error(response, 503)
    assert response["Retry-After"]
    assert_nothing_stored()


@pytest.mark.django_db(transaction=True)
def test_failed_write_is_rolled_back_outside_a_test_transaction_too(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    """The same with real BEGIN and ROLLBACK (or the function's own transaction), as in
    production (no test savepoint)."""
    with endpoint_call_fails():
        response = callback_client.post(callback_device, {"temperature": 21.5})

    assert_json_error(response, 503)
    assert_nothing_stored()
    assert callback_client.post(callback_device, b"not json").status_code == 200
    assert Device.objects.get(pk=callback_device.pk).connected


def test_callback_with_every_action_costs_a_fixed_number_of_queries(
    callback_client, callback_device, django_assert_num_queries
):
    callback_client.post(callback_device, b"{}")  # connect it: the steady state

    with django_assert_num_queries(CALLBACK_QUERIES[connection.vendor]):
        response = callback_client.post(callback_device, {"temperature": 21.5})

    assert response.json() == {"led": "on"}
    assert BucketRecord.objects.count() == 2


def test_first_call_costs_one_more_query_for_the_connected_event(
    callback_client, callback_device, django_assert_num_queries
):
    extra = 0 if connection.vendor == "postgresql" else 1  # in the same function
    with django_assert_num_queries(CALLBACK_QUERIES[connection.vendor] + extra):
        response = callback_client.post(callback_device, {"temperature": 21.5})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "batch",
    [
        [{"n": n} for n in range(50)],
        [{"ts": 1_700_000_000_000 + n, "n": n} for n in range(50)],
    ],
    ids=["server-ts", "own-ts"],
)
def test_batch_of_50_records_costs_as_many_queries_as_one(
    callback_client, callback_device, django_assert_num_queries, batch
):
    callback_client.post(callback_device, b"{}")
    # Records at the server's time claim their times (one query); records with a time of their
    # own older than a minute (these are from 2023) drop the summaries they change instead:
    # one query on SQLite, inside the database function on PostgreSQL (buckets.summaries).
    claim = 1
    queries = {"sqlite": CALLBACK_QUERIES["sqlite"] - 1 + claim, "postgresql": 3}

    with django_assert_num_queries(queries[connection.vendor]):
        response = callback_client.post(callback_device, batch)

    assert response.status_code == 200
    assert BucketRecord.objects.count() == 51


@pytest.mark.django_db(transaction=True)
def test_a_devices_usual_call_is_one_statement_on_postgresql(
    callback_client, device, django_assert_num_queries
):
    """write_bucket, set_property and send_property, the token check and the statistics: on
    PostgreSQL one statement reads the device and writes everything, committed on its own, as in
    production (SQLite reads, then writes in a transaction)."""
    state = PropertyFactory(device=device, identifier="state")
    callback_configure(
        device,
        write_bucket=BucketFactory(owner=device.owner),
        set_property=state,
        send_property=PropertyFactory(device=device, identifier="config", value={"led": "on"}),
    )
    callback_client.post(device, b"{}")

    with django_assert_num_queries({"sqlite": 8, "postgresql": 1}[connection.vendor]):
        response = callback_client.post(device, {"temperature": 21.5})

    assert response.json() == {"led": "on"}
    state.refresh_from_db()
    assert state.value == {"temperature": 21.5}
    assert BucketRecord.objects.filter(value={"temperature": 21.5}).count() == 1


def test_actions_that_are_off_cost_no_queries(callback_client, device, django_assert_num_queries):
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner, enabled=False))
    callback_client.post(device, b"{}")

    with django_assert_num_queries({"sqlite": 5, "postgresql": 3}[connection.vendor]):
        response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200


@pytest.mark.parametrize("owner", ["same user", "another user"])
def test_refused_token_costs_no_query(
    callback_client, device, django_assert_num_queries, assert_json_error, owner
):
    """Forged or foreign tokens are refused before any query: a flood of them puts no load on the
    database."""
    other = DeviceFactory(owner=device.owner) if owner == "same user" else DeviceFactory()
    foreign_token = callback_token_for(other)

    with django_assert_num_queries(0):
        forged = callback_client.post(device, b"{}", token="garbage")
        foreign = callback_client.post(device, b"{}", token=foreign_token)

    assert_json_error(forged, 401)
    assert_json_error(foreign, 403)


def test_call_over_the_rate_costs_no_query(
    callback_client, device, settings, django_assert_num_queries, assert_json_error
):
    settings.CALLBACK_RATE = "1/m"
    callback_client.post(device, b"{}")

    with django_assert_num_queries(0):
        response = callback_client.post(device, b"{}")

    assert_json_error(response, 429)


def test_oversized_body_costs_no_query(
    callback_client, device, settings, django_assert_num_queries, assert_json_error
):
    settings.CALLBACK_MAX_BYTES = 64

    with django_assert_num_queries(0):
        response = callback_client.post(device, {"text": "x" * 100})

    assert_json_error(response, 413)
