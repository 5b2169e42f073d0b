from django.conf import settings
from django.urls import reverse

from devices.models import Device
from devices.tokens import callback_token_for


def device_for_callback(*, username, identifier):
    """The device with its owner and callback settings (and what they reference) in one query."""
    return (
        Device.objects.select_related(
            "owner",
            "callback__write_bucket",
            "callback__set_property",
            "callback__send_property",
            "callback__call_endpoint",
        )
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def device_by_path(*, username, identifier):
    return (
        Device.objects.select_related("owner")
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def device_callback_url(device):
    """The URL a device posts to, on the public base URL administrators configured."""
    path = reverse(
        "device-callback-data",
        kwargs={"user": device.owner.username, "device": device.identifier},
    )
    return f"{settings.PUBLIC_URL}{path}"


def device_callback_credentials(device):
    """(url, token, url with ?authorization=) as the console and the commands show them."""
    url = device_callback_url(device)
    token = callback_token_for(device)
    return url, token, f"{url}?authorization={token}"
