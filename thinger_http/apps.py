from django.apps import AppConfig


class ThingerHttpConfig(AppConfig):
    """The project package: settings, URLs, WSGI and Celery. It stays an app for its migrations,
    which created the token tables that ``accounts`` now owns."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "thinger_http"
    verbose_name = "thinger-http"

    def ready(self):
        from core import logins  # noqa: F401  (signal receivers)
        from thinger_http import schema  # noqa: F401  (OpenAPI extensions)
