"""One class per kind of endpoint: its type and name (the model's choices are made of them), what
the console says it does, how its configuration is checked and how a call is made.

Every kind but e-mail is an HTTP request underneath and goes through the one sender in
``endpoints.net`` (timeouts, signature, SSRF guard). ``config_errors`` is what the API and the
console use to answer 400s and form errors; ``endpoint_templates`` feeds the template list.
"""

import base64
import copy
import json
import re
import smtplib
import time
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.utils.html import strip_tags

from endpoints.net import Outcome, OutgoingRequest, http_send, timeouts, url_refusal
from endpoints.placeholders import Values, render, to_json

REQUIRED = "This field is required."
CALL_ID_HEADER = "X-Endpoint-Call"  # the same on every attempt: a delivery id for receivers
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "x-signature",
    CALL_ID_HEADER.lower(),
}
_BODYLESS = ("GET",)


def _text(config, name, errors, *, required=False):
    """A string field of ``config``; records an error when it is missing or not text."""
    value = config.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.setdefault(name, []).append("Must be text.")
        return ""
    if required and not value.strip():
        errors.setdefault(name, []).append(REQUIRED)
    return value


def _check_url(config, name, errors):
    url = _text(config, name, errors, required=True)
    if not url or name in errors:
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        errors.setdefault(name, []).append("Enter a valid URL.")
        return
    if parts.scheme not in ("http", "https"):
        errors.setdefault(name, []).append("Enter an http:// or https:// URL.")
    elif not parts.hostname:
        errors.setdefault(name, []).append("Enter a URL with a host name.")
    elif "{" in parts.netloc or "}" in parts.netloc:
        errors.setdefault(name, []).append("Placeholders cannot be used in the host name.")


def _content_type(headers):
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value
    return None


def _is_json_type(content_type):
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class Kind:
    type = ""  # the value stored and on the wire
    label = ""  # its name in the console and the admin
    description = ""  # what the console says it does
    secret_fields = ()  # settings that are credentials: shown to the endpoint's owner only

    def target_url(self, config):
        """The URL of ``config`` that the call connects to, when its user chose it."""
        return None

    def redacted(self, config):
        """``config`` without its credentials (None in their place)."""
        return {
            name: None if name in self.secret_fields else value for name, value in config.items()
        }

    def errors(self, config):
        """Field errors of ``config`` as ``{field: [message, ...]}``; empty when valid."""
        raise NotImplementedError

    def deliver(self, endpoint, values, *, call_id=None):
        """Make the call; returns an Outcome and never raises for delivery failures."""
        raise NotImplementedError


class HttpKind(Kind):
    """A kind that is an HTTP request: subclasses only say which request."""

    def request(self, config, values):
        raise NotImplementedError

    def deliver(self, endpoint, values, *, call_id=None):
        request = self.request(endpoint.config, values)
        if call_id is not None:
            request.headers[CALL_ID_HEADER] = str(call_id)
        return http_send(request, secret=endpoint.secret)


class HttpRequestKind(HttpKind):
    type = "http_request"
    label = "HTTP request"
    description = "Send the call's JSON, or a body of your own, to any HTTP URL."

    def target_url(self, config):
        return config.get("url") if isinstance(config.get("url"), str) else None

    def redacted(self, config):
        # Headers carry API keys and Authorization: their names stay, their values go.
        config = super().redacted(config)
        if isinstance(config.get("headers"), list):
            config["headers"] = [
                {**header, "value": None} if isinstance(header, dict) else None
                for header in config["headers"]
            ]
        return config

    def errors(self, config):
        errors = {}
        _check_url(config, "url", errors)
        method = _text(config, "method", errors) or "POST"
        if method.upper() not in METHODS:
            errors.setdefault("method", []).append(f"Use one of {', '.join(METHODS)}.")
        headers = config.get("headers") or []
        if not isinstance(headers, list):
            errors.setdefault("headers", []).append("Must be a list of {key, value}.")
            headers = []
        for index, header in enumerate(headers):
            if not isinstance(header, dict):
                errors.setdefault("headers", []).append(
                    f"Header {index + 1}: must be {{key, value}}."
                )
                continue
            key, value = header.get("key"), header.get("value") or ""
            if not isinstance(key, str) or not _HEADER_NAME.match(key):
                errors.setdefault("headers", []).append(
                    f"Header {index + 1}: {key!r} is not a valid header name."
                )
            elif key.lower() in _RESERVED_HEADERS:
                errors.setdefault("headers", []).append(
                    f"Header {index + 1}: {key} is set by the server."
                )
            if not isinstance(value, str) or re.search(r"[\r\n\x00]", value):
                errors.setdefault("headers", []).append(
                    f"Header {index + 1}: the value must be text on one line."
                )
        body_type = _text(config, "body_type", errors) or "json"
        if body_type not in ("json", "custom"):
            errors.setdefault("body_type", []).append("Use json or custom.")
        body = _text(config, "body", errors)
        if body.strip() and body_type == "json":
            try:
                json.loads(render(body, Values(), "json"))
            except ValueError:
                errors.setdefault("body", []).append(
                    "Not valid JSON (placeholders such as {{temperature}} may stand for values)."
                )
        return errors

    def request(self, config, values):
        method = (config.get("method") or "POST").upper()
        headers = {
            h["key"]: render(h.get("value") or "", values, "header")
            for h in config.get("headers") or []
        }
        content_type = _content_type(headers)
        template = config.get("body") or ""
        if config.get("body_type") == "custom":
            body = render(template, values, "json" if _is_json_type(content_type) else "text")
            default_type = "text/plain; charset=utf-8"
        else:
            body = render(template, values, "json") if template.strip() else to_json(values.payload)
            default_type = "application/json"
        if method in _BODYLESS:
            body = ""
        elif content_type is None:
            headers["Content-Type"] = default_type
        return OutgoingRequest(
            method=method,
            url=render(config["url"], values, "url"),
            headers=headers,
            body=body.encode(),
        )


class HttpDeviceKind(HttpKind):
    """Another account's HTTP device: its callback URL and token, the payload as the body."""

    type = "http_device"
    label = "Another account's HTTP device"
    description = "Post the call's JSON to an HTTP device of another account (or server)."
    secret_fields = ("token",)

    def target_url(self, config):
        return config.get("url") if isinstance(config.get("url"), str) else None

    def errors(self, config):
        errors = {}
        _check_url(config, "url", errors)
        token = _text(config, "token", errors, required=True)
        if re.search(r"[\r\n\x00]", token):
            errors.setdefault("token", []).append("The token must be text on one line.")
        return errors

    def request(self, config, values):
        return OutgoingRequest(
            method="POST",
            url=config["url"],
            headers={
                "Authorization": f"Bearer {config['token'].strip()}",
                "Content-Type": "application/json",
            },
            body=to_json(values.payload).encode(),
        )


class IftttKind(HttpKind):
    """IFTTT Maker webhooks: an event with up to three values."""

    type = "ifttt"
    label = "IFTTT Maker"
    description = "Trigger an IFTTT Maker (webhooks) event with up to three values."
    secret_fields = ("key",)
    url = "https://maker.ifttt.com/trigger/{event}/with/key/{key}"

    def errors(self, config):
        errors = {}
        _text(config, "event", errors, required=True)
        _text(config, "key", errors, required=True)
        for name in ("value1", "value2", "value3"):
            _text(config, name, errors)
        return errors

    def request(self, config, values):
        data = {
            name: render(config.get(name) or "", values, "text")
            for name in ("value1", "value2", "value3")
        }
        url = self.url.format(
            event=quote(config["event"].strip(), safe=""), key=quote(config["key"].strip(), safe="")
        )
        return OutgoingRequest(
            method="POST",
            url=url,
            headers={"Content-Type": "application/json"},
            body=to_json(data).encode(),
        )


class TelegramKind(HttpKind):
    """A Telegram bot's sendMessage to one chat."""

    type = "telegram"
    label = "Telegram message"
    description = "Send a message from a Telegram bot to a chat."
    secret_fields = ("bot_token",)
    url = "https://api.telegram.org/bot{token}/sendMessage"

    def errors(self, config):
        errors = {}
        token = _text(config, "bot_token", errors, required=True)
        if token.strip() and not re.match(r"^\d+:[A-Za-z0-9_-]+$", token.strip()):
            errors.setdefault("bot_token", []).append("Enter a bot token such as 123456:ABC-def.")
        _text(config, "chat_id", errors, required=True)
        _text(config, "text", errors, required=True)
        return errors

    def request(self, config, values):
        body = {
            "chat_id": config["chat_id"].strip(),
            "text": render(config["text"], values, "text"),
        }
        return OutgoingRequest(
            method="POST",
            url=self.url.format(token=quote(config["bot_token"].strip(), safe=":")),
            headers={"Content-Type": "application/json"},
            body=to_json(body).encode(),
        )


class SmsKind(HttpKind):
    """An SMS through Twilio's Messages API (or any provider with the same shape)."""

    type = "sms"
    label = "SMS (HTTP provider)"
    description = "Send an SMS through Twilio's Messages API (or a provider with its shape)."
    secret_fields = ("auth_token",)
    url = "https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json"

    def errors(self, config):
        errors = {}
        sid = _text(config, "account_sid", errors, required=True)
        if sid.strip() and not re.match(r"^[A-Za-z0-9]+$", sid.strip()):
            errors.setdefault("account_sid", []).append("Use letters and digits only.")
        _text(config, "auth_token", errors, required=True)
        _text(config, "from", errors, required=True)
        _text(config, "to", errors, required=True)
        _text(config, "body", errors, required=True)
        return errors

    def request(self, config, values):
        sid = config["account_sid"].strip()
        credentials = base64.b64encode(f"{sid}:{config['auth_token'].strip()}".encode()).decode()
        form = {
            "To": config["to"].strip(),
            "From": config["from"].strip(),
            "Body": render(config["body"], values, "text"),
        }
        return OutgoingRequest(
            method="POST",
            url=self.url.format(sid=sid),
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            body=urlencode(form).encode(),
        )


class EmailKind(Kind):
    """An e-mail through Django's mail settings (EMAIL_URL, or the console)."""

    type = "email"
    label = "E-mail"
    description = "Send an e-mail through the server's mail settings."

    def errors(self, config):
        errors = {}
        for name, required in (("recipient", True), ("reply_to", False)):
            value = _text(config, name, errors, required=required)
            for address in filter(None, (a.strip() for a in value.split(","))):
                try:
                    validate_email(address)
                except ValidationError:
                    errors.setdefault(name, []).append(f"{address!r} is not an e-mail address.")
        _text(config, "subject", errors)
        _text(config, "body", errors)
        if (_text(config, "body_type", errors) or "text") not in ("html", "text"):
            errors.setdefault("body_type", []).append("Use html or text.")
        return errors

    def message(self, config, values, connection=None):
        html = config.get("body_type") == "html"
        body = render(config.get("body") or "", values, "html" if html else "text")
        subject = render(config.get("subject") or "", values, "header")
        message = EmailMultiAlternatives(
            subject=subject,
            body=strip_tags(body) if html else body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=_addresses(config.get("recipient")),
            reply_to=_addresses(config.get("reply_to")),
            connection=connection,
        )
        if html:
            message.attach_alternative(body, "text/html")
        return message

    def deliver(self, endpoint, values, *, call_id=None):
        started = time.monotonic()
        connection = get_connection(timeout=sum(timeouts()))
        try:
            self.message(endpoint.config, values, connection).send()
        except (BadHeaderError, ValueError, smtplib.SMTPRecipientsRefused) as exc:
            outcome = Outcome.failure(f"e-mail refused: {exc}", permanent=True)
        except smtplib.SMTPResponseException as exc:
            message = f"e-mail refused: {exc.smtp_code} {_decode(exc.smtp_error)}"
            outcome = Outcome.failure(message, permanent=exc.smtp_code >= 500)
        except (smtplib.SMTPException, OSError) as exc:
            outcome = Outcome.failure(f"e-mail not sent: {exc}", permanent=False)
        else:
            outcome = Outcome(ok=True)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return outcome


def _addresses(value):
    return [a.strip() for a in (value or "").split(",") if a.strip()]


def _decode(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# In the order the console and the admin list them.
KINDS = {
    kind.type: kind
    for kind in (
        HttpRequestKind(),
        EmailKind(),
        IftttKind(),
        TelegramKind(),
        SmsKind(),
        HttpDeviceKind(),
    )
}


def kind_for(type_):
    return KINDS[type_]


def redacted_config(type_, config):
    """An endpoint's settings as someone other than its owner may see them."""
    if type_ not in KINDS or not isinstance(config, dict):
        return {}
    return KINDS[type_].redacted(config)


def refused_target(type_, config):
    """Why the address guard (``endpoints.net``) will refuse the calls of an endpoint so
    configured, said for a person, or None. Saving it is allowed all the same: the guard's
    setting and the name's addresses may change, and Thinger.io clients expect a 200."""
    if type_ not in KINDS or not isinstance(config, dict):
        return None
    url = KINDS[type_].target_url(config)
    refusal = url_refusal(url) if url else None
    if refusal is None:
        return None
    return (
        f"{refusal}, and this server's endpoints may not reach loopback, private or link-local "
        "addresses (ENDPOINTS_ALLOW_PRIVATE_NETWORKS is off)"
    )


def config_errors(type_, config):
    """Field errors of an endpoint configuration, ``{field: [message, ...]}``; empty when valid."""
    if type_ not in KINDS:
        return {"type": [f"Unknown endpoint type {type_!r}."]}
    if not isinstance(config, dict):
        return {"config": ["Must be an object."]}
    return KINDS[type_].errors(config)


TEMPLATES = (
    {
        "id": "http_request",
        "name": "HTTP request",
        "type": "http_request",
        "description": "Forward the call data as JSON to a URL. Placeholders such as "
        "{{temperature}} can be used in the URL and the headers.",
        "config": {"url": "", "method": "POST", "headers": [], "body_type": "json", "body": ""},
    },
    {
        "id": "http_request_custom",
        "name": "HTTP request with a custom body",
        "type": "http_request",
        "description": "Compose a new body from the call data with placeholders such as "
        "{{temperature}}.",
        "config": {
            "url": "",
            "method": "POST",
            "headers": [{"key": "Content-Type", "value": "application/json"}],
            "body_type": "custom",
            "body": '{"value": {{value}}}',
        },
    },
    {
        "id": "email",
        "name": "E-mail",
        "type": "email",
        "description": "Send an e-mail; placeholders can be used in the subject and the body.",
        "config": {"recipient": "", "reply_to": "", "subject": "", "body": "", "body_type": "text"},
    },
    {
        "id": "ifttt",
        "name": "IFTTT Maker",
        "type": "ifttt",
        "description": "Trigger an IFTTT Maker (webhooks) event with up to three values.",
        "config": {"event": "", "key": "", "value1": "", "value2": "", "value3": ""},
    },
    {
        "id": "telegram",
        "name": "Telegram message",
        "type": "telegram",
        "description": "Send a message from a Telegram bot to a chat.",
        "config": {"bot_token": "", "chat_id": "", "text": ""},
    },
    {
        "id": "sms",
        "name": "SMS (Twilio)",
        "type": "sms",
        "description": "Send an SMS through Twilio's Messages API.",
        "config": {"account_sid": "", "auth_token": "", "from": "", "to": "", "body": ""},
    },
    {
        "id": "http_device",
        "name": "Another account's HTTP device",
        "type": "http_device",
        "description": "Post the call data to an HTTP device's callback URL with its token.",
        "config": {"url": "", "token": ""},
    },
)


def endpoint_templates():
    """The ready-made endpoint configurations (``GET /v1/endpoints/templates``); a fresh copy."""
    return copy.deepcopy(list(TEMPLATES))
