from django.urls import path, re_path

from core.identifiers import IDENTIFIER_PATTERN as ID
from devices import api
from devices.callback.views import callback_view

DEVICE = "users/<id:user>/devices/<id:device>"

urlpatterns = [
    path(
        f"v3/{DEVICE}/callback/data",
        callback_view,
        name="device-callback-data",
    ),
    # GET and PUT read and set the callback settings; POST is the legacy device callback path.
    path(f"v3/{DEVICE}/callback", api.CallbackSettingsView.as_view(), name="device-callback"),
    path(
        f"v3/{DEVICE}/callback/token",
        api.CallbackTokenView.as_view(),
        name="api-device-callback-token",
    ),
    path("v1/users/<id:user>/devices", api.DeviceListView.as_view(), name="api-devices"),
    path(f"v1/{DEVICE}", api.DeviceDetailView.as_view(), name="api-device"),
    path(f"v3/{DEVICE}/stats", api.DeviceStatsView.as_view(), name="api-device-stats"),
    path(f"v3/{DEVICE}/activity", api.DeviceActivityView.as_view(), name="api-device-activity"),
    path(f"v1/{DEVICE}/stats", api.DeviceStatsV1View.as_view(), name="api-device-stats-v1"),
    path(f"v3/{DEVICE}/properties", api.PropertyListView.as_view(), name="api-device-properties"),
    path(
        f"v3/{DEVICE}/properties/<id:property>",
        api.PropertyDetailView.as_view(),
        name="api-device-property",
    ),
    path(
        "v3/users/<id:user>/devices/<id:device>/buckets",
        api.DeviceBucketListView.as_view(),
        name="api-device-buckets",
    ),
    re_path(
        rf"^(?P<version>v1|v2|v3)/users/(?P<user>{ID})/devices/(?P<device>{ID})"
        rf"/buckets/(?P<bucket>{ID})/data$",
        api.DeviceBucketReadView.as_view(),
        name="api-device-bucket-read",
    ),
]
