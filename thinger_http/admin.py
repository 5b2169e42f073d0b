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

from accounts.models import AccessToken
from buckets.models import Bucket, BucketRecord
from buckets.services import bucket_delete
from devices.models import Device
from devices.services import device_delete_many
from endpoints.models import Endpoint

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
