from datetime import UTC, datetime

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import ngettext

from buckets.models import Bucket, BucketExport, BucketRecord, BucketSummary, BucketSummaryMark
from buckets.services import bucket_clear, bucket_delete, bucket_export_delete
from core.admin import OwnedAdmin, ReadOnlyAdmin, json_block, json_preview


@admin.register(Bucket)
class BucketAdmin(OwnedAdmin):
    list_display = [
        "identifier",
        "owner",
        "name",
        "enabled",
        "retention",
        "record_count",
        "created",
    ]
    list_filter = ["enabled", "source", "retention_unit"]
    list_select_related = ["owner"]
    search_fields = ["identifier", "name", "owner__username"]
    date_hierarchy = "created"
    raw_id_fields = ["owner"]
    readonly_fields = ["record_count", "created", "modified"]
    actions = ["clear_records"]

    def get_queryset(self, request):
        # A correlated count, evaluated only for the rows of the page, each from the
        # (bucket, ts) index; a JOIN ... GROUP BY would aggregate every record of every bucket.
        records = (
            BucketRecord.objects.filter(bucket=OuterRef("pk"))
            .order_by()
            .values("bucket")
            .annotate(n=Count("*"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                record_count=Coalesce(Subquery(records), 0, output_field=models.IntegerField())
            )
        )

    @admin.display(description="records", ordering="record_count")
    def record_count(self, obj):
        url = reverse("admin:buckets_bucketrecord_changelist")
        return format_html('<a href="{}?bucket={}">{}</a>', url, obj.pk, obj.record_count)

    @admin.display(description="retention")
    def retention(self, obj):
        if obj.retention_period is None:
            return "forever"
        return f"{obj.retention_period} {obj.get_retention_unit_display()}"

    def has_clear_records_permission(self, request):
        return request.user.has_perm("buckets.delete_bucketrecord")

    @admin.action(description="Clear all records", permissions=["clear_records"])
    def clear_records(self, request, queryset):
        buckets = list(queryset)
        deleted = 0
        for bucket in buckets:
            cleared = bucket_clear(bucket)
            self.log_change(request, bucket, f"Cleared all records ({cleared}).")
            deleted += cleared
        self.message_user(
            request,
            ngettext(
                "Deleted %(records)d records of %(buckets)d bucket.",
                "Deleted %(records)d records of %(buckets)d buckets.",
                len(buckets),
            )
            % {"records": deleted, "buckets": len(buckets)},
        )

    def delete_model(self, request, obj):
        bucket_delete(bucket=obj)

    def delete_queryset(self, request, queryset):
        for bucket in queryset:
            bucket_delete(bucket=bucket)

    def get_deleted_objects(self, objs, request):
        """Like Django's, but what a bucket takes with it is counted, not listed: a bucket can
        hold millions of records, and the confirmation page would load every one."""
        buckets = list(objs)
        opts = self.model._meta
        perms_needed = set()
        if any(not self.has_delete_permission(request, bucket) for bucket in buckets):
            perms_needed.add(opts.verbose_name)
        related_counts = []
        for relation in opts.related_objects:
            if relation.on_delete is not models.CASCADE:
                continue
            related = relation.related_model
            rows = (
                related._base_manager.filter(**{f"{relation.field.name}__in": buckets})
                .order_by()
                .values(relation.field.attname)
                .annotate(n=Count("*"))
            )
            counts = {row[relation.field.attname]: row["n"] for row in rows}
            if not any(counts.values()):
                continue
            related_counts.append((related._meta, counts))
            related_admin = self.admin_site._registry.get(related)
            if related_admin is not None and not related_admin.has_delete_permission(request):
                perms_needed.add(related._meta.verbose_name)

        to_delete = []
        for bucket in buckets:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[bucket.pk])
            to_delete.append(
                format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, bucket)
            )
            children = [
                f"{capfirst(related_opts.verbose_name_plural)}: {counts[bucket.pk]}"
                for related_opts, counts in related_counts
                if counts.get(bucket.pk)
            ]
            if children:
                to_delete.append(children)
        model_count = {opts.verbose_name_plural: len(buckets)}
        for related_opts, counts in related_counts:
            model_count[related_opts.verbose_name_plural] = sum(counts.values())
        return to_delete, model_count, perms_needed, []


class BucketFilter(admin.SimpleListFilter):
    """Filter by bucket id (``?bucket=<id>``, linked from the bucket list) without listing every
    bucket in the sidebar: only the selected one is shown."""

    title = "bucket"
    parameter_name = "bucket"

    def _bucket_id(self):
        value = self.value()
        if value is None:
            return None
        if not value.isdigit():
            raise IncorrectLookupParameters(f"bucket must be a bucket id, not {value!r}")
        return int(value)

    def lookups(self, request, model_admin):
        bucket_id = self._bucket_id()
        if bucket_id is None:
            return []
        bucket = Bucket.objects.select_related("owner").filter(pk=bucket_id).first()
        return [(str(bucket.pk), str(bucket))] if bucket else []

    def queryset(self, request, queryset):
        bucket_id = self._bucket_id()
        return queryset if bucket_id is None else queryset.filter(bucket_id=bucket_id)


@admin.register(BucketRecord)
class BucketRecordAdmin(ReadOnlyAdmin):
    list_display = ["bucket", "ts", "time", "value_preview"]
    list_filter = [BucketFilter]
    list_select_related = ["bucket__owner"]
    # Exact matches, so that a search uses the indexes: "<user> <bucket>" finds one bucket.
    search_fields = ["=bucket__identifier", "=bucket__owner__username"]
    raw_id_fields = ["bucket"]
    # The (bucket, ts) unique index, read backwards: newest records of a bucket first.
    ordering = ["-bucket_id", "-ts"]
    show_full_result_count = False
    fields = ["bucket", "ts", "time", "value_pretty"]
    readonly_fields = ["time", "value_pretty"]

    @admin.display(description="time", ordering="ts")
    def time(self, obj):
        try:
            moment = datetime.fromtimestamp(obj.ts / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return "out of range"
        return timezone.localtime(moment).isoformat(sep=" ", timespec="milliseconds")

    @admin.display(description="value")
    def value_preview(self, obj):
        return json_preview(obj.value)

    @admin.display(description="value")
    def value_pretty(self, obj):
        return json_block(obj.value)


@admin.register(BucketSummary)
class BucketSummaryAdmin(ReadOnlyAdmin):
    """Summaries per slot (buckets.summaries), written by beat's task; staff look, never edit."""

    list_display = ["bucket", "slot", "path", "numbers", "total", "least", "greatest"]
    list_filter = [BucketFilter]
    list_select_related = ["bucket__owner"]
    raw_id_fields = ["bucket"]
    ordering = ["-bucket_id", "-slot"]
    show_full_result_count = False


@admin.register(BucketSummaryMark)
class BucketSummaryMarkAdmin(ReadOnlyAdmin):
    """Which slots of each bucket are summarized: ``since`` to ``until`` (ms)."""

    list_display = ["bucket", "since", "until", "created"]
    list_select_related = ["bucket__owner"]
    search_fields = ["=bucket__identifier", "=bucket__owner__username"]
    raw_id_fields = ["bucket"]


@admin.register(BucketExport)
class BucketExportAdmin(ReadOnlyAdmin):
    """Export files are written by a Celery task; staff watch them here."""

    list_display = [
        "file",
        "bucket",
        "state",
        "progress",
        "rows",
        "size",
        "data_type",
        "created",
        "finished",
    ]
    list_filter = ["state", "data_type", "created"]
    list_select_related = ["bucket__owner"]
    search_fields = ["file", "bucket__identifier", "bucket__owner__username"]
    date_hierarchy = "created"
    raw_id_fields = ["bucket"]

    def delete_model(self, request, obj):
        bucket_export_delete(export=obj)

    def delete_queryset(self, request, queryset):
        for export in queryset:
            bucket_export_delete(export=export)
