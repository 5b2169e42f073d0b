from django.apps import AppConfig


class EndpointsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "endpoints"

    def ready(self):
        from endpoints import events  # noqa: F401 (declares the app's events)
