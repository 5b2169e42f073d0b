"""What the site's WebSockets share (the live events' ``thinger_http.events_socket``, a
dashboard's ``dashboards.live``): the console's session as a credential, and a refusal answered
as the API answers."""

import json
from urllib.parse import urlsplit

from channels.auth import get_user


async def console_session_user(scope):
    """The console's logged-in, active user of a WebSocket's handshake, for pages of this site
    only, else None: the browser sends the session cookie to any site's WebSocket, so the
    Origin must be this host (as CSRF protection requires of the console's forms)."""
    headers = dict(scope.get("headers", []))
    origin = urlsplit(headers.get(b"origin", b"").decode("latin-1")).netloc
    if not origin or origin != headers.get(b"host", b"").decode("latin-1"):
        return None
    user = await get_user(scope)
    return user if user.is_authenticated and user.is_active else None


async def refuse_handshake(consumer, status, message):
    """Answer ``consumer``'s handshake with ``status`` and the API's error body, where the
    server can (uvicorn can); else a plain refusal (403)."""
    if "websocket.http.response" not in consumer.scope.get("extensions", {}):
        return await consumer.close()
    body = json.dumps({"error": {"message": message}}).encode()
    await consumer.base_send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await consumer.base_send({"type": "websocket.http.response.body", "body": body})
