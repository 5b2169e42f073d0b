"""Logging that never writes a credential.

Devices may put their token in the URL (``?authorization=``), and any URL, header or exception
message can end up in a log line. ``MaskSecrets`` rewrites each record before a handler writes
it: the values of ``authorization=``, ``*token=`` and ``password=`` parameters, ``Bearer``
credentials, anything shaped like a JWT and the token in a dashboard's shared link
(``/shared/dashboards/<token>/``) become ``***``. Gunicorn's access log, which Django's
handlers do not see, masks its lines through ``thinger_http.gunicorn_log``.
"""

import logging
import re

MASK = "***"
_SECRETS = [
    (re.compile(r"(?i)\b(authorization|[a-z_]*token|password)=[^&\s\"'#;,]+"), rf"\1={MASK}"),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), rf"\1 {MASK}"),
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), MASK),
    (re.compile(r"(/shared/dashboards/)[^/\s?#\"']+"), rf"\1{MASK}"),
]


def mask(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class MaskSecrets(logging.Filter):
    """A handler filter: the record's message (and traceback) with every secret masked."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def mask_handlers(logger, **kwargs):
    """Add the filter to a logger's handlers: for the loggers Celery sets up in its processes."""
    for handler in logger.handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets())


def connect_celery():
    from celery import signals

    signals.after_setup_logger.connect(mask_handlers, weak=False)
    signals.after_setup_task_logger.connect(mask_handlers, weak=False)
