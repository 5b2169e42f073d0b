"""One clock (issue 16, item 2), through HTTP: with the browser's zone in the ``tz`` cookie (as
console.js keeps it), the console shows times in it, named, with UTC in the tooltip, and reads
the times typed in a range in it; without the cookie, or with a zone that is none, the server's."""

from datetime import UTC, datetime, timedelta

import pytest

from buckets.models import BucketExport
from tests.factories import BucketFactory, DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client):
    user = UserFactory(username="alice")
    client.force_login(user)
    DeviceFactory(
        owner=user, identifier="sensor1", last_call_at=datetime(2026, 11, 1, 20, 0, tzinfo=UTC)
    )
    return user


@pytest.mark.parametrize(
    ("cookie", "shown"),
    [
        ("Asia%2FKolkata", "Nov 2, 2026 01:30 IST"),
        ("America/New_York", "Nov 1, 2026 15:00 EST"),
        (None, "Nov 1, 2026 20:00 UTC"),
        ("Not/AZone", "Nov 1, 2026 20:00 UTC"),
        ("../../etc/passwd", "Nov 1, 2026 20:00 UTC"),
    ],
)
def test_times_are_shown_in_the_browsers_zone_with_utc_in_the_tooltip(client, alice, cookie, shown):
    if cookie:
        client.cookies["tz"] = cookie
    page = client.get("/devices/sensor1/").content.decode()
    assert shown in page
    assert "2026-11-01 20:00:00 UTC" in page


def test_a_typed_range_is_read_in_the_browsers_zone(client, alice, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    BucketFactory(owner=alice, identifier="temps")
    client.cookies["tz"] = "Asia%2FKolkata"
    client.post(
        "/buckets/temps/exports",
        {
            "export-data_type": "csv",
            "export-timestamp_format": "iso",
            "export-scope": "range",
            "export-start": "2026-12-01T10:00",
            "export-end": "2026-12-01T11:00",
        },
    )
    export = BucketExport.objects.get()
    ist = timedelta(hours=5, minutes=30)
    assert export.min_ts == int((datetime(2026, 12, 1, 10, 0, tzinfo=UTC) - ist).timestamp() * 1e3)
    assert "Times are Asia/Kolkata" in client.get("/buckets/temps/").content.decode()


def test_the_api_and_the_callback_ignore_the_cookie(client, alice, bearer_client):
    api = bearer_client(alice)
    api.cookies["tz"] = "Asia%2FKolkata"
    answer = api.get("/v3/users/alice/devices/sensor1/stats").json()
    assert answer["last_call_ts"] == int(datetime(2026, 11, 1, 20, 0, tzinfo=UTC).timestamp() * 1e3)
