from django.urls import path

from dashboards import console

urlpatterns = [
    path("dashboards/", console.dashboard_list, name="console-dashboard-list"),
    path("dashboards/new", console.DashboardEditView.as_view(), name="console-dashboard-create"),
    path("dashboards/<id:dashboard>/", console.dashboard_detail, name="console-dashboard"),
    path(
        "dashboards/<id:dashboard>/tiles",
        console.dashboard_tiles,
        name="console-dashboard-tiles",
    ),
    path(
        "dashboards/<id:dashboard>/edit",
        console.DashboardEditView.as_view(),
        name="console-dashboard-edit",
    ),
    path(
        "dashboards/<id:dashboard>/delete",
        console.DashboardDeleteView.as_view(),
        name="console-dashboard-delete",
    ),
    path(
        "dashboards/<id:dashboard>/widgets/<id:widget>/write",
        console.dashboard_control,
        name="console-dashboard-control",
    ),
]
