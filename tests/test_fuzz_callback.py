"""Bad input to the device callback (issue 6, item 1): a platform survives whatever the network
sends. Hypothesis throws arbitrary bytes, arbitrary JSON (deep nesting, huge numbers, NaN,
duplicate keys, invalid UTF-8, other encodings), arbitrary headers, query strings, tokens and
methods at the callback. Whatever arrives: never a 5xx; an error is a JSON error body and leaves
nothing behind (no record, no property change, no endpoint call, no statistics); a 200 stores
what it said it stored. Then the limits on nesting depth and records per call, one by one.
"""

import json
import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buckets.models import BucketRecord
from devices.models import DeviceDailyStats, Property
from devices.tokens import callback_token_for
from endpoints.models import EndpointCall
from tests.factories import DeviceFactory
from tests.reliability import report
from tests.strategies import bodies, numbers

pytestmark = pytest.mark.django_db

EXAMPLES = 300  # per property: 1,200 calls in all, about 15 seconds
MAX_BYTES = 4096  # small, so that some generated bodies are over it
examples_run = Counter()
statuses = Counter()


def fuzz(test):
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # nothing written to the work tree
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(test)


@pytest.fixture
def fuzz_limits(settings):
    settings.CALLBACK_RATE = None
    settings.CALLBACK_MAX_BYTES = MAX_BYTES


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    detail = ", ".join(f"{name} {count}" for name, count in sorted(examples_run.items()))
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    report(request, f"hypothesis examples {sum(examples_run.values())} ({detail})")
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    report(request, f"hypothesis answers {answers}; 5xx: {server_errors}")


content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
# Header and query text as a WSGI server hands it over: latin-1 strings.
latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).filter(
    lambda name: name.strip("-") and name.lower() not in ("authorization", "content-length")
)
query_strings = st.one_of(
    st.binary(max_size=80).map(lambda raw: raw.decode("latin-1")),
    st.lists(
        st.tuples(st.sampled_from(["ts", "ip", "x", "ts[]", "", "ts "]), latin1), max_size=4
    ).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)),
    st.builds(
        lambda ts, ip: f"ts={ts}&ip={ip}",
        numbers | latin1,
        st.sampled_from(["::ffff:172.17.0.1", "10.0.0.1", "fe80::1%eth0", "999.1.1.1", "", "x"]),
    ),
)


# --- What a call left behind ----------------------------------------------------------------


def _trace(device):
    stats = DeviceDailyStats.objects.filter(device=device)
    return {
        "records": BucketRecord.objects.count(),
        "calls": EndpointCall.objects.count(),
        "state": Property.objects.get(device=device, identifier="state").value,
        "stats": [(s.calls, s.rx_bytes, s.tx_bytes) for s in stats.order_by("date")],
    }


def _assert_error(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    message = json.loads(response.content)["error"]["message"]
    assert isinstance(message, str) and message


def _not_json(name):
    raise ValueError(f"{name} is not JSON")


def _reference_payload(body):
    """The payload as the SPEC defines it, parsed here independently (None: not JSON)."""
    try:
        data = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return data[-1], len(data)
    return data, 1


def _same(stored, sent):
    """Equal as JSON values. PostgreSQL keeps a number's decimal text (``6.523701062800566e+16``
    comes back as the integer it spells), where Python reads the nearest binary float."""
    if isinstance(stored, dict) and isinstance(sent, dict):
        return stored.keys() == sent.keys() and all(_same(stored[k], sent[k]) for k in stored)
    if isinstance(stored, list) and isinstance(sent, list):
        return len(stored) == len(sent) and all(map(_same, stored, sent))
    numbers = (int, float)
    if isinstance(stored, numbers) and isinstance(sent, numbers):
        if isinstance(stored, bool) or isinstance(sent, bool):
            return stored is sent
        if isinstance(stored, int) and isinstance(sent, int):
            return stored == sent
        try:
            return math.isclose(float(stored), float(sent), rel_tol=1e-15)
        except OverflowError:
            return False
    return type(stored) is type(sent) and stored == sent


def _post(client, device, body, *, content_type="application/json", query="", headers=None):
    path = f"/v3/users/{device.owner.username}/devices/{device.identifier}/callback/data"
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()
    }
    extra["HTTP_AUTHORIZATION"] = f"Bearer {callback_token_for(device)}"
    if query:
        extra["QUERY_STRING"] = query
    return _counted(client.generic("POST", path, body, content_type=content_type, **extra))


def _counted(response):
    statuses[response.status_code] += 1
    return response


def test_any_body_is_stored_as_said_or_refused_with_nothing_stored(
    client, callback_device, fuzz_limits
):
    @fuzz
    @given(body=bodies, content_type=content_types)
    def check(body, content_type):
        examples_run["bodies"] += 1
        BucketRecord.objects.all().delete()
        before = _trace(callback_device)

        response = _post(client, callback_device, body, content_type=content_type)

        after = _trace(callback_device)
        if response.status_code != 200:
            _assert_error(response, 400, 413)
            assert after == before
            if len(body) > MAX_BYTES:
                assert response.status_code == 413
            return
        assert len(body) <= MAX_BYTES
        assert json.loads(response.content) == {"led": "on"}  # the send_property value
        assert sum(s[0] for s in after["stats"]) == sum(s[0] for s in before["stats"]) + 1
        reference = _reference_payload(body)
        if "X-Callback-Ignored" in response:
            assert reference is None or not body.strip()
            assert (after["records"], after["calls"], after["state"]) == (
                0,
                before["calls"],
                before["state"],
            )
            return
        assert reference is not None, body[:200]
        payload, count = reference
        assert 1 <= after["records"] <= count
        assert after["calls"] == before["calls"] + 1
        assert _same(after["state"], payload), (after["state"], payload)

    check()


def test_any_query_string_and_headers_are_200_or_a_json_400(client, device, fuzz_limits):
    @fuzz
    @given(
        query=query_strings,
        headers=st.dictionaries(header_names | st.just("host"), latin1, max_size=5),
        body=st.sampled_from([b'{"t": 1}', b"[]", b"x"]),
    )
    def check(query, headers, body):
        examples_run["query and headers"] += 1
        before = BucketRecord.objects.count()
        stats = list(DeviceDailyStats.objects.values_list("calls", flat=True))

        response = _post(client, device, body, query=query, headers=headers)

        if response.status_code != 200:
            _assert_error(response, 400)
            if "host" not in headers:
                assert "ts" in response.json()["error"]["message"]
            assert list(DeviceDailyStats.objects.values_list("calls", flat=True)) == stats
        assert BucketRecord.objects.count() == before  # the device has no bucket

    check()


@pytest.mark.parametrize("host", ["bad host!", "évil.example", "[::1"])
def test_a_malformed_host_header_is_a_json_400(client, device, host):
    """Django refuses it before any view; on API paths the answer is still a JSON error."""
    response = _post(client, device, b"{}", headers={"host": host})

    _assert_error(response, 400)
    assert not DeviceDailyStats.objects.exists()


def test_any_credential_but_the_devices_own_is_refused_with_nothing_stored(
    client, callback_device, fuzz_limits
):
    other = DeviceFactory(owner=callback_device.owner)
    good = callback_token_for(callback_device)
    foreign = callback_token_for(other)

    def variants(raw):
        return st.sampled_from(
            [
                raw[:-1],
                raw + "x",
                raw.upper(),
                raw.replace(".", "..", 1),
                raw[::-1],
                raw.split(".")[0] + "..",
                ".".join(raw.split(".")[:2]) + ".",
            ]
        )

    tokens = st.one_of(latin1, variants(good), variants(foreign), st.just(foreign))
    placements = st.sampled_from(["bearer", "query", "basic", "raw", "both"])

    @fuzz
    @given(token=tokens, placement=placements)
    def check(token, placement):
        examples_run["credentials"] += 1
        path = (
            f"/v3/users/{callback_device.owner.username}/devices/"
            f"{callback_device.identifier}/callback/data"
        )
        extra = {}
        if placement in ("bearer", "both"):
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        elif placement == "basic":
            extra["HTTP_AUTHORIZATION"] = f"Basic {token}"
        elif placement == "raw":
            extra["HTTP_AUTHORIZATION"] = token
        if placement in ("query", "both"):
            extra["QUERY_STRING"] = f"authorization={token}"
        before = _trace(callback_device)

        response = _counted(
            client.generic("POST", path, b'{"t": 1}', content_type="application/json", **extra)
        )

        if token == foreign and placement != "basic" and placement != "raw":
            _assert_error(response, 403)
        else:
            _assert_error(response, 401, 403)
        assert _trace(callback_device) == before

    check()


def test_any_method_but_get_and_post_is_a_json_405(client, callback_device, fuzz_limits):
    methods = st.sampled_from(["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO"])

    @fuzz
    @given(method=methods, legacy=st.booleans(), body=st.binary(max_size=40))
    def check(method, legacy, body):
        examples_run["methods"] += 1
        path = (
            f"/v3/users/{callback_device.owner.username}/devices/"
            f"{callback_device.identifier}/callback"
        )
        path = path if legacy else f"{path}/data"
        before = _trace(callback_device)

        response = _counted(
            client.generic(
                method,
                path,
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {callback_token_for(callback_device)}",
            )
        )

        if legacy:
            # The callback settings API (only POST is the device's): a device token is not an
            # API credential.
            _assert_error(response, 401, 405)
        else:
            _assert_error(response, 405)
        assert _trace(callback_device) == before

    check()


# --- The limits, one by one ----------------------------------------------------------------


def _nested(depth):
    return ("[" * depth + "1" + "]" * depth).encode()


@pytest.mark.parametrize("depth", [40, 990, 20_000])
def test_json_nested_deeper_than_the_limit_is_400_and_stores_nothing(
    callback_client, callback_device, assert_json_error, assert_nothing_stored, settings, depth
):
    settings.CALLBACK_MAX_BYTES = 64 * 1024

    response = callback_client.post(callback_device, _nested(depth))

    assert "nested deeper than 32 levels" in assert_json_error(response, 400)
    assert_nothing_stored()


def test_nesting_up_to_the_limit_is_stored(callback_client, callback_device):
    value = {"a": json.loads(_nested(31))}  # 32 levels: the object and 31 arrays

    response = callback_client.post(callback_device, value)

    assert response.status_code == 200
    assert BucketRecord.objects.get().value == value


def test_depth_limit_is_configurable(callback_client, callback_device, settings):
    settings.CALLBACK_MAX_DEPTH = 3

    assert callback_client.post(callback_device, _nested(3)).status_code == 200
    assert callback_client.post(callback_device, _nested(4)).status_code == 400
    assert callback_client.post(callback_device, [{"a": {"b": 1}}]).status_code == 200
    assert callback_client.post(callback_device, [{"a": {"b": [1]}}]).status_code == 400


def test_batch_over_the_record_limit_is_413_and_stores_nothing(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    response = callback_client.post(callback_device, [{"n": n} for n in range(1001)])

    assert "1001 records in one call, more than 1000" in assert_json_error(response, 413)
    assert_nothing_stored()


def test_batch_at_the_record_limit_is_stored(callback_client, callback_device):
    response = callback_client.post(callback_device, [{"n": n} for n in range(1000)])

    assert response.status_code == 200
    assert BucketRecord.objects.count() == 1000


def test_record_limit_is_configurable(callback_client, callback_device, settings):
    settings.CALLBACK_MAX_RECORDS = 2

    assert callback_client.post(callback_device, [{}, {}]).status_code == 200
    assert callback_client.post(callback_device, [{}, {}, {}]).status_code == 413
    # An array that is not a batch is one record, whatever its length.
    assert callback_client.post(callback_device, [1, 2, 3]).status_code == 200
