from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DevicesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "devices"

    def ready(self):
        post_migrate.connect(_install_callback_function, sender=self)


def _install_callback_function(sender, using, **kwargs):
    """The callback's PostgreSQL function follows the code: checked after every ``migrate``."""
    from devices.services import install_callback_function

    install_callback_function(using=using)
