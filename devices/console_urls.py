from django.urls import path

from devices import console

urlpatterns = [
    path("devices/", console.device_list, name="console-device-list"),
    path("alerts/", console.alert_defaults, name="console-alerts"),
    path("devices/<id:device>/alerts", console.device_alerts, name="console-device-alerts"),
    path("devices/status.json", console.device_list_status, name="console-device-list-status"),
    path("devices/new", console.DeviceEditView.as_view(), name="console-device-create"),
    path("devices/<id:device>/", console.device_detail, name="console-device"),
    path("devices/<id:device>/status.json", console.device_status, name="console-device-status"),
    path("devices/<id:device>/edit", console.DeviceEditView.as_view(), name="console-device-edit"),
    path(
        "devices/<id:device>/delete",
        console.DeviceDeleteView.as_view(),
        name="console-device-delete",
    ),
    path("devices/<id:device>/callback/", console.device_callback, name="console-device-callback"),
    path(
        "devices/<id:device>/callback/settings",
        console.device_callback_settings,
        name="console-device-callback-settings",
    ),
    path(
        "devices/<id:device>/callback/token",
        console.device_token_rotate,
        name="console-device-token-rotate",
    ),
    path(
        "devices/<id:device>/properties/",
        console.device_properties,
        name="console-device-properties",
    ),
    path(
        "devices/<id:device>/properties/new",
        console.PropertyEditView.as_view(),
        name="console-property-create",
    ),
    path(
        "devices/<id:device>/properties/<id:prop>/edit",
        console.PropertyEditView.as_view(),
        name="console-property-edit",
    ),
    path(
        "devices/<id:device>/properties/<id:prop>/delete",
        console.PropertyDeleteView.as_view(),
        name="console-property-delete",
    ),
]
