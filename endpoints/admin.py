from django import forms
from django.contrib import admin
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import ngettext

from core.admin import IndentedJSONField, OwnedAdmin, ReadOnlyAdmin, json_block
from endpoints.models import Endpoint, EndpointAttempt, EndpointCall
from endpoints.services import endpoint_call_enqueue


@admin.register(Endpoint)
class EndpointAdmin(OwnedAdmin):
    list_display = ["identifier", "owner", "name", "type", "enabled", "created"]
    list_filter = ["type", "enabled"]
    list_select_related = ["owner"]
    search_fields = ["identifier", "name", "owner__username"]
    date_hierarchy = "created"
    raw_id_fields = ["owner"]
    fields = [
        "owner",
        "identifier",
        "name",
        "description",
        "type",
        "enabled",
        "config",
        "created",
        "modified",
    ]
    readonly_fields = ["created", "modified"]

    formfield_overrides = {
        models.JSONField: {
            "form_class": IndentedJSONField,
            "widget": forms.Textarea(attrs={"rows": 16, "cols": 80}),
        }
    }


def _preview(text, length=80):
    return text if len(text) <= length else f"{text[: length - 1]}…"


class EndpointAttemptInline(admin.TabularInline):
    """The call's attempt log (a handful of rows: attempts are capped)."""

    model = EndpointAttempt
    fields = ["started_at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EndpointCall)
class EndpointCallAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "endpoint",
        "device",
        "status",
        "attempts",
        "created",
        "next_attempt_at",
        "finished_at",
        "last_error_preview",
    ]
    list_filter = ["status", "endpoint__type", "created"]
    list_select_related = ["endpoint__owner", "device__owner"]
    search_fields = ["endpoint__identifier", "endpoint__owner__username", "device__identifier"]
    date_hierarchy = "created"
    raw_id_fields = ["endpoint", "device"]
    show_full_result_count = False
    fields = [
        "endpoint",
        "device",
        "status",
        "attempts",
        "ts",
        "created",
        "next_attempt_at",
        "finished_at",
        "last_error",
        "payload_pretty",
    ]
    readonly_fields = ["payload_pretty"]
    inlines = [EndpointAttemptInline]
    actions = ["retry_failed"]

    @admin.display(description="last error")
    def last_error_preview(self, obj):
        return _preview(obj.last_error)

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return json_block(obj.payload)

    def has_retry_permission(self, request):
        # The admin is view-only (rows are written by deliveries), but retrying changes them.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Retry failed calls", permissions=["retry"])
    def retry_failed(self, request, queryset):
        """Failed calls start again as new: pending, no attempts, due now, handed to the workers
        once this commits (the requeue sweep picks them up if the broker is down). Calls in
        any other state are left alone."""
        with transaction.atomic():
            ids = list(
                queryset.filter(status=EndpointCall.Status.FAILED)
                .select_for_update()
                .values_list("pk", flat=True)
            )
            EndpointCall.objects.filter(pk__in=ids, status=EndpointCall.Status.FAILED).update(
                status=EndpointCall.Status.PENDING,
                attempts=0,
                next_attempt_at=timezone.now(),
                finished_at=None,
            )
            for call_id in ids:
                transaction.on_commit(
                    lambda call_id=call_id: endpoint_call_enqueue(call_id=call_id)
                )
        self.message_user(
            request,
            ngettext(
                "%(count)d failed call will be retried.",
                "%(count)d failed calls will be retried.",
                len(ids),
            )
            % {"count": len(ids)},
        )


@admin.register(EndpointAttempt)
class EndpointAttemptAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "call", "status_code", "duration_ms", "error_preview"]
    list_filter = ["status_code", "started_at"]
    search_fields = ["=call__id", "call__endpoint__identifier", "call__endpoint__owner__username"]
    date_hierarchy = "started_at"
    raw_id_fields = ["call"]
    list_select_related = ["call"]
    show_full_result_count = False

    @admin.display(description="error")
    def error_preview(self, obj):
        return _preview(obj.error)
