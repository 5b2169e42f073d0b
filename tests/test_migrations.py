"""SQL that lives in the database is a .sql file applied by its migration (issue 14, item 3):
readable as SQL, visible to review and to ``makemigrations --check``, never built from text."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from buckets.models import Bucket
from tests.factories import BucketFactory

APPS = ("devices", "buckets", "endpoints", "accounts", "thinger_http")


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


@pytest.mark.django_db(transaction=True)
def test_tokens_move_to_the_accounts_app_with_their_rows_and_permissions():
    """Issue 19: the token models leave the project package for ``accounts`` without moving a
    row: a token made before the move still authenticates after it, and a permission given on
    the old content type is the new model's."""
    from django.db.migrations.executor import MigrationExecutor

    from accounts.auth import access_token_value, authenticate_bearer
    from accounts.models import AccessToken
    from tests.factories import UserFactory

    before = [("thinger_http", "0002_refresh_token_families"), ("accounts", None)]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    executor.loader.build_graph()
    old = executor.loader.project_state(before[:1]).apps
    user = UserFactory(username="alice")
    token = old.get_model("thinger_http", "AccessToken").objects.create(
        owner_id=user.pk, identifier="gw", name="Gateway", allow={"*": {"*": "*"}}
    )
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.filter(model="accesstoken").delete()
    old_type = ContentType.objects.create(app_label="thinger_http", model="accesstoken")
    permission = Permission.objects.create(
        content_type=old_type, codename="view_accesstoken", name="Can view access token"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = AccessToken.objects.get(pk=token.pk)
    assert (moved.owner_id, moved.identifier) == (user.pk, "gw")
    assert authenticate_bearer(access_token_value(moved))[0] == user
    ContentType.objects.clear_cache()
    assert Permission.objects.get(pk=permission.pk).content_type.app_label == "accounts"
