"""The server's public catalogue, read by Thinger.io's clients before they touch a user's assets:
``GET /v1/server/assets`` (the asset kinds and the route listing each) and
``GET /v1/server/events`` (the live events and what a subscription may filter on).

Public: no credentials are needed and bad ones are ignored (some clients send
``Authorization: Bearer undefined``); nothing here is a user's data.
"""

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from core import events
from core.api import ApiView, ok
from core.events import PERMISSION
from core.identifiers import IDENTIFIER_PATTERN
from core.responses import json_error

# Asset kind -> (category, the URL name of its list route). ``category`` groups the kinds as the
# console's sections do.
ASSETS = {
    "device": ("devices", "api-devices"),
    "bucket": ("data", "api-buckets"),
    "endpoint": ("endpoints", "api-endpoints"),
    "dashboard": ("dashboards", "api-dashboards"),
    "token": ("security", "api-tokens"),
}
_USER = "__user__"


def asset_catalogue():
    """Each asset kind with its list route, the user written as the named group ``(?<user>...)``
    that clients replace with their user name before paging the list with count/index."""
    out = []
    for asset, (category, url_name) in ASSETS.items():
        path = reverse(url_name, kwargs={"user": _USER}).lstrip("/")
        out.append(
            {
                "asset": asset,
                "category": category,
                "paths": {"list": path.replace(_USER, f"(?<user>{IDENTIFIER_PATTERN})")},
                "role": "user",
            }
        )
    return out


class _PublicView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]


_ASSET = inline_serializer(
    "ServerAsset",
    {
        "asset": serializers.CharField(),
        "category": serializers.CharField(),
        "paths": inline_serializer(
            "ServerAssetPaths",
            {"list": serializers.CharField(help_text="the list route; (?<user>...) is the user")},
        ),
        "role": serializers.CharField(help_text='"user": every user has them'),
    },
    many=True,
)
_EVENT = inline_serializer(
    "ServerEvent",
    {
        "event": serializers.CharField(),
        "asset": serializers.CharField(),
        "description": serializers.CharField(),
        "filters": inline_serializer(
            "ServerEventFilter",
            {
                "field": serializers.CharField(),
                "hints": serializers.ListField(child=serializers.CharField(), required=False),
            },
            many=True,
        ),
    },
    many=True,
)


class ServerAssetsView(_PublicView):
    @extend_schema(
        auth=[],
        responses={200: _ASSET},
        operation_id="Server_ListAssets",
        description="The kinds of asset and the route listing each. Public.",
    )
    def get(self, request):
        return ok(asset_catalogue())


class ServerEventsView(_PublicView):
    @extend_schema(
        auth=[],
        responses={200: _EVENT},
        operation_id="Server_ListEvents",
        description="The live events, named with their asset kind first, and the fields a "
        "subscription may filter on (with the values they take, when few). Public.",
    )
    def get(self, request):
        return ok(events.catalogue())


@extend_schema(exclude=True)  # a WebSocket: OpenAPI has no words for it (see the README)
class EventsWithoutUpgradeView(ApiView):
    # GET /v1/users/{user}/events without ``Upgrade: websocket``: credentials are checked as for
    # the socket (thinger_http.events_socket), then 426 says how to open it.
    actions = {"GET": PERMISSION}

    def get(self, request, user):
        return json_error(
            426,
            "the events are a WebSocket: connect with Upgrade: websocket",
            {"Upgrade": "websocket"},
        )
