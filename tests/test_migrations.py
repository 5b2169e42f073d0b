"""SQL that lives in the database is a .sql file applied by its migration (issue 14, item 3):
readable as SQL, visible to review and to ``makemigrations --check``, never built from text."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from buckets.models import Bucket
from tests.factories import BucketFactory

APPS = ("devices", "buckets", "endpoints", "thinger_http")


def sql_files():
    for app in APPS:
        yield from sorted((Path(settings.BASE_DIR) / app / "migrations").glob("*.sql"))


def test_every_sql_file_is_applied_by_the_migration_of_its_number():
    files = list(sql_files())
    assert files, "the callback's and the bucket clock's SQL files"
    for path in files:
        number = path.name.split("_", 1)[0]
        [migration] = path.parent.glob(f"{number}_*.py")
        assert f"'{path.name}'" in migration.read_text(), (
            f"{migration.name} does not apply {path.name}"
        )


def test_every_sql_file_a_migration_names_exists():
    for app in APPS:
        for migration in (Path(settings.BASE_DIR) / app / "migrations").glob("*.py"):
            for name in re.findall(r"'(\w+\.sql)'", migration.read_text()):
                assert (migration.parent / name).exists(), f"{migration.name}: {name} is missing"


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no database functions: the portable code paths do without")


def functions():
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'thinger\\_%%'")
        return {name for (name,) in cursor.fetchall()}


def clock_exists(bucket_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(thinger_bucket_clock(%s)) IS NOT NULL", [bucket_id])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_migrations_install_the_functions(postgresql_only):
    assert functions() >= {
        "thinger_callback",
        "thinger_bucket_write",
        "thinger_bucket_claim",
        "thinger_bucket_clock",
    }
    assert "thinger_device_callback" not in functions()  # the function built from text is gone


@pytest.mark.django_db
def test_a_bucket_has_its_clock_from_creation_to_deletion(postgresql_only):
    bucket = BucketFactory()
    Bucket.objects.bulk_create([Bucket(owner=bucket.owner, identifier="bulk")])
    bulk = Bucket.objects.get(identifier="bulk")

    assert clock_exists(bucket.pk) and clock_exists(bulk.pk)
    bucket.delete()
    assert not clock_exists(bucket.pk)
