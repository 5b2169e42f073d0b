"""Environment readers that fail loudly.

django-environ parses the values; these wrappers turn any value it cannot make sense of into an
``ImproperlyConfigured`` that names the variable, so a typo stops start-up instead of silently
falling back to a default.
"""

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bad(name, value, expected):
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is not valid: {expected}.")


def is_set(name):
    return bool(env.str(name, default="").strip())


def env_str(name, default=""):
    return env.str(name, default=default).strip()


def env_bool(name, default=False):
    if not is_set(name):
        return default
    value = env.str(name).strip()
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(name, value, "expected one of 1/0, true/false, yes/no, on/off")


def env_int(name, default, minimum=None):
    if not is_set(name):
        return default
    value = env.str(name).strip()
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, value, "expected an integer") from None
    if minimum is not None and number < minimum:
        raise _bad(name, value, f"expected an integer of at least {minimum}")
    return number


def env_list(name, default):
    if not is_set(name):
        return list(default)
    return [item.strip() for item in env.str(name).split(",") if item.strip()]


def env_db(name):
    value = env.str(name).strip()
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:
        raise _bad(name, value, f"expected a database URL ({exc})") from None
    if not config.get("ENGINE") or not config.get("NAME"):
        raise _bad(name, value, "expected a database URL such as postgres://user@host:5432/name")
    return config


def env_cache(name, value=None):
    value = value if value is not None else env.str(name).strip()
    try:
        return environ.Env.cache_url_config(value)
    except Exception as exc:
        raise _bad(name, value, f"expected a cache URL ({exc})") from None


def env_storage(name, default_location):
    """A Django storage (``STORAGES`` entry) from a URL: ``file:///shared/path`` (a directory
    every machine mounts), ``s3://bucket/prefix?endpoint_url=...&region_name=...`` (S3 or an
    S3-compatible service, credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``);
    unset: ``default_location`` on the local disk."""
    value = env_str(name)
    if not value:
        return _file_storage(default_location)
    parts = urlsplit(value)
    if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
        return _file_storage(parts.path)
    if parts.scheme == "s3" and parts.netloc:
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"endpoint_url", "region_name", "addressing_style"}
        if not unknown:
            options = {
                "bucket_name": parts.netloc,
                "location": parts.path.strip("/"),
                "file_overwrite": False,
                "default_acl": None,
                "querystring_auth": True,
                **query,
            }
            return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    raise _bad(name, value, "expected file:///absolute/path or s3://bucket/prefix?endpoint_url=...")


def _file_storage(location):
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location)},
    }


def env_rate(name, default):
    """A rate such as ``600/m``; empty or ``off`` disables it."""
    value = env_str(name, default)
    if value.lower() in ("", "off", "none"):
        return None
    count, _, period = value.partition("/")
    if not count.isdigit() or period[-1:] not in ("s", "m", "h", "d"):
        raise _bad(name, value, "expected a rate such as 600/m (per s, m, h or d), or off")
    return value


def persisted_secret(path: Path):
    """A random key kept in ``var/`` so that embedded mode keeps its sessions and tokens."""
    from django.utils.crypto import get_random_string

    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = get_random_string(64)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
