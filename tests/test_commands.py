"""Device commands: ``create_http_device`` and ``callback_url`` print credentials that work."""

import io
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from devices.models import Device
from devices.services import device_rotate_token
from tests.factories import DeviceFactory, UserFactory


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def credentials(output):
    """The callback URL, token and full URL a command printed."""
    fields = dict(re.findall(r"^(Callback URL|Token|Full URL):\s+(\S+)$", output, re.MULTILINE))
    return fields["Callback URL"], fields["Token"], fields["Full URL"]


def post(client, url, *, token=None):
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}" if parts.query else parts.path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        path, b'{"temperature": 21.5}', content_type="application/json", headers=headers
    )


def test_create_http_device_creates_the_user_and_the_device(db):
    run(
        "create_http_device", "alice", "sensor1", "--name", "Garden", "--description", "By the pond"
    )

    device = Device.objects.get(owner__username="alice", identifier="sensor1")
    assert (device.name, device.description, device.enabled) == ("Garden", "By the pond", True)
    assert device.type == Device.Type.HTTP
    assert not device.owner.has_usable_password()
    assert device.callback.timeout == 10


def test_create_http_device_prints_a_callback_url_and_token_that_work(db, settings, client):
    settings.PUBLIC_URL = "https://iot.example.com"

    output = run("create_http_device", "alice", "sensor1")

    url, token, full_url = credentials(output)
    assert url == "https://iot.example.com/v3/users/alice/devices/sensor1/callback/data"
    assert full_url == f"{url}?authorization={token}"
    assert post(client, url, token=token).status_code == 200
    assert post(client, full_url).status_code == 200
    assert Device.objects.get(identifier="sensor1").daily_stats.get().calls == 2


def test_create_http_device_for_an_existing_user_adds_a_device(db):
    owner = UserFactory(username="alice")
    DeviceFactory(owner=owner, identifier="sensor1")

    run("create_http_device", "alice", "sensor2")

    assert sorted(owner.devices.values_list("identifier", flat=True)) == ["sensor1", "sensor2"]
    assert get_user_model().objects.filter(username="alice").count() == 1


def test_create_http_device_again_for_the_same_device_is_an_error(db):
    first = credentials(run("create_http_device", "alice", "sensor1"))

    with pytest.raises(CommandError, match="already has a device"):
        run("create_http_device", "alice", "sensor1")

    device = Device.objects.get(identifier="sensor1")
    assert credentials(run("callback_url", "alice", "sensor1")) == first
    assert Device.objects.count() == 1
    assert device.name == ""


@pytest.mark.parametrize("identifier", ["bad id", "sensor/1", "x" * 33, "sensor.1"])
def test_create_http_device_with_an_invalid_device_id_is_an_error(db, identifier):
    UserFactory(username="alice")

    with pytest.raises(CommandError, match="invalid device"):
        run("create_http_device", "alice", identifier)

    assert not Device.objects.exists()


def test_create_http_device_with_an_invalid_device_id_creates_no_user(db):
    with pytest.raises(CommandError):
        run("create_http_device", "bob", "bad id")

    assert not get_user_model().objects.filter(username="bob").exists()


def test_create_http_device_with_an_invalid_username_is_an_error(db):
    with pytest.raises(CommandError, match="invalid user"):
        run("create_http_device", "not a user!", "sensor1")

    assert not get_user_model().objects.exists()
    assert not Device.objects.exists()


def test_callback_url_prints_the_same_url_and_token(db):
    created = credentials(run("create_http_device", "alice", "sensor1"))

    shown = credentials(run("callback_url", "alice", "sensor1"))

    assert shown == created


def test_callback_url_prints_the_current_token_after_rotation(db, client):
    old_url, old_token, _ = credentials(run("create_http_device", "alice", "sensor1"))
    device_rotate_token(device=Device.objects.get(identifier="sensor1"))

    url, token, _ = credentials(run("callback_url", "alice", "sensor1"))

    assert url == old_url
    assert token != old_token
    assert post(client, url, token=old_token).status_code == 401
    assert post(client, url, token=token).status_code == 200


@pytest.mark.parametrize(("user", "device"), [("alice", "nothing"), ("nobody", "sensor1")])
def test_callback_url_of_an_unknown_device_is_an_error(db, user, device):
    DeviceFactory(owner=UserFactory(username="alice"), identifier="sensor1")

    with pytest.raises(CommandError, match="has no device"):
        run("callback_url", user, device)
