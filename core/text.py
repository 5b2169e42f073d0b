"""Text no database stores: a NUL character or a lone surrogate (PostgreSQL refuses both, in text
and in JSON; SQLite cannot encode a surrogate). One rule, refused alike on every way in: the
device callback, the API's bodies and query strings, the console's forms and searches."""

import re

from django.core.exceptions import ValidationError

UNSTORABLE_MESSAGE = "text with a NUL character (\\u0000) or a lone surrogate cannot be stored"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable_text(data):
    """Whether ``data`` (text, or JSON-like lists and dicts of it, keys included) holds any."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return False


def query_has_unstorable_text(query):
    """Whether a ``QueryDict`` (a query string, a form) holds any, in a key or a value."""
    return any(has_unstorable_text([key, *values]) for key, values in query.lists())


def validate_storable(value):
    """The rule as a Django validator (forms, models): a form error rather than a 500."""
    if has_unstorable_text(value):
        raise ValidationError(UNSTORABLE_MESSAGE, code="unstorable")
