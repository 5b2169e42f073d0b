"""Settings for both modes.

Embedded (nothing set): SQLite and a filesystem Celery broker under ``var/``, e-mail to the console.
Services: ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis), as in production.
"""

import ipaddress
from pathlib import Path

from thinger_http.env import (
    env_bool,
    env_cache,
    env_db,
    env_int,
    env_list,
    env_rate,
    env_storage,
    env_str,
    is_set,
    persisted_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

EMBEDDED_DB = not is_set("DATABASE_URL")
EMBEDDED_BROKER = not is_set("CELERY_BROKER_URL")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or persisted_secret(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# The base URL shown to administrators for callback URLs (what devices must call).
PUBLIC_URL = env_str("PUBLIC_URL", f"http://localhost:{env_int('HTTP_PORT', 8000)}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "thinger_http",
    "accounts",
    "devices",
    "buckets",
    "endpoints",
    "dashboards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "thinger_http.middleware.StorableQueryMiddleware",
    "core.logins.LoginLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "thinger_http.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "thinger_http.middleware.DeletedMeanwhileMiddleware",
    "thinger_http.middleware.BrowserTimeZoneMiddleware",
]

# What the device callback's answers need of MIDDLEWARE, in its order (thinger_http.wsgi).
CALLBACK_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "thinger_http.urls"
WSGI_APPLICATION = "thinger_http.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if EMBEDDED_DB:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # Writers queue for the lock instead of failing; WAL lets readers go on meanwhile.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    DATABASES = {"default": env_db("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 600, minimum=0)
    # No query before each request to check the connection: a broken one fails that request (the
    # device callback answers 503 with Retry-After) and is replaced for the next.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    # Parameters bound by the server, so that psycopg prepares a query it runs a fifth time on a
    # connection and PostgreSQL plans it once (behind PgBouncer in transaction mode, 1.21 or newer
    # with max_prepared_statements set).
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": 5,
        **DATABASES["default"].get("OPTIONS", {}),
    }
    # A pool of connections per process instead of one persistent connection per thread: the
    # web server's gevent workers set it (thinger_http/gunicorn.conf.py), since each request runs
    # in a greenlet of its own. A request waits up to DB_POOL_TIMEOUT seconds for a connection.
    if env_int("DB_POOL_SIZE", 0, minimum=0):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": env_int("DB_POOL_SIZE", 0, minimum=0),
            "timeout": env_int("DB_POOL_TIMEOUT", 10, minimum=1),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if is_set("CACHE_URL"):
    CACHES = {"default": env_cache("CACHE_URL")}
elif not EMBEDDED_BROKER and env_str("CELERY_BROKER_URL").startswith(("redis://", "rediss://")):
    CACHES = {"default": env_cache("CELERY_BROKER_URL", env_str("CELERY_BROKER_URL"))}
    CACHES["default"]["BACKEND"] = "django.core.cache.backends.redis.RedisCache"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Bucket exports: workers write them, web processes serve them, so every machine must reach
    # the same storage (buckets.services). The local disk suits one machine (embedded mode).
    "exports": env_storage("EXPORTS_STORAGE_URL", MEDIA_ROOT / "exports"),
}
# Serve files found in the apps too, so that tests and a fresh checkout work before collectstatic.
WHITENOISE_USE_FINDERS = True

if is_set("EMAIL_URL"):
    from thinger_http.env import env as _env

    try:
        vars().update(_env.email_url("EMAIL_URL"))
    except Exception as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"Environment variable EMAIL_URL is not valid: {exc}") from None
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "thinger-http@localhost")

# Celery. Embedded mode uses kombu's filesystem transport: no server to run.
if EMBEDDED_BROKER:
    _broker_dir = VAR_DIR / "celery" / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
    # Fail fast when Redis is unreachable: the callback has committed its endpoint call rows and
    # the requeue sweep enqueues them later. The visibility timeout outlasts the longest retry
    # countdown, so the broker does not hand out a delayed task twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 4 * 3600,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Beat keeps its schedule's state here, in either mode (a supervisor starting beat on a fresh
# machine finds the directory).
(VAR_DIR / "celery").mkdir(exist_ok=True)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
CELERY_BEAT_SCHEDULE = {}

# Device callback.
CALLBACK_MAX_BYTES = env_int("CALLBACK_MAX_BYTES", 256 * 1024, minimum=1)
CALLBACK_MAX_DEPTH = env_int("CALLBACK_MAX_DEPTH", 32, minimum=1)
CALLBACK_MAX_RECORDS = env_int("CALLBACK_MAX_RECORDS", 1000, minimum=1)
CALLBACK_RATE = env_rate("CALLBACK_RATE", "600/m")
CALLBACK_RETRY_AFTER_SECONDS = env_int("CALLBACK_RETRY_AFTER_SECONDS", 5, minimum=1)
CALLBACK_TOKEN_KEY = env_str("CALLBACK_TOKEN_KEY") or SECRET_KEY

# Where the callback's rate limit counts (devices.callback.throttle): the cache and a key prefix.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_CACHE_PREFIX = "rl:"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}

# Connection timeout sweep (devices.tasks.device_sweep_timeouts).
DEVICE_SWEEP_INTERVAL_SECONDS = env_int("DEVICE_SWEEP_INTERVAL_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["device-sweep-timeouts"] = {
    "task": "devices.tasks.device_sweep_timeouts",
    "schedule": DEVICE_SWEEP_INTERVAL_SECONDS,
    # A sweep that waited longer than one interval is superseded by the next one.
    "options": {"expires": DEVICE_SWEEP_INTERVAL_SECONDS},
}

# The queue of the device activity log's writes (devices.activity); unset: Celery's default.
DEVICES_TASK_QUEUE = env_str("DEVICES_TASK_QUEUE") or None

# Alerts on disconnect and reconnect (devices.alerts): how often beat hands new connection
# events to the alerts, and how many at most each time.
ALERTS_INTERVAL_SECONDS = env_int("ALERTS_INTERVAL_SECONDS", 10, minimum=1)
ALERTS_BATCH = env_int("ALERTS_BATCH", 1000, minimum=1)
CELERY_BEAT_SCHEDULE["device-alerts"] = {
    "task": "devices.tasks.device_alerts_dispatch",
    "schedule": ALERTS_INTERVAL_SECONDS,
    "options": {"expires": ALERTS_INTERVAL_SECONDS},
}

# Device statistics as Server-Sent Events (devices.streams): how long a stream lasts before the
# client reconnects, how often it polls the device row, how often an idle stream says it is
# alive; past STATS_SSE_MAX_STREAMS open streams a process answers one event and tells the client
# to reconnect after STATS_SSE_RETRY_MS.
STATS_SSE_SECONDS = env_int("STATS_SSE_SECONDS", 300, minimum=1)
STATS_SSE_POLL_SECONDS = env_int("STATS_SSE_POLL_SECONDS", 1, minimum=1)
STATS_SSE_KEEPALIVE_SECONDS = env_int("STATS_SSE_KEEPALIVE_SECONDS", 15, minimum=1)
STATS_SSE_MAX_STREAMS = env_int("STATS_SSE_MAX_STREAMS", 2, minimum=0)
STATS_SSE_RETRY_MS = env_int("STATS_SSE_RETRY_MS", 10_000, minimum=1)

# Endpoint delivery (endpoints.tasks).
ENDPOINTS_ALLOW_PRIVATE_NETWORKS = env_bool("ENDPOINTS_ALLOW_PRIVATE_NETWORKS", False)
ENDPOINTS_MAX_ATTEMPTS = env_int("ENDPOINTS_MAX_ATTEMPTS", 6, minimum=1)
ENDPOINTS_CONNECT_TIMEOUT_SECONDS = env_int("ENDPOINTS_CONNECT_TIMEOUT_SECONDS", 5, minimum=1)
ENDPOINTS_READ_TIMEOUT_SECONDS = env_int("ENDPOINTS_READ_TIMEOUT_SECONDS", 15, minimum=1)
ENDPOINTS_RETRY_BASE_SECONDS = env_int("ENDPOINTS_RETRY_BASE_SECONDS", 10, minimum=0)
ENDPOINTS_RETRY_MAX_SECONDS = env_int("ENDPOINTS_RETRY_MAX_SECONDS", 3600, minimum=1)
# Calls still pending this long after they were due are enqueued again by beat.
ENDPOINTS_REQUEUE_GRACE_SECONDS = env_int("ENDPOINTS_REQUEUE_GRACE_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["endpoint-requeue-pending"] = {
    "task": "endpoints.tasks.endpoint_requeue_pending",
    "schedule": env_int("ENDPOINTS_REQUEUE_INTERVAL_SECONDS", 30, minimum=1),
}
# The queue endpoint calls go to; unset: Celery's default (tests route them to a worker of their
# own).
ENDPOINTS_TASK_QUEUE = env_str("ENDPOINTS_TASK_QUEUE") or None

# Live events (core.events, thinger_http.events_socket): a WebSocket at
# /v1/users/{user}/events, served by the ASGI process (`events` in the Procfile; the web process
# forwards WebSocket upgrades to it at EVENTS_HOST:EVENTS_PORT). Events cross processes through
# Redis (the channel layer) when there is one, else through a datagram socket in var/ that the
# one events process of an embedded install listens on.
ASGI_APPLICATION = "thinger_http.asgi.application"
EVENTS_HOST = env_str("EVENTS_HOST", "127.0.0.1")
EVENTS_PORT = env_int("EVENTS_PORT", 8001, minimum=1)
EVENTS_REDIS_URL = env_str("EVENTS_REDIS_URL") or (
    env_str("CELERY_BROKER_URL")
    if env_str("CELERY_BROKER_URL").startswith(("redis://", "rediss://"))
    else ""
)
EVENTS_SOCKET = Path(env_str("EVENTS_SOCKET", str(VAR_DIR / "events.sock")))
# WebSockets one events process holds; past it a client is refused at the handshake (503).
EVENTS_MAX_CONNECTIONS = env_int("EVENTS_MAX_CONNECTIONS", 1000, minimum=1)
# A subscriber that has not taken an event within this many seconds is disconnected.
EVENTS_SEND_TIMEOUT_SECONDS = env_int("EVENTS_SEND_TIMEOUT_SECONDS", 10, minimum=1)
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [EVENTS_REDIS_URL],
                "prefix": env_str("EVENTS_CHANNEL_PREFIX", "thinger-events"),
            },
        }
        if EVENTS_REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 200}}
    )
}

# REST API.
API_ACCESS_TOKEN_SECONDS = env_int("API_ACCESS_TOKEN_SECONDS", 7200, minimum=60)
API_REFRESH_TOKEN_SECONDS = env_int("API_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600, minimum=60)
API_RATE = env_rate("API_RATE", "1200/m")
# Failed logins (/oauth/token, /login/, /admin/login/) before that account, or that address, is
# locked for the rest of the window (thinger_http/logins.py).
LOGIN_FAILURES_PER_ACCOUNT = env_rate("LOGIN_FAILURES_PER_ACCOUNT", "10/15m")
LOGIN_FAILURES_PER_ADDRESS = env_rate("LOGIN_FAILURES_PER_ADDRESS", "50/15m")
LOGIN_PATHS = ("/oauth/token", "/login/", "/admin/login/")
# Proxies whose X-Forwarded-For names the client (addresses or networks, comma-separated); the
# peer's own address otherwise.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"Environment variable TRUSTED_PROXIES is not valid: {_proxy!r} is not an address "
            "or a network"
        ) from None
# The largest request body of the API and the console (413 above it; Django's own setting, which
# its form parsers apply too). A chunked body is read up to the larger of this and
# CALLBACK_MAX_BYTES (thinger_http.wsgi).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BYTES", 2_621_440, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.BearerAuthentication",
        "accounts.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api_policy.OwnerPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api_policy.JSONParser",
        "core.api_policy.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api_policy.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["core.api_policy.UserRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "thinger-http API",
    "DESCRIPTION": "Devices, callbacks, properties, buckets, endpoints and tokens. "
    "Wire-compatible with the Thinger.io Server API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Buckets: retention (buckets.tasks.bucket_enforce_retention) and exports written by workers under
# MEDIA_ROOT/exports; exports no worker took are sent again (buckets.tasks.bucket_exports_requeue).
BUCKET_RETENTION_INTERVAL_SECONDS = env_int("BUCKET_RETENTION_INTERVAL_SECONDS", 3600, minimum=1)
CELERY_BEAT_SCHEDULE["bucket-enforce-retention"] = {
    "task": "buckets.tasks.bucket_enforce_retention",
    "schedule": BUCKET_RETENTION_INTERVAL_SECONDS,
}
# Summaries of the records per slot, which charts of long ranges read (buckets.summaries).
CELERY_BEAT_SCHEDULE["bucket-summaries-update"] = {
    "task": "buckets.tasks.bucket_summaries_update",
    "schedule": 60,
}
CELERY_BEAT_SCHEDULE["bucket-exports-requeue"] = {
    "task": "buckets.tasks.bucket_exports_requeue",
    "schedule": 300,
}
# The queue export tasks go to; unset: Celery's default (tests route them to a worker of their own).
BUCKET_TASK_QUEUE = env_str("BUCKET_TASK_QUEUE") or None

# Console
LOGIN_URL = "console-login"
LOGIN_REDIRECT_URL = "console-home"
LOGOUT_REDIRECT_URL = "console-login"

# Security. Served over HTTPS (PUBLIC_URL https://...), every protection below is on unless
# turned off; over plain http (`make run` on localhost) the ones that need HTTPS are off, so that
# the console's cookies still work. `manage.py check --deploy` is clean with the production
# environment of the README.
HTTPS = PUBLIC_URL.startswith("https://")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
if env_bool("TRUST_X_FORWARDED_PROTO", False):  # behind a proxy that terminates TLS
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp) on every HTML page: console, login, admin. Swagger UI
# starts itself with an inline script: it is left out.
if env_bool("CSP", True):
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "thinger_http.security.PageContentSecurityPolicy",
    )
_CSP = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # the templates' style="" attributes
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
if env_str("CSP_REPORT_URI"):
    _CSP["DIRECTIVES"]["report-uri"] = [env_str("CSP_REPORT_URI")]
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

# No credential in any log line (thinger_http.log): web and runserver through LOGGING, Celery's
# own handlers through its logging signals (connected in thinger_http/celery.py).
LOGGING["filters"] = {"mask_secrets": {"()": "thinger_http.log.MaskSecrets"}}
LOGGING["handlers"]["console"]["filters"] = ["mask_secrets"]
LOGGING["formatters"]["django.server"] = {
    "()": "django.utils.log.ServerFormatter",
    "format": "[{server_time}] {message}",
    "style": "{",
}
LOGGING["handlers"]["django.server"] = {
    "class": "logging.StreamHandler",
    "formatter": "django.server",
    "filters": ["mask_secrets"],
}
LOGGING.setdefault("loggers", {})["django.server"] = {
    "handlers": ["django.server"],
    "level": "INFO",
    "propagate": False,
}
