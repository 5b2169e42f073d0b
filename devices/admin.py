from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html
from django.utils.translation import ngettext

from core.admin import OwnedAdmin, ReadOnlyAdmin, json_preview
from core.api import secrets_visible_to
from devices.models import (
    CALLBACK_ACTIONS,
    AlertSettings,
    AlertState,
    CallbackActivity,
    CallbackSettings,
    ConnectionEvent,
    Device,
    DeviceDailyStats,
    Property,
)
from devices.selectors import device_callback_credentials
from devices.services import device_delete, device_delete_many, device_rotate_token

STATUS_LABELS = {"connected": "Connected", "disconnected": "Disconnected", "never": "Never seen"}
CONNECTION_FIELDS = ["connected", "connected_at", "last_call_at", "remote_ip", "timeout_at"]


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(STATUS_LABELS.items())

    def queryset(self, request, queryset):
        conditions = {
            "connected": Q(connected=True),
            "disconnected": Q(connected=False, last_call_at__isnull=False),
            "never": Q(connected=False, last_call_at__isnull=True),
        }
        if self.value() in conditions:
            return queryset.filter(conditions[self.value()])
        return queryset


class CallbackSettingsForm(forms.ModelForm):
    """Callback actions may only reference the device owner's buckets and endpoints and the
    device's own properties: the API refuses anything else, so the admin does too."""

    def __init__(self, *args, device=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device

    def _device(self):
        if self.device is not None:
            return self.device
        return self.instance.device if self.instance.device_id else None

    def clean(self):
        cleaned_data = super().clean()
        device = self._device()
        if device is None or device.owner_id is None:
            return cleaned_data  # the device form reports what is missing
        for name in CALLBACK_ACTIONS:
            target = cleaned_data.get(name)
            if target is None:
                continue
            if isinstance(target, Property):
                if device.pk is None or target.device_id != device.pk:
                    self.add_error(
                        name,
                        f"The property {target} (id {target.pk}) belongs to another device: "
                        "choose one of this device's properties.",
                    )
            elif target.owner_id != device.owner_id:
                kind = target._meta.verbose_name
                self.add_error(
                    name,
                    f"The {kind} {target} belongs to another user: choose one of "
                    f"{device.owner.username}'s {target._meta.verbose_name_plural}.",
                )
        return cleaned_data


class CallbackSettingsFormSet(forms.BaseInlineFormSet):
    def get_form_kwargs(self, index):
        # The parent device, populated from the device form before the inline is validated, so
        # that a new device's owner is known too.
        return {**super().get_form_kwargs(index), "device": self.instance}


class CallbackSettingsInline(admin.StackedInline):
    model = CallbackSettings
    form = CallbackSettingsForm
    formset = CallbackSettingsFormSet
    fields = [*CALLBACK_ACTIONS, "timeout"]
    raw_id_fields = CALLBACK_ACTIONS
    can_delete = False


class PropertyInline(admin.TabularInline):
    model = Property
    fields = ["identifier", "name", "description", "value", "modified"]
    readonly_fields = ["modified"]
    extra = 0


@admin.register(Device)
class DeviceAdmin(OwnedAdmin):
    list_display = [
        "identifier",
        "owner",
        "name",
        "type",
        "enabled",
        "status_display",
        "last_call_at",
        "remote_ip",
    ]
    list_filter = [StatusFilter, "enabled", "type"]
    list_select_related = ["owner"]
    search_fields = ["identifier", "name", "owner__username", "remote_ip"]
    date_hierarchy = "created"
    raw_id_fields = ["owner"]
    readonly_fields = [
        "callback_credentials",
        "callback_url_only",
        "token_generation",
        "status_display",
        *CONNECTION_FIELDS,
        "created",
        "modified",
    ]
    fieldsets = [
        (None, {"fields": ["owner", "identifier", "name", "description", "type", "enabled"]}),
        ("Callback", {"fields": ["callback_credentials", "token_generation"]}),
        ("Connection", {"fields": ["status_display", *CONNECTION_FIELDS]}),
        ("Dates", {"fields": ["created", "modified"]}),
    ]
    inlines = [CallbackSettingsInline, PropertyInline]
    actions = ["rotate_callback_token"]

    @admin.display(description="status", ordering="connected")
    def status_display(self, obj):
        return STATUS_LABELS[obj.status]

    def get_fieldsets(self, request, obj=None):
        """The callback token is the owner's secret: staff see the URL of another user's device,
        not its token (the API's rule, core.api.secrets_visible_to)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or secrets_visible_to(request.user, obj.owner.username):
            return fieldsets
        return [
            (name, {**options, "fields": [self._redacted(f) for f in options["fields"]]})
            for name, options in fieldsets
        ]

    @staticmethod
    def _redacted(field):
        return "callback_url_only" if field == "callback_credentials" else field

    @admin.display(description="callback URL")
    def callback_url_only(self, obj):
        url, _, _ = device_callback_credentials(obj)
        return format_html(
            "<p>URL: <code>{}</code></p><p>The token is shown to the device's owner only.</p>",
            url,
        )

    @admin.display(description="callback URL and token")
    def callback_credentials(self, obj):
        if obj.pk is None:
            return "Shown once the device is saved."
        url, token, full_url = device_callback_credentials(obj)
        return format_html(
            '<div style="word-break: break-all">'
            "<p>URL: <code>{}</code></p><p>Token: <code>{}</code></p>"
            "<p>URL with token: <code>{}</code></p></div>",
            url,
            token,
            full_url,
        )

    @admin.action(description="Rotate callback token", permissions=["change"])
    def rotate_callback_token(self, request, queryset):
        devices = list(queryset)
        for device in devices:
            device_rotate_token(device=device)
            self.log_change(request, device, "Rotated the callback token.")
        self.message_user(
            request,
            ngettext(
                "Rotated the callback token of %d device: its old token no longer works.",
                "Rotated the callback tokens of %d devices: their old tokens no longer work.",
                len(devices),
            )
            % len(devices),
        )

    # Past this many devices, the delete confirmation counts what goes instead of listing it.
    LIST_DELETED_MAX = 1000

    def get_deleted_objects(self, objs, request):
        count = len(objs) if isinstance(objs, list) else objs.count()
        if count <= self.LIST_DELETED_MAX:
            return super().get_deleted_objects(objs, request)
        perms_needed = set()
        if not self.has_delete_permission(request):
            perms_needed.add(Device._meta.verbose_name)
        owned = [
            (Device, count),
            (Property, Property.objects.filter(device__in=objs).count()),
            (ConnectionEvent, ConnectionEvent.objects.filter(device__in=objs).count()),
            (DeviceDailyStats, DeviceDailyStats.objects.filter(device__in=objs).count()),
        ]
        summary = [f"{n} {model._meta.verbose_name_plural}" for model, n in owned if n]
        counts = {model._meta.verbose_name_plural: n for model, n in owned if n}
        return summary, counts, perms_needed, []

    def delete_model(self, request, obj):
        device_delete(device=obj)

    def delete_queryset(self, request, queryset):
        device_delete_many(devices=queryset)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Every device has callback settings, as device_create makes them; the inline saves its
        # row only when something in it was filled in.
        CallbackSettings.objects.get_or_create(device=form.instance)


@admin.register(CallbackSettings)
class CallbackSettingsAdmin(admin.ModelAdmin):
    """Created with their device; edited here or in the device's inline."""

    form = CallbackSettingsForm
    list_display = ["device", *CALLBACK_ACTIONS, "timeout"]
    list_select_related = [
        "device__owner",
        "write_bucket__owner",
        "set_property",
        "call_endpoint__owner",
        "send_property",
    ]
    list_filter = ["timeout"]
    search_fields = ["device__identifier", "device__owner__username"]
    raw_id_fields = CALLBACK_ACTIONS
    fields = ["device", *CALLBACK_ACTIONS, "timeout"]
    readonly_fields = ["device"]

    def has_add_permission(self, request):
        return False


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = ["identifier", "device", "name", "value_preview", "modified"]
    list_select_related = ["device__owner"]
    list_filter = ["modified"]
    search_fields = ["identifier", "name", "device__identifier", "device__owner__username"]
    date_hierarchy = "modified"
    raw_id_fields = ["device"]
    readonly_fields = ["created", "modified"]

    def get_readonly_fields(self, request, obj=None):
        # Callback settings reference the property as one of their device's.
        return [*self.readonly_fields, "device"] if obj else self.readonly_fields

    @admin.display(description="value")
    def value_preview(self, obj):
        return json_preview(obj.value)


@admin.register(DeviceDailyStats)
class DeviceDailyStatsAdmin(ReadOnlyAdmin):
    list_display = ["date", "device", "calls", "rx_bytes", "tx_bytes"]
    list_select_related = ["device__owner"]
    list_filter = ["date"]
    search_fields = ["device__identifier", "device__owner__username"]
    date_hierarchy = "date"
    raw_id_fields = ["device"]
    ordering = ["-date", "device_id"]


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "device", "kind", "remote_ip"]
    list_select_related = ["device__owner"]
    list_filter = ["kind", "at"]
    search_fields = ["device__identifier", "device__owner__username"]
    date_hierarchy = "at"
    raw_id_fields = ["device"]


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "device", "enabled", "on_disconnect", "on_reconnect"]
    list_select_related = ["owner", "device__owner"]
    list_filter = ["enabled", "on_disconnect", "on_reconnect"]
    search_fields = ["owner__username", "device__identifier"]
    raw_id_fields = ["owner", "device"]
    filter_horizontal = ["endpoints"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        strangers = form.instance.endpoints.exclude(owner=form.instance.owner)
        if strangers.exists():
            form.instance.endpoints.remove(*strangers)
            self.message_user(request, "Endpoints of another user were left out.", level="warning")


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["device", "told", "connected_told_at", "disconnected_told_at", "held"]
    list_select_related = ["device__owner"]
    list_filter = ["told", "held"]
    search_fields = ["device__identifier", "device__owner__username"]


@admin.register(CallbackActivity)
class CallbackActivityAdmin(ReadOnlyAdmin):
    list_display = ["last_at", "device", "status", "reason", "count", "remote_ip", "size"]
    list_select_related = ["device__owner"]
    list_filter = ["status", "last_at"]
    search_fields = ["device__identifier", "device__owner__username", "reason"]
    date_hierarchy = "last_at"
    raw_id_fields = ["device"]
