"""Rate limits (issue 6, item 4): per device on the callback (a DRF throttle counting in Redis
leases), per user on the REST API (a DRF throttle, one atomic increment), both counted in the
Django cache, which is Redis in services
mode and so shared by every web process. Over the rate: 429 with ``Retry-After`` and a JSON
error; a limited device or user slows nobody else. The per-test cache prefixes keep these
counters apart from other tests and other runs sharing the Redis.
"""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from buckets.models import BucketRecord
from core.api_policy import UserRateThrottle
from devices.models import DeviceDailyStats
from devices.tokens import callback_token_for
from tests.factories import BucketFactory, DeviceFactory, UserFactory, callback_configure
from tests.reliability import django_process


@pytest.fixture
def api_rate(monkeypatch):
    """``api_rate("3/m")``: the API's per-user rate for this test, with counters of its own."""

    def set_rate(rate):
        # DRF reads the rates once, when the class is defined: set them on the class.
        monkeypatch.setattr(UserRateThrottle, "rate", rate, raising=False)
        prefix = f"throttle:{uuid.uuid4().hex}:"
        monkeypatch.setattr(UserRateThrottle, "cache_format", prefix + "%(ident)s")

    return set_rate


# --- The device callback ----------------------------------------------------------------


def test_callback_over_the_rate_is_429_and_stores_nothing(
    callback_client, device, settings, assert_json_error
):
    settings.CALLBACK_RATE = "2/m"
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner))
    responses = [callback_client.post(device, {"n": n}) for n in range(3)]

    assert [r.status_code for r in responses[:2]] == [200, 200]
    assert "too many requests" in assert_json_error(responses[2], 429)
    assert 1 <= int(responses[2]["Retry-After"]) <= 60
    assert sorted(v["n"] for v in BucketRecord.objects.values_list("value", flat=True)) == [0, 1]
    assert DeviceDailyStats.objects.get(device=device).calls == 2


def test_both_callback_paths_and_get_share_the_devices_rate(callback_client, device, settings):
    settings.CALLBACK_RATE = "3/m"

    statuses = [
        callback_client.post(device, b"{}").status_code,
        callback_client.post(device, b"{}", legacy=True).status_code,
        callback_client.get(device).status_code,
        callback_client.post(device, b"{}", legacy=True).status_code,
        callback_client.get(device).status_code,
    ]

    assert statuses == [200, 200, 200, 429, 429]


def test_owner_token_is_limited_per_device_not_per_token(client, callback_client, device, settings):
    """A gateway posting for many devices with one API token: each device has its own rate."""
    settings.CALLBACK_RATE = "1/m"
    other = DeviceFactory(owner=device.owner)
    token = client.post(
        "/oauth/token",
        f"grant_type=password&username={device.owner.username}&password=secret-pass-123",
        content_type="application/x-www-form-urlencoded",
    ).json()["access_token"]

    first = [callback_client.post(d, b"{}", token=token).status_code for d in (device, other)]
    again = [callback_client.post(d, b"{}", token=token).status_code for d in (device, other)]

    assert (first, again) == ([200, 200], [429, 429])


# --- The REST API -------------------------------------------------------------------------


def test_api_over_the_rate_is_429_with_retry_after_for_that_user_only(bearer_client, api_rate):
    api_rate("3/m")
    alice, bob = UserFactory(), UserFactory()
    as_alice, as_bob = bearer_client(alice), bearer_client(bob)

    statuses = [as_alice.get(f"/v1/users/{alice.username}/devices").status_code for _ in range(4)]
    limited = as_alice.get(f"/v1/users/{alice.username}/devices")
    other = as_bob.get(f"/v1/users/{bob.username}/devices")

    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/json"
    assert "throttled" in limited.json()["error"]["message"].lower()
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert other.status_code == 200


def test_anonymous_api_calls_are_limited_per_address(client, api_rate, db):
    """Password guessing on ``/oauth/token`` included."""
    api_rate("2/m")
    UserFactory(username="victim")
    guess = "grant_type=password&username=victim&password=wrong"
    form = "application/x-www-form-urlencoded"

    statuses = [client.post("/oauth/token", guess, content_type=form).status_code for _ in range(3)]
    elsewhere = client.post("/oauth/token", guess, content_type=form, REMOTE_ADDR="192.0.2.9")

    assert statuses == [401, 401, 429]
    assert elsewhere.status_code == 401


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "['600/m', '1200/m']"),
        ({"CALLBACK_RATE": "5/s", "API_RATE": "100/h"}, "['5/s', '100/h']"),
        ({"CALLBACK_RATE": "off", "API_RATE": "off"}, "[None, None]"),
    ],
)
def test_rates_are_configurable(tmp_path, environ, expected):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print([s.CALLBACK_RATE, s.API_RATE])"
    )

    result = django_process(tmp_path, code=code, **environ)

    assert result.stdout.strip() == expected, result.stderr


@pytest.mark.parametrize("name", ["CALLBACK_RATE", "API_RATE"])
def test_a_bad_rate_stops_start_up(tmp_path, name):
    result = django_process(tmp_path, "check", **{name: "fast"})

    assert result.returncode != 0
    assert name in result.stderr


# --- Services mode: the counters are shared, and a limited device slows nobody ---------------


@pytest.mark.services
def test_rate_counters_live_in_redis(callback_client, bearer_client, device, settings, api_rate):
    """Every web process counts in the same place."""
    import redis

    api_rate("100/m")
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    callback_client.post(device, b"{}")
    bearer_client(device.owner).get(f"/v1/users/{device.owner.username}/devices")

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert list(client.scan_iter(f"*{settings.RATELIMIT_CACHE_PREFIX}*"))
    assert list(client.scan_iter(f"*{UserRateThrottle.cache_format.split('%')[0]}*"))


@pytest.mark.services
def test_a_busy_device_gets_exactly_its_rate_when_counted_in_leases(
    callback_client, device, settings
):
    """A rate high enough for each web process to take calls from Redis a lease at a time:
    one process lets exactly the rate through, neither more nor fewer, and stores each one."""
    import redis

    settings.CALLBACK_RATE = "100/h"
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner))
    admin = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])

    def round_trips():
        stats = admin.info("commandstats")
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("incr", "incrby"))

    before = round_trips()
    statuses = [callback_client.post(device, {"n": n}).status_code for n in range(130)]

    assert statuses == [200] * 100 + [429] * 30
    assert BucketRecord.objects.filter(bucket__owner=device.owner).count() == 100
    assert DeviceDailyStats.objects.get(device=device).calls == 100
    # About 35 leases for the 100 calls, and one round trip for each refused call.
    assert round_trips() - before < 100


@pytest.mark.services
def test_a_limited_device_does_not_slow_the_others(live_server, settings, db):
    """60 calls of a device over its rate of 20 a minute, in parallel with 20 calls of another
    device of the same owner: exactly 20 of the first get through, all of the second do."""
    settings.CALLBACK_RATE = "20/m"
    noisy = DeviceFactory()
    quiet = DeviceFactory(owner=noisy.owner)

    def post(device):
        url = (
            f"{live_server.url}/v3/users/{device.owner.username}/devices/"
            f"{device.identifier}/callback/data"
        )
        headers = {"Authorization": f"Bearer {callback_token_for(device)}", "Connection": "close"}
        response = requests.post(url, data=b"{}", headers=headers, timeout=30)
        return device, response

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(post, [noisy] * 60 + [quiet] * 20))

    noisy_statuses = [r.status_code for d, r in results if d == noisy]
    quiet_statuses = [r.status_code for d, r in results if d == quiet]
    assert sorted(noisy_statuses) == [200] * 20 + [429] * 40
    assert quiet_statuses == [200] * 20
    assert all(r.headers["Retry-After"].isdigit() for d, r in results if r.status_code == 429)
    assert json.loads([r for d, r in results if r.status_code == 429][0].content)["error"]
    assert DeviceDailyStats.objects.get(device=noisy).calls == 20
    assert DeviceDailyStats.objects.get(device=quiet).calls == 20


def test_callback_without_redis_is_stored_unlimited_and_logged(
    callback_client, device, settings, caplog
):
    """Redis down (here: a cache on a closed port) costs the rate limit, not the data."""
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner))
    settings.CALLBACK_RATE = "1/m"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing listens
        }
    }

    statuses = [callback_client.post(device, {"n": n}).status_code for n in range(3)]

    assert statuses == [200, 200, 200]
    assert sorted(
        r.value["n"] for r in BucketRecord.objects.filter(bucket__owner=device.owner)
    ) == [
        0,
        1,
        2,
    ]
    assert DeviceDailyStats.objects.get(device=device).calls == 3
    assert "rate limit skipped: Redis is unavailable" in caplog.text


@pytest.mark.services
def test_the_limit_survives_redis_closing_its_connection(callback_client, device, settings, caplog):
    """Redis dropping the connection a web thread keeps for the limit (an idle timeout, a
    restart): the next call connects again and is counted; nothing is skipped."""
    import redis

    settings.CALLBACK_RATE = "2/m"
    first = callback_client.post(device, b"{}")
    admin = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    limiters = [c for c in admin.client_list() if c["cmd"] in ("incrby", "expire")]
    assert limiters
    for client in limiters:
        admin.client_kill_filter(_id=client["id"])

    statuses = [callback_client.post(device, b"{}").status_code for _ in range(2)]

    assert [first.status_code, *statuses] == [200, 200, 429]
    assert "rate limit skipped" not in caplog.text


@pytest.mark.services
def test_one_process_lets_exactly_the_rate_through_under_concurrency(live_server, settings, db):
    """8 clients at once on one web process (the live server, a thread per request), one device
    at 600 an hour: exactly 600 calls get through, as when they come one by one. Leases taken
    by threads at the same moment add up rather than one overwriting another's calls."""
    settings.CALLBACK_RATE = "600/h"
    device = DeviceFactory()
    url = (
        f"{live_server.url}/v3/users/{device.owner.username}/devices/"
        f"{device.identifier}/callback/data"
    )
    headers = {"Authorization": f"Bearer {callback_token_for(device)}"}
    if 3600 - time.time() % 3600 < 120:  # not across the hour's window
        time.sleep(3600 - time.time() % 3600 + 1)

    def post(_):
        with requests.Session() as session:
            return [
                session.post(url, data=b"{}", headers=headers, timeout=30).status_code
                for _ in range(100)
            ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for batch in pool.map(post, range(8)) for status in batch]

    assert statuses.count(200) == 600
    assert statuses.count(429) == 200
    assert DeviceDailyStats.objects.get(device=device).calls == 600
