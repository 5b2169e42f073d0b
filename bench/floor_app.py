"""The callback's floor: its one database call with no framework, for ``bench/ingest.py``.

A bare WSGI callable, outside the project, that does for each POST only what no implementation
of the callback can skip: read the body, parse its JSON and make the database call the project
makes (``thinger_callback``, the function the project's migrations install), then answer the
call's body. No Django, no token check, no validation: no callback can be faster than this on
the same database, so ``floor / bare`` bounds what ``fleet / bare`` can reach on the machine.
``bench/ingest.py`` serves it with the project's gunicorn configuration:

    gunicorn --chdir bench floor_app --config thinger_http/gunicorn.conf.py
"""

import json
import os
import re
from datetime import UTC, datetime

import psycopg

PATH = re.compile(r"/v3/users/([^/]+)/devices/([^/]+)/callback/data")
CALL = (
    "SELECT reason, body, call_id FROM thinger_callback("
    "%s, %s, %s::bigint, %s, %s::jsonb, %s, %s::jsonb, %s::jsonb, %s::bigint, "
    "%s::timestamptz, %s::bigint, %s::date, %s::inet, %s::integer, %s::integer)"
)
TIMEOUT_MINUTES = 15
_connection = None


def application(environ, start_response):
    global _connection
    if _connection is None:
        _connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    user, device = PATH.fullmatch(environ["PATH_INFO"]).groups()
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    payload = json.loads(body)
    value = json.dumps(payload)
    now = datetime.now(UTC)
    reason, answer, _ = _connection.execute(
        CALL,
        [
            user,
            device,
            None,
            True,
            value,
            value,
            None,
            f"[{value}]",
            None,
            now,
            int(now.timestamp() * 1000),
            now.date(),
            environ["REMOTE_ADDR"],
            len(body),
            TIMEOUT_MINUTES,
        ],
    ).fetchone()
    if reason is not None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    out = (answer or "").encode()
    headers = [("Content-Length", str(len(out)))]
    if answer is not None:
        headers.append(("Content-Type", "application/json"))
    start_response("200 OK", headers)
    return [out]
