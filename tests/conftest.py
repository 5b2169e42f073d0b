import pytest
from django.db import connection

from tests.factories import DeviceFactory


@pytest.fixture
def device(db):
    return DeviceFactory()


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"thinger-http: database={db} broker={settings.CELERY_BROKER_URL.split(':')[0]}"


@pytest.fixture
def on_postgresql():
    return connection.vendor == "postgresql"
