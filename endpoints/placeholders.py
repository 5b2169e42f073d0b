"""Placeholders in endpoint configurations: ``{{key}}``, ``{{}}``, ``{{device}}``, ``{{user}}``,
``{{ts}}``.

One function, :func:`render`, decides how a value is written, given where it goes:

- ``json``: a JSON document. Outside a string literal a placeholder becomes the JSON value itself
  (``{"t": {{temp}}}`` -> ``{"t": 21.5}``; a body that is exactly ``{{}}`` is the payload);
  inside a string literal it becomes escaped string content (``"{{name}}"`` -> ``"a \\"b\\""``).
  The result stays valid JSON whatever the payload holds.
- ``url``: percent-encoded, so a value can never add a path segment, a query parameter or a host.
- ``header``: plain text on one line: control characters, CR and LF included, become spaces
  (no header injection, whether from a value or from the template).
- ``text``: plain text, as is (e-mail text bodies, message texts, form fields).
- ``html``: HTML-escaped text (HTML e-mail bodies).

Values: ``{{key}}`` is a top-level field of the payload (no dotted paths); ``{{}}`` is the whole
payload as JSON; ``{{device}}``, ``{{user}}`` and ``{{ts}}`` are the calling device's ID, the
endpoint owner's username and the call's time in milliseconds; these three names win over payload
fields of the same name. In text positions a string is written as is and anything else
(numbers, booleans, null, objects, arrays) as compact JSON.

A missing key (or ``{{device}}`` for a call without a device) renders as empty text, so a
template can name optional fields; in a JSON value position it renders as ``null``, the empty
JSON value, so that the document stays valid.
"""

import html
import json
import re
from dataclasses import dataclass
from urllib.parse import quote

CONTEXTS = ("json", "url", "header", "text", "html")

# A placeholder, an escaped character, or a double quote: enough to know, while scanning a JSON
# template, whether a placeholder sits inside a string literal.
_TOKENS = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}|\\.|\"", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MISSING = object()


@dataclass(frozen=True)
class Values:
    """What placeholders can name for one call."""

    payload: object = None
    device: str | None = None
    user: str | None = None
    ts: int | None = None

    def lookup(self, key):
        if key == "":
            return self.payload
        if key in ("device", "user", "ts"):
            value = getattr(self, key)
            return _MISSING if value is None else value
        if isinstance(self.payload, dict) and key in self.payload:
            return self.payload[key]
        return _MISSING


def to_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _as_text(value):
    if value is _MISSING:
        return ""
    return value if isinstance(value, str) else to_json(value)


def render(template, values, context):
    """Fill the placeholders of ``template`` with ``values`` for the given context (see above)."""
    if context not in CONTEXTS:
        raise ValueError(f"unknown placeholder context {context!r}")
    if not template:
        return template or ""
    if context == "json":
        return _render_json(template, values)

    def place(match):
        text = _as_text(values.lookup(match.group(1)))
        if context == "url":
            return quote(text, safe="")
        if context == "html":
            return html.escape(text)
        return text

    rendered = _PLACEHOLDER.sub(place, template)
    return _CONTROL.sub(" ", rendered) if context == "header" else rendered


def _render_json(template, values):
    out, position, in_string = [], 0, False
    for match in _TOKENS.finditer(template):
        out.append(template[position : match.start()])
        position = match.end()
        text = match.group(0)
        if text == '"':
            in_string = not in_string
            out.append(text)
        elif text.startswith("\\"):
            out.append(text)
        else:
            value = values.lookup(match.group(1))
            if in_string:
                out.append(json.dumps(_as_text(value), ensure_ascii=False)[1:-1])
            else:
                out.append("null" if value is _MISSING else to_json(value))
    out.append(template[position:])
    return "".join(out)
