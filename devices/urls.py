from django.urls import path, register_converter

from devices import views_callback
from thinger_http.converters import IdentifierConverter

register_converter(IdentifierConverter, "id")

urlpatterns = [
    path(
        "v3/users/<id:user>/devices/<id:device>/callback/data",
        views_callback.callback_data,
        name="device-callback-data",
    ),
    path(
        "v3/users/<id:user>/devices/<id:device>/callback",
        views_callback.callback_data,
        {"legacy": True},
        name="device-callback",
    ),
]
