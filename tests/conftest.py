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


def pytest_collection_modifyitems(config, items):
    """Tests marked ``services`` need PostgreSQL, Redis and a real worker: run them only there."""
    from django.conf import settings

    if not (settings.EMBEDDED_DB or settings.EMBEDDED_BROKER):
        return
    skip = pytest.mark.skip(reason="needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)
