from django.urls import path

from dashboards import console, editor, shared

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
    path(
        "dashboards/<id:dashboard>/widgets/new",
        editor.widget_add,
        name="console-dashboard-widget-add",
    ),
    path(
        "dashboards/<id:dashboard>/widgets/<id:widget>/edit",
        editor.widget_edit,
        name="console-dashboard-widget-edit",
    ),
    path(
        "dashboards/<id:dashboard>/widgets/<id:widget>/remove",
        editor.widget_remove,
        name="console-dashboard-widget-remove",
    ),
    path(
        "dashboards/<id:dashboard>/layout",
        editor.layout_save,
        name="console-dashboard-layout",
    ),
    path(
        "dashboards/<id:dashboard>/share",
        shared.dashboard_share,
        name="console-dashboard-share",
    ),
    path(
        "dashboards/<id:dashboard>/share/revoke",
        shared.dashboard_share_revoke,
        name="console-dashboard-share-revoke",
    ),
    path(
        "dashboards/<id:dashboard>/share/controls",
        shared.dashboard_share_controls,
        name="console-dashboard-share-controls",
    ),
]
