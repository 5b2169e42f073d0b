"""What the console's forms share: JSON typed into a text box.

One parser for every box that takes a JSON value (a property's value, an endpoint's test
payload), so each says what is wrong in the same words, with the line and column: text that is
not JSON, NaN or Infinity (Python reads them, JSON has no such numbers), a number too large to
store, text no database stores.
"""

import json
import math
import re
import sys

from django import forms

from core.text import validate_storable

_CONSTANTS = ("NaN", "Infinity", "-Infinity")


class _Refused(ValueError):
    """A token ``json`` reads but no JSON value may hold; ``why`` completes the sentence."""

    def __init__(self, token, why):
        super().__init__(token)
        self.token = token
        self.why = why


def _refuse_constant(name):
    raise _Refused(name, "not valid JSON")


def _parse_int(text):
    # Python refuses to convert integers longer than its limit (4,300 digits).
    if len(text) - text.startswith("-") > sys.get_int_max_str_digits() > 0:
        raise _Refused(text, "too large to store")
    return int(text)


def _parse_float(text):
    value = float(text)
    if math.isinf(value):  # 1e400
        raise _Refused(text, "too large to store")
    return value


def _where(text, position):
    line = text.count("\n", 0, position) + 1
    return f"line {line}, column {position - text.rfind(chr(10), 0, position)}"


def _position(text, token):
    """Where ``token`` first stands outside a string (the parser stops at the first one)."""
    pattern = r'"(?:[^"\\]|\\.)*"|(?<![\w.+-])(' + re.escape(token) + r")(?![\w.])"
    for match in re.finditer(pattern, text):
        if match.group(1):
            return match.start(1)
    return 0


def parse_json_text(text, *, hint=""):
    """The JSON value ``text`` holds, or a ValidationError that says what is wrong and where.

    ``hint`` follows the message of text that is not JSON (e.g. how to quote text).
    """
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except _Refused as exc:
        token = exc.token if len(exc.token) <= 24 else exc.token[:20] + "…"
        where = _where(text, _position(text, exc.token))
        if exc.token in _CONSTANTS:
            message = f"This is not valid JSON: {token} is not a JSON number ({where})."
        else:
            message = f"This JSON cannot be stored: the number {token} is too large ({where})."
        raise forms.ValidationError(message, code="invalid") from None
    except json.JSONDecodeError as exc:
        message = f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        raise forms.ValidationError(f"{message} {hint}".strip(), code="invalid") from None
    except RecursionError:
        raise forms.ValidationError(
            "This JSON cannot be stored: it is nested too deeply.", code="invalid"
        ) from None
    validate_storable(value)
    return value
