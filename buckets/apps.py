from django.apps import AppConfig


class BucketsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "buckets"

    def ready(self):
        from buckets import events  # noqa: F401 (declares the app's events)
