from django.urls import path

from dashboards import api

urlpatterns = [
    path("v1/users/<id:user>/dashboards", api.DashboardListView.as_view(), name="api-dashboards"),
    path(
        "v1/users/<id:user>/dashboards/<id:dashboard>",
        api.DashboardDetailView.as_view(),
        name="api-dashboard",
    ),
    path(
        "v1/users/<id:user>/dashboards/<id:dashboard>/data",
        api.DashboardDataView.as_view(),
        name="api-dashboard-data",
    ),
    path(
        "v1/users/<id:user>/dashboards/<id:dashboard>/share",
        api.DashboardShareView.as_view(),
        name="api-dashboard-share",
    ),
]
