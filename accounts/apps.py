from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """API access: OAuth logins, refresh token families, long-lived access tokens."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "API access"
