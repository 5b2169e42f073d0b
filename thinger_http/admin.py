"""The user admin, adjusted to what users own here.

A username is part of every callback URL and token, so it is fixed once the user exists. Deleting
a user goes through the services that delete buckets (records in set-based DELETEs, export files
removed) and devices (in chunks), and the confirmation page counts what goes instead of listing
every record.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from buckets.models import Bucket, BucketRecord
from buckets.services import bucket_delete
from devices.models import Device
from devices.services import device_delete_many
from endpoints.models import Endpoint
from thinger_http.models import AccessToken, RefreshTokenFamily

User = get_user_model()


class OwnerUserAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "username") if obj is not None else fields

    def get_deleted_objects(self, objs, request):
        users = list(objs)
        perms_needed = set()
        if any(not self.has_delete_permission(request, user) for user in users):
            perms_needed.add(User._meta.verbose_name)
        owned = [
            (Device, Device.objects.filter(owner__in=users).count()),
            (Bucket, Bucket.objects.filter(owner__in=users).count()),
            (BucketRecord, BucketRecord.objects.filter(bucket__owner__in=users).count()),
            (Endpoint, Endpoint.objects.filter(owner__in=users).count()),
            (AccessToken, AccessToken.objects.filter(owner__in=users).count()),
        ]
        summary = [str(user) for user in users] + [
            f"{count} {model._meta.verbose_name_plural}" for model, count in owned if count
        ]
        counts = {User._meta.verbose_name_plural: len(users)}
        counts.update({m._meta.verbose_name_plural: n for m, n in owned if n})
        return summary, counts, perms_needed, []

    @transaction.atomic
    def delete_model(self, request, obj):
        for bucket in Bucket.objects.filter(owner=obj):
            bucket_delete(bucket=bucket)
        device_delete_many(devices=Device.objects.filter(owner=obj))
        super().delete_model(request, obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for bucket in Bucket.objects.filter(owner__in=queryset):
            bucket_delete(bucket=bucket)
        device_delete_many(devices=Device.objects.filter(owner__in=queryset))
        super().delete_queryset(request, queryset)


admin.site.unregister(User)
admin.site.register(User, OwnerUserAdmin)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ("identifier", "owner", "name", "enabled", "expire", "created", "modified")
    list_filter = ("enabled",)
    list_select_related = ("owner",)
    search_fields = ("identifier", "name", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("created", "modified")
    date_hierarchy = "created"


@admin.register(RefreshTokenFamily)
class RefreshTokenFamilyAdmin(admin.ModelAdmin):
    """The logins of the API (OAuth password grants) and their refreshes; revoking one ends it."""

    list_display = ("owner", "created", "refreshed", "revoked")
    list_filter = ("revoked",)
    list_select_related = ("owner",)
    search_fields = ("owner__username",)
    fields = ("owner", "created", "refreshed", "revoked")
    readonly_fields = ("owner", "created", "refreshed")
    date_hierarchy = "created"
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # families start with a login

    @admin.action(description="Revoke: their refresh tokens no longer work", permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked=False).update(revoked=True)
        self.message_user(request, f"Revoked {count} refresh token families.")
