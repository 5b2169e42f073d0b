"""The user admin, adjusted to what users own here.

A username is part of every callback URL and token, so it is fixed once the user exists. Deleting
a user is the ``users_delete`` service, and the confirmation page counts what goes instead of
listing every record.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from dashboards.models import Dashboard
from devices.selectors import users_owned_counts
from devices.services import users_delete

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
        owned = users_owned_counts(users)
        # Dashboards are above devices, which cannot count them: they go with their owner.
        dashboards = Dashboard.objects.filter(owner__in=users).count()
        if dashboards:
            owned.append((Dashboard, dashboards))
        summary = [str(user) for user in users] + [
            f"{count} {model._meta.verbose_name_plural}" for model, count in owned
        ]
        counts = {User._meta.verbose_name_plural: len(users)}
        counts.update({model._meta.verbose_name_plural: count for model, count in owned})
        return summary, counts, perms_needed, []

    def delete_model(self, request, obj):
        users_delete(users=User.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        users_delete(users=queryset)


admin.site.unregister(User)
admin.site.register(User, OwnerUserAdmin)
