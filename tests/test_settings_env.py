"""Settings from the environment: a bad value stops start-up naming the variable; with nothing
set the server makes and keeps its own secret key (SPEC 8; STYLE: fail loudly)."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECRET_KEY); print(s.CALLBACK_TOKEN_KEY); print(s.CALLBACK_MAX_BYTES); "
    "print(s.DATABASES['default']['ENGINE'])"
)


def start(var_dir, code=PRINT_SETTINGS, **environ):
    """Start Django in a fresh interpreter with only ``environ`` set (and a private VAR_DIR)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "thinger_http.settings",
        "VAR_DIR": str(var_dir),
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("CALLBACK_MAX_BYTES", "abc"),
        ("CALLBACK_MAX_BYTES", "0"),
        ("CALLBACK_RATE", "fast"),
        ("CALLBACK_RETRY_AFTER_SECONDS", "soon"),
        ("DATABASE_URL", "nonsense://"),
        ("CACHE_URL", "nonsense://"),
        ("EMAIL_URL", "nonsense://"),
        ("DEVICE_SWEEP_INTERVAL_SECONDS", "-1"),
    ],
)
def test_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = start(tmp_path, **{name: value})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    assert f"Environment variable {name}" in last_line
    assert result.stdout == ""


def test_good_values_are_used(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 50, CALLBACK_MAX_BYTES="1024", DEBUG="yes")

    assert result.returncode == 0, result.stderr
    secret_key, token_key, max_bytes, engine = result.stdout.split()
    assert secret_key == token_key == "k" * 50
    assert max_bytes == "1024"
    assert engine == "django.db.backends.sqlite3"
    assert not (tmp_path / "secret_key").exists()


def test_with_nothing_set_a_secret_key_is_generated_and_kept(tmp_path):
    first = start(tmp_path)
    second = start(tmp_path)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    key = first.stdout.split()[0]
    assert len(key) >= 50
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert second.stdout.split()[0] == key


def test_each_installation_generates_its_own_secret_key(tmp_path):
    one = start(tmp_path / "one")
    other = start(tmp_path / "other")

    assert one.returncode == other.returncode == 0, one.stderr + other.stderr
    assert one.stdout.split()[0] != other.stdout.split()[0]


def test_callback_token_key_can_be_set_apart_from_the_secret_key(tmp_path):
    result = start(tmp_path, CALLBACK_TOKEN_KEY="t" * 40)

    assert result.returncode == 0, result.stderr
    secret_key, token_key = result.stdout.split()[:2]
    assert token_key == "t" * 40
    assert secret_key != token_key
