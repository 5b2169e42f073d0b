"""Shared factories: every test builds its data through these."""

import factory
from django.contrib.auth import get_user_model

from buckets.models import Bucket
from devices.models import CallbackSettings, Device, Property
from endpoints.models import Endpoint


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
