from django.urls import path

from devices import views_callback


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
