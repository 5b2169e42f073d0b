"""The read-only links of dashboards: no login, the token in the path."""

from django.urls import path

from dashboards import shared

urlpatterns = [
    path("shared/dashboards/<str:token>/", shared.shared_dashboard, name="shared-dashboard"),
    path(
        "shared/dashboards/<str:token>/tiles",
        shared.shared_dashboard_tiles,
        name="shared-dashboard-tiles",
    ),
    path(
        "shared/dashboards/<str:token>/widgets/<id:widget>/write",
        shared.shared_dashboard_control,
        name="shared-dashboard-control",
    ),
]
