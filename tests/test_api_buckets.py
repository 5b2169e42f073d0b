"""Buckets through the REST API: create, list, read, update, delete (SPEC 4), who may (SPEC 6),
and the reference's validation rules, each a 400 naming the field."""

import json

import pytest

from buckets.models import Bucket, BucketRecord
from devices.models import CallbackSettings
from tests.api_checks import assert_empty_ok
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"  # UserFactory's


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def api(client, owner):
    """The owner's client, with an OAuth access token as Thinger.io clients get one."""
    response = client.post(
        "/oauth/token",
        f"grant_type=password&username={owner.username}&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {response.json()['access_token']}"
    return client


def create(api, body, user="alice"):
    return api.post(f"/v1/users/{user}/buckets", body, content_type="application/json")


def update(api, bucket, body, user="alice"):
    return api.put(f"/v1/users/{user}/buckets/{bucket}", body, content_type="application/json")


def call(client, method, path, body=None):
    return client.generic(method.upper(), path, json.dumps(body or {}), "application/json")


API_WRITE = {
    "bucket": "api_write",
    "name": "API Write",
    "description": "Bucket for API write",
    "enabled": True,
    "config": {"source": "api"},
}


def test_create_answers_200_with_the_bucket(api, owner):
    response = create(api, API_WRITE)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert {key: body[key] for key in API_WRITE} == API_WRITE
    assert body["retention"] == {"period": 0, "unit": "months"}
    assert isinstance(body["created"], int)
    assert isinstance(body["modified"], int)
    bucket = Bucket.objects.get(owner=owner, identifier="api_write")
    assert bucket.name == "API Write"
    assert bucket.retention_period is None


def test_create_as_the_http_device_plugin_does(api):
    """The plugin sends asset fields when configured: accepted (and not kept)."""
    body = {
        "bucket": "sensor1",
        "name": "sensor1",
        "description": "auto provisioned",
        "enabled": True,
        "config": {"source": "api"},
        "asset_type": "sensors",
        "asset_group": "greenhouse",
        "product": "meteo",
    }

    response = create(api, body)

    assert response.status_code == 200, response.content
    assert "asset_type" not in response.json()


def test_create_with_retention_and_tags(api, owner):
    body = {
        **API_WRITE,
        "config": {"source": "api", "tags": ["a", "b-2"]},
        "retention": {"period": 30, "unit": "days"},
    }

    response = create(api, body)

    assert response.status_code == 200, response.content
    assert response.json()["config"] == {"source": "api", "tags": ["a", "b-2"]}
    assert response.json()["retention"] == {"period": 30, "unit": "days"}
    bucket = Bucket.objects.get(owner=owner)
    assert (bucket.retention_period, bucket.retention_unit) == (30, "days")


def test_list_returns_the_owners_buckets_only(api, owner):
    BucketFactory(owner=owner, identifier="b2")
    BucketFactory(owner=owner, identifier="b1")
    BucketFactory(identifier="other")

    response = api.get("/v1/users/alice/buckets")

    assert response.status_code == 200
    assert [item["bucket"] for item in response.json()] == ["b1", "b2"]
    assert response.json()[0]["config"] == {"source": "api"}


def test_list_is_an_empty_array_when_there_is_none(api):
    response = api.get("/v1/users/alice/buckets")

    assert response.status_code == 200
    assert response.json() == []


def test_read_config(api, owner):
    BucketFactory(owner=owner, identifier="temps", name="Temps", description="d")

    response = api.get("/v1/users/alice/buckets/temps")

    assert response.status_code == 200
    body = response.json()
    assert body["bucket"] == "temps"
    assert body["name"] == "Temps"
    assert body["description"] == "d"
    assert body["enabled"] is True
    assert body["config"] == {"source": "api"}
    assert body["retention"] == {"period": 0, "unit": "months"}


def test_update_is_partial(api, owner):
    BucketFactory(owner=owner, identifier="temps", name="Temps", description="keep")

    response = update(api, "temps", {"name": "Renamed", "enabled": False})

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed"
    assert response.json()["description"] == "keep"
    bucket = Bucket.objects.get(identifier="temps")
    assert (bucket.name, bucket.description, bucket.enabled) == ("Renamed", "keep", False)


def test_update_retention_period_only_keeps_the_unit(api, owner):
    BucketFactory(owner=owner, identifier="temps", retention_period=2, retention_unit="weeks")

    response = update(api, "temps", {"retention": {"period": 5}})

    assert response.status_code == 200, response.content
    assert response.json()["retention"] == {"period": 5, "unit": "weeks"}


def test_update_retention_period_zero_keeps_forever(api, owner):
    BucketFactory(owner=owner, identifier="temps", retention_period=2)

    response = update(api, "temps", {"retention": {"period": 0}})

    assert response.status_code == 200, response.content
    assert Bucket.objects.get(identifier="temps").retention_period is None


def test_update_with_the_full_object_of_the_reference_example(api, owner):
    BucketFactory(owner=owner, identifier="api_write")

    response = update(api, "api_write", {**API_WRITE, "asset_group": "", "product": ""})

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "API Write"


def test_update_cannot_change_the_id(api, owner, assert_json_error):
    BucketFactory(owner=owner, identifier="temps")

    message = assert_json_error(update(api, "temps", {"bucket": "other"}), 400)

    assert message.startswith("bucket:")


def test_delete_removes_the_bucket_and_its_records(api, owner):
    bucket = BucketFactory(owner=owner, identifier="temps")
    BucketRecordFactory.create_batch(3, bucket=bucket)
    kept = BucketRecordFactory()

    response = api.delete("/v1/users/alice/buckets/temps")

    assert_empty_ok(response)
    assert not Bucket.objects.filter(pk=bucket.pk).exists()
    assert list(BucketRecord.objects.all()) == [kept]


def test_delete_switches_off_write_bucket_of_devices(api, owner):
    device = DeviceFactory(owner=owner)
    callback_configure(device, write_bucket=BucketFactory(owner=owner, identifier="temps"))

    response = api.delete("/v1/users/alice/buckets/temps")

    assert_empty_ok(response)
    assert CallbackSettings.objects.get(device=device).write_bucket is None


# Validation: each rule of the reference is a 400 whose message starts with the field.

VALID = dict(API_WRITE)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in VALID.items() if k != "bucket"}, "bucket"),
        ({k: v for k, v in VALID.items() if k != "name"}, "name"),
        ({k: v for k, v in VALID.items() if k != "config"}, "config"),
        ({k: v for k, v in VALID.items() if k != "enabled"}, "enabled"),
        ({**VALID, "bucket": "has space"}, "bucket"),
        ({**VALID, "bucket": "x" * 33}, "bucket"),
        ({**VALID, "bucket": ""}, "bucket"),
        ({**VALID, "bucket": 12}, "bucket"),
        ({**VALID, "name": "x" * 256}, "name"),
        ({**VALID, "name": 5}, "name"),
        ({**VALID, "description": "x" * 256}, "description"),
        ({**VALID, "enabled": "yes"}, "enabled"),
        ({**VALID, "config": "api"}, "config"),
        ({**VALID, "config": {}}, "config.source"),
        ({**VALID, "config": {"source": "nope"}}, "config.source"),
        ({**VALID, "config": {"source": "api", "topic": "a/b"}}, "config.topic"),
        ({**VALID, "config": {"source": "api", "tags": ["a"] * 6}}, "config.tags"),
        ({**VALID, "config": {"source": "api", "tags": ["not valid"]}}, "config.tags"),
        ({**VALID, "retention": {"period": -1, "unit": "days"}}, "retention.period"),
        ({**VALID, "retention": {"period": 1.5}}, "retention.period"),
        ({**VALID, "retention": {"period": "3"}}, "retention.period"),
        ({**VALID, "retention": {"unit": "fortnights"}}, "retention.unit"),
        ({**VALID, "retention": 30}, "retention"),
        ({**VALID, "backend": "cassandra"}, "backend"),
        ({**VALID, "asset_type": "bad type"}, "asset_type"),
        ({**VALID, "created": 1}, "created"),
        ({**VALID, "colour": "red"}, "colour"),
    ],
)
def test_create_validation(api, body, field, assert_json_error):
    message = assert_json_error(create(api, body), 400)

    assert message.startswith(f"{field}:"), message
    assert not Bucket.objects.exists()


@pytest.mark.parametrize(
    ("config", "source"),
    [
        ({"source": "mqtt", "topic": "house/+/temperature"}, "mqtt"),
        (
            {
                "source": "device",
                "device": "macbook",
                "resource": "data",
                "update": "interval",
                "interval": 300,
            },
            "device",
        ),
        ({"source": "write"}, "write"),
    ],
)
def test_other_sources_are_refused_saying_so(api, config, source, assert_json_error):
    message = assert_json_error(create(api, {**VALID, "config": config}), 400)

    assert message.startswith("config.source:")
    assert f'"{source}" is not supported' in message
    assert '"api"' in message


def test_create_refuses_a_body_that_is_not_an_object(api, assert_json_error):
    assert_json_error(create(api, [VALID]), 400)


def test_duplicate_id_is_400(api, owner, assert_json_error):
    BucketFactory(owner=owner, identifier="api_write")

    message = assert_json_error(create(api, VALID), 400)

    assert message.startswith("bucket:")
    assert Bucket.objects.count() == 1


def test_the_same_id_for_another_user_is_fine(api):
    BucketFactory(identifier="api_write")

    assert create(api, VALID).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 256}, "name"),
        ({"enabled": None}, "enabled"),
        ({"config": {"source": "mqtt", "topic": "a"}}, "config.source"),
        ({"config": {}}, "config.source"),
        ({"retention": {"unit": "ages"}}, "retention.unit"),
        ({"created": 5}, "created"),
        ({"asset_group": "bad group"}, "asset_group"),
    ],
)
def test_update_validation(api, owner, body, field, assert_json_error):
    BucketFactory(owner=owner, identifier="temps", name="Temps")

    message = assert_json_error(update(api, "temps", body), 400)

    assert message.startswith(f"{field}:"), message
    assert Bucket.objects.get(identifier="temps").name == "Temps"


# Who may.

ROUTES = [
    ("get", "/v1/users/{user}/buckets"),
    ("post", "/v1/users/{user}/buckets"),
    ("get", "/v1/users/{user}/buckets/temps"),
    ("put", "/v1/users/{user}/buckets/temps"),
    ("delete", "/v1/users/{user}/buckets/temps"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_credentials_is_401(client, owner, method, path, assert_json_error):
    BucketFactory(owner=owner, identifier="temps")

    response = call(client, method, path.format(user="alice"))

    assert_json_error(response, 401)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_another_users_buckets_are_403(api, method, path, assert_json_error):
    BucketFactory(owner=UserFactory(username="bob"), identifier="temps")

    response = call(api, method, path.format(user="bob"), VALID)

    assert_json_error(response, 403)
    assert Bucket.objects.filter(identifier="temps").exists()


def test_staff_may_read_but_not_change_another_users_buckets(client, assert_json_error):
    BucketFactory(owner=UserFactory(username="bob"), identifier="temps")
    client.force_login(UserFactory(username="staff", is_staff=True))

    assert client.get("/v1/users/bob/buckets").json()[0]["bucket"] == "temps"
    assert client.get("/v1/users/bob/buckets/temps").status_code == 200
    assert_json_error(client.delete("/v1/users/bob/buckets/temps"), 403)
    assert_json_error(update(client, "temps", {"name": "x"}, user="bob"), 403)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_bucket_is_404(api, method, assert_json_error):
    response = call(api, method, "/v1/users/alice/buckets/nope")

    assert_json_error(response, 404)


def test_session_login_works_too(client, owner):
    client.force_login(owner)

    assert create(client, VALID).status_code == 200
