from django.urls import path

from endpoints import console

urlpatterns = [
    path("endpoints/", console.endpoint_list, name="console-endpoint-list"),
    path("endpoints/new", console.endpoint_create, name="console-endpoint-create"),
    path("endpoints/<id:endpoint>/", console.endpoint_detail, name="console-endpoint"),
    path("endpoints/<id:endpoint>/edit", console.endpoint_edit, name="console-endpoint-edit"),
    path("endpoints/<id:endpoint>/delete", console.endpoint_delete, name="console-endpoint-delete"),
    path("endpoints/<id:endpoint>/test", console.endpoint_test, name="console-endpoint-test"),
]
