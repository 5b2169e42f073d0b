"""Shared factories: every test builds its data through these."""

from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from buckets.models import Bucket, BucketExport, BucketRecord
from dashboards.models import Dashboard
from devices.models import CallbackSettings, ConnectionEvent, Device, DeviceDailyStats, Property
from endpoints.models import Endpoint, EndpointAttempt, EndpointCall


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "secret-pass-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    identifier = factory.Sequence(lambda n: f"device{n}")
    name = factory.LazyAttribute(lambda d: f"Device {d.identifier}")
    callback = factory.RelatedFactory(
        "tests.factories.CallbackSettingsFactory", factory_related_name="device"
    )


class CallbackSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallbackSettings
        django_get_or_create = ("device",)


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property

    device = factory.SubFactory(DeviceFactory)
    identifier = factory.Sequence(lambda n: f"property{n}")
    value = None


class BucketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bucket

    owner = factory.SubFactory(UserFactory)
    identifier = factory.Sequence(lambda n: f"bucket{n}")
    name = factory.LazyAttribute(lambda b: f"Bucket {b.identifier}")


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    owner = factory.SubFactory(UserFactory)
    identifier = factory.Sequence(lambda n: f"endpoint{n}")
    type = Endpoint.Type.HTTP_REQUEST
    config = factory.LazyFunction(
        lambda: {"url": "http://127.0.0.1:9/", "method": "POST", "headers": [], "body_type": "json"}
    )


def callback_configure(device, **fields):
    """Set a device's callback settings (actions, timeout), as the owner would in the console."""
    callback = device.callback
    for name, value in fields.items():
        setattr(callback, name, value)
    callback.save()
    return callback


class BucketRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BucketRecord

    bucket = factory.SubFactory(BucketFactory)
    ts = factory.Sequence(lambda n: 1_700_000_000_000 + n * 1000)
    value = factory.LazyFunction(lambda: {"temperature": 21.5})


class EndpointCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndpointCall

    endpoint = factory.SubFactory(EndpointFactory)
    device = factory.SubFactory(DeviceFactory, owner=factory.SelfAttribute("..endpoint.owner"))
    payload = factory.LazyFunction(lambda: {"temperature": 21.5})
    ts = factory.Sequence(lambda n: 1_700_000_000_000 + n * 1000)
    status = EndpointCall.Status.PENDING


class EndpointAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndpointAttempt

    call = factory.SubFactory(EndpointCallFactory)
    started_at = factory.LazyFunction(timezone.now)
    duration_ms = 12
    status_code = 200


class DeviceDailyStatsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeviceDailyStats

    device = factory.SubFactory(DeviceFactory)
    date = factory.Sequence(lambda n: date(2024, 1, 1) + timedelta(days=n))
    calls = 1
    rx_bytes = 20
    tx_bytes = 0


class ConnectionEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConnectionEvent

    device = factory.SubFactory(DeviceFactory)
    kind = ConnectionEvent.Kind.CONNECTED
    at = factory.LazyFunction(timezone.now)
    remote_ip = "192.0.2.1"


class BucketExportFactory(factory.django.DjangoModelFactory):
    """An export row (no file): finish it with ``buckets.services.bucket_export_run``."""

    class Meta:
        model = BucketExport

    bucket = factory.SubFactory(BucketFactory)
    file = factory.Sequence(lambda n: f"export{n}.csv")
    data_type = BucketExport.DataType.CSV


class DashboardFactory(factory.django.DjangoModelFactory):
    """A dashboard; its widgets are saved as given (build them with the service to check
    them)."""

    class Meta:
        model = Dashboard

    owner = factory.SubFactory(UserFactory)
    identifier = factory.Sequence(lambda n: f"dashboard{n}")
    name = factory.LazyAttribute(lambda d: f"Dashboard {d.identifier}")
    widgets = factory.LazyFunction(list)
    layout = factory.LazyFunction(dict)
