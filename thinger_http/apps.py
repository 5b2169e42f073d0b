from django.apps import AppConfig


class ThingerHttpConfig(AppConfig):
    """The project package is also an app: it holds API authentication (access tokens)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "thinger_http"
    verbose_name = "API access"

    def ready(self):
        from core import logins  # noqa: F401  (signal receivers)
        from thinger_http import schema  # noqa: F401  (OpenAPI extensions)
