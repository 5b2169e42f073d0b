"""What every benchmark script shares: its own database, Django, and the targets' verdict."""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def use_database(name, *, fresh=False):
    """Point ``DATABASE_URL`` (PostgreSQL) at the database ``name`` on the same server, created
    if missing (``fresh``: created anew, whatever a previous run left); never the project's own.
    Returns False when ``DATABASE_URL`` is not set."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return False
    parts = urlsplit(url)
    if parts.path.strip("/") != name:
        import psycopg
        from psycopg import sql

        maintenance = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(maintenance, autocommit=True) as conn:
            if fresh:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    return True


def drop_database(name):
    """Drop the database ``name`` on the server of ``DATABASE_URL`` (PostgreSQL)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(os.environ["DATABASE_URL"])
    if parts.path.strip("/") != name:
        raise ValueError(f"DATABASE_URL does not name the bench database {name}")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def setup_django(*, migrate=True):
    """Django with the project's settings, its database migrated (unless ``migrate`` is off)."""
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")
    import django

    django.setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", verbosity=0, interactive=False)


def report_targets(targets):
    """Print one line per (met, text) target; the exit status: 0 when all are met."""
    print("targets:")
    for met, text in targets:
        print(f"  {'OK    ' if met else 'MISSED'} {text}")
    return 0 if all(met for met, _ in targets) else 1
