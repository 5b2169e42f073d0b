from django.urls import path

from endpoints import api

urlpatterns = [
    path("v1/users/<id:user>/endpoints", api.EndpointListView.as_view(), name="api-endpoints"),
    path(
        "v1/users/<id:user>/endpoints/<id:endpoint>",
        api.EndpointDetailView.as_view(),
        name="api-endpoint",
    ),
    path(
        "v1/users/<id:user>/endpoints/<id:endpoint>/call",
        api.EndpointCallView.as_view(),
        name="api-endpoint-call",
    ),
    path(
        "v1/users/<id:user>/endpoints/<id:endpoint>/calls",
        api.EndpointCallLogView.as_view(),
        name="api-endpoint-calls",
    ),
    path(
        "v1/endpoints/templates",
        api.EndpointTemplateListView.as_view(),
        name="api-endpoint-templates",
    ),
    path(
        "v1/endpoints/templates/<id:endpoint>",
        api.EndpointTemplateDetailView.as_view(),
        name="api-endpoint-template",
    ),
]
