"""What a callback does with the data, as its settings say (SPEC 1: Actions; SPEC 9: responses)."""

import json

import pytest

from buckets.models import BucketRecord
from devices.models import Property
from devices.services import device_rotate_token
from devices.tokens import callback_token_for
from endpoints.models import EndpointCall
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    EndpointFactory,
    PropertyFactory,
    callback_configure,
)


def property_value(device, identifier):
    return Property.objects.get(device=device, identifier=identifier).value


def test_write_bucket_stores_the_data_in_the_configured_bucket(callback_client, device):
    bucket = BucketFactory(owner=device.owner)
    other_bucket = BucketFactory(owner=device.owner)
    callback_configure(device, write_bucket=bucket)

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert list(bucket.records.values_list("value", flat=True)) == [{"temperature": 21.5}]
    assert not other_bucket.records.exists()


def test_disabled_bucket_stores_nothing_and_answers_200(callback_client, device):
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner, enabled=False))

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert not BucketRecord.objects.exists()


def test_without_write_bucket_nothing_is_stored(callback_client, device):
    BucketFactory(owner=device.owner)

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert not BucketRecord.objects.exists()


def test_set_property_takes_the_posted_value(callback_client, device):
    callback_configure(device, set_property=PropertyFactory(device=device, identifier="state"))

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert property_value(device, "state") == {"temperature": 21.5}


def test_set_property_of_a_batch_takes_its_last_record(callback_client, device):
    callback_configure(device, set_property=PropertyFactory(device=device, identifier="state"))

    callback_client.post(device, [{"n": 1}, {"n": 2}, {"n": 3}])

    assert property_value(device, "state") == {"n": 3}


def test_set_property_takes_a_json_string(callback_client, device):
    callback_configure(device, set_property=PropertyFactory(device=device, identifier="state"))

    callback_client.post(device, b'"hello"')

    assert property_value(device, "state") == "hello"


def test_send_property_of_the_property_just_set_answers_the_new_value(callback_client, device):
    state = PropertyFactory(device=device, identifier="state", value={"old": True})
    callback_configure(device, set_property=state, send_property=state)

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"temperature": 21.5}


def test_send_property_answers_that_propertys_stored_value(callback_client, device):
    callback_configure(
        device,
        set_property=PropertyFactory(device=device, identifier="state"),
        send_property=PropertyFactory(device=device, identifier="config", value={"every": 60}),
    )

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"every": 60}
    assert response["Content-Length"] == str(len(response.content))
    assert property_value(device, "state") == {"temperature": 21.5}


@pytest.mark.parametrize("value", ["on", 42, [1, 2], None])
def test_send_property_answers_any_json_value(callback_client, device, value):
    callback_configure(
        device, send_property=PropertyFactory(device=device, identifier="reply", value=value)
    )

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == value


def test_get_answers_the_send_property_value_and_stores_nothing(callback_client, callback_device):
    response = callback_client.get(callback_device)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"led": "on"}
    assert not BucketRecord.objects.exists()
    assert not EndpointCall.objects.exists()
    assert property_value(callback_device, "state") is None


def test_get_without_send_property_is_an_empty_200(callback_client, device):
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner))

    response = callback_client.get(device)

    assert response.status_code == 200
    assert response.content == b""
    assert not BucketRecord.objects.exists()


def test_empty_200_has_content_length_zero_and_no_content_type(callback_client, device):
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner))

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == "0"
    assert not response.has_header("Content-Type")


def test_call_endpoint_records_a_pending_call_with_the_posted_data(callback_client, device):
    endpoint = EndpointFactory(owner=device.owner)
    callback_configure(device, call_endpoint=endpoint)

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    call = EndpointCall.objects.get()
    assert call.endpoint == endpoint
    assert call.device == device
    assert call.status == EndpointCall.Status.PENDING
    assert call.payload == {"temperature": 21.5}


def test_call_endpoint_of_a_batch_gets_its_last_record(callback_client, device):
    callback_configure(device, call_endpoint=EndpointFactory(owner=device.owner))

    callback_client.post(device, [{"n": 1}, {"n": 2}])

    assert list(EndpointCall.objects.values_list("payload", flat=True)) == [{"n": 2}]


def test_disabled_endpoint_is_not_called(callback_client, device):
    callback_configure(device, call_endpoint=EndpointFactory(owner=device.owner, enabled=False))

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert not EndpointCall.objects.exists()


def test_ignored_body_does_not_call_the_endpoint(callback_client, device):
    callback_configure(device, call_endpoint=EndpointFactory(owner=device.owner))

    response = callback_client.post(device, b"not json", content_type="text/plain")

    assert response.status_code == 200
    assert not EndpointCall.objects.exists()


def _wrong_token(client, device):
    return client.post(device, {"t": 1}, token="garbage")


def _other_devices_token(client, device):
    other = DeviceFactory(owner=device.owner)
    return client.post(device, {"t": 1}, token=callback_token_for(other))


def _rotated_token(client, device):
    token = callback_token_for(device)
    device_rotate_token(device=device)
    return client.post(device, {"t": 1}, token=token)


def _disabled_device(client, device):
    device.enabled = False
    device.save()
    return client.post(device, {"t": 1})


def _deleted_device(client, device):
    token = callback_token_for(device)
    device.delete()
    return client.post(device, {"t": 1}, token=token)


def _oversized_body(client, device, settings):
    settings.CALLBACK_MAX_BYTES = 8
    return client.post(device, {"text": "more than eight bytes"})


def _bad_ts(client, device):
    return client.post(device, {"t": 1}, query={"ts": "abc"})


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (_wrong_token, 401),
        (_rotated_token, 401),
        (_other_devices_token, 403),
        (_disabled_device, 403),
        (_deleted_device, 404),
        (_oversized_body, 413),
        (_bad_ts, 400),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).strip("_"),
)
def test_failed_callback_records_no_endpoint_call(
    callback_client, callback_device, settings, assert_json_error, failure, status
):
    kwargs = {"settings": settings} if failure is _oversized_body else {}

    response = failure(callback_client, callback_device, **kwargs)

    assert_json_error(response, status)
    assert not EndpointCall.objects.exists()
    assert not BucketRecord.objects.exists()
