from django.urls import path

from endpoints import console

urlpatterns = [
    path("endpoints/", console.endpoint_list, name="console-endpoint-list"),
    path("endpoints/new", console.EndpointEditView.as_view(), name="console-endpoint-create"),
    path("endpoints/<id:endpoint>/", console.endpoint_detail, name="console-endpoint"),
    path(
        "endpoints/<id:endpoint>/edit",
        console.EndpointEditView.as_view(),
        name="console-endpoint-edit",
    ),
    path(
        "endpoints/<id:endpoint>/delete",
        console.EndpointDeleteView.as_view(),
        name="console-endpoint-delete",
    ),
    path("endpoints/<id:endpoint>/test", console.endpoint_test, name="console-endpoint-test"),
    path(
        "endpoints/<id:endpoint>/calls/<int:call>/",
        console.endpoint_call_detail,
        name="console-endpoint-call",
    ),
    path(
        "endpoints/<id:endpoint>/calls/<int:call>/retry",
        console.endpoint_call_retry,
        name="console-endpoint-call-retry",
    ),
]
