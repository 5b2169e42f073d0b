from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models

from core.admin import IndentedJSONField, OwnedAdmin
from dashboards.models import Dashboard
from dashboards.services import dashboard_check


class DashboardAdminForm(forms.ModelForm):
    """The widgets and layout checked by the rule the API and the console use."""

    class Meta:
        model = Dashboard
        fields = [
            "owner",
            "identifier",
            "name",
            "description",
            "enabled",
            "widgets",
            "layout",
            "share_controls",
        ]

    def clean(self):
        data = super().clean()
        owner = data.get("owner") or getattr(self.instance, "owner", None)
        widgets, layout = data.get("widgets"), data.get("layout")
        if owner is None or widgets is None or layout is None:
            return data
        try:
            dashboard_check(owner=owner, widgets=widgets, layout=layout)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                box = "layout" if key.startswith("layout") else "widgets"
                for message in messages:
                    self.add_error(box, message if key == box else f"{key}: {message}")
        return data


@admin.register(Dashboard)
class DashboardAdmin(OwnedAdmin):
    form = DashboardAdminForm
    list_display = ["identifier", "owner", "name", "widget_count", "enabled", "shared", "created"]
    list_filter = ["enabled"]
    list_select_related = ["owner"]
    search_fields = ["identifier", "name", "owner__username"]
    date_hierarchy = "created"
    raw_id_fields = ["owner"]
    fields = [
        "owner",
        "identifier",
        "name",
        "description",
        "enabled",
        "widgets",
        "layout",
        "shared",
        "share_controls",
        "created",
        "modified",
    ]
    readonly_fields = ["shared", "created", "modified"]
    formfield_overrides = {
        models.JSONField: {
            "form_class": IndentedJSONField,
            "widget": forms.Textarea(attrs={"rows": 16, "cols": 80}),
        }
    }

    @admin.display(description="widgets")
    def widget_count(self, obj):
        return len(obj.widgets) if isinstance(obj.widgets, list) else 0

    @admin.display(description="shared", boolean=True)
    def shared(self, obj):
        # Whether a share link exists; its token is the owner's to see.
        return obj.share_token is not None
