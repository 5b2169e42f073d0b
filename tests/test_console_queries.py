"""Query counts of the console's busiest pages (as NetBox keeps baselines): the number of queries
does not grow with the number of devices, properties, events or records, so an N+1 shows up
here as a failure."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import ConnectionEvent, DeviceDailyStats
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    EndpointCallFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def count_queries(console, url):
    with CaptureQueriesContext(connection) as queries:
        response = console.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(queries)


def make_devices(user, start, count):
    now = timezone.now()
    for i in range(start, start + count):
        device = DeviceFactory(
            owner=user,
            identifier=f"dev{i:03d}",
            connected=i % 2 == 0,
            last_call_at=now if i % 3 else None,
        )
        PropertyFactory(device=device)


def busy_device(user, identifier):
    """A device with every action on, properties, 30 days of statistics and many events."""
    device = DeviceFactory(owner=user, identifier=identifier, connected=True)
    prop = PropertyFactory(device=device, identifier=f"{identifier}_state", value={"a": 1})
    for _ in range(5):
        PropertyFactory(device=device)
    bucket = BucketFactory(owner=user, identifier=f"{identifier}_bucket")
    BucketRecordFactory(bucket=bucket)
    callback_configure(
        device,
        write_bucket=bucket,
        set_property=prop,
        send_property=prop,
        call_endpoint=EndpointFactory(owner=user, identifier=f"{identifier}_hook"),
    )
    today = timezone.localdate()
    DeviceDailyStats.objects.bulk_create(
        DeviceDailyStats(device=device, date=today - timedelta(days=d), calls=d) for d in range(30)
    )
    ConnectionEvent.objects.bulk_create(
        ConnectionEvent(device=device, kind="connected", at=timezone.now()) for _ in range(25)
    )
    return device


def test_device_list_queries_do_not_grow_with_devices(console, user):
    make_devices(user, 0, 1)
    url = reverse("console-device-list")
    status_url = reverse("console-device-list-status")
    one = count_queries(console, url)
    one_status = count_queries(console, status_url)

    make_devices(user, 1, 99)
    hundred = count_queries(console, url)
    hundred_status = count_queries(console, status_url)

    assert hundred == one
    assert hundred_status == one_status
    # session, user, count, page of devices
    assert hundred <= 4


def test_device_list_search_queries(console, user):
    make_devices(user, 0, 100)

    assert count_queries(console, reverse("console-device-list") + "?q=dev0") <= 4


@pytest.mark.parametrize(
    "name",
    [
        "console-device",
        "console-device-status",
        "console-device-callback",
        "console-device-callback-settings",
        "console-device-properties",
    ],
)
def test_dashboard_queries_do_not_grow_with_devices(console, user, name):
    busy_device(user, "first")
    url = reverse(name, args=["first"])
    alone = count_queries(console, url)

    make_devices(user, 0, 100)
    busy_device(user, "second")
    crowded = count_queries(console, url)

    assert crowded == alone
    assert crowded <= 10


def test_endpoint_page_queries_do_not_grow_with_calls(console, user):
    endpoint = EndpointFactory(owner=user, identifier="hook")
    EndpointCallFactory(endpoint=endpoint, device=DeviceFactory(owner=user))
    url = reverse("console-endpoint", args=["hook"])
    one = count_queries(console, url)

    for _ in range(30):
        EndpointCallFactory(endpoint=endpoint, device=DeviceFactory(owner=user))
    many = count_queries(console, url)

    assert many == one


def test_bucket_pages_queries_do_not_grow(console, user):
    bucket = BucketFactory(owner=user, identifier="b1")
    BucketRecordFactory(bucket=bucket)
    list_one = count_queries(console, reverse("console-bucket-list"))
    detail_one = count_queries(console, reverse("console-bucket", args=["b1"]))

    for i in range(30):
        BucketRecordFactory(bucket=bucket, ts=1_600_000_000_000 + i)
        BucketFactory(owner=user)
    list_many = count_queries(console, reverse("console-bucket-list"))
    detail_many = count_queries(console, reverse("console-bucket", args=["b1"]))

    assert list_many == list_one
    assert detail_many == detail_one


def test_busy_dashboard_chart_has_thirty_days(console, user):
    busy_device(user, "first")

    chart = console.get(reverse("console-device-status", args=["first"])).json()["charts"]

    assert len(chart["traffic"]["calls"]) == 30
    assert chart["traffic"]["calls"][-1] == 0 and chart["traffic"]["calls"][0] == 29
