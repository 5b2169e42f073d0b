from django.contrib import admin

from accounts.models import AccessToken, RefreshTokenFamily


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = (
        "identifier",
        "owner",
        "name",
        "enabled",
        "expire",
        "last_used",
        "created",
        "modified",
    )
    list_filter = ("enabled",)
    list_select_related = ("owner",)
    search_fields = ("identifier", "name", "owner__username")
    raw_id_fields = ("owner",)
    fields = (
        "owner",
        "identifier",
        "name",
        "description",
        "enabled",
        "allow",
        "deny",
        "expire",
        "last_used",
        "created",
        "modified",
    )
    readonly_fields = ("last_used", "created", "modified")
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
