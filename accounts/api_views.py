"""``POST /oauth/token`` and the long-lived access tokens of ``/v1/users/{user}/tokens``."""

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as ModelValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny

from accounts.auth import access_token_value, oauth_refresh, oauth_tokens_for
from accounts.models import AccessToken
from accounts.selectors import access_tokens_of
from accounts.services import access_token_create, access_token_revoke, access_token_update
from core.api import PAGE_PARAMETERS, ApiView, model_error, ok, page
from core.api_fields import ClosedSerializer
from core.times import to_ms

_OAUTH_RESPONSE = inline_serializer(
    "OAuthToken",
    {
        "access_token": serializers.CharField(),
        "expires_in": serializers.IntegerField(),
        "refresh_token": serializers.CharField(),
        "token_type": serializers.CharField(),
    },
)


_WIRE_NAMES = {"identifier": "token", "__all__": "token"}


class OAuthTokenView(ApiView):
    """Password and refresh-token grants, form-encoded as Thinger.io clients send them."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'  # so that bad credentials are a 401, as clients expect

    class Input(serializers.Serializer):
        grant_type = serializers.ChoiceField(choices=["password", "refresh_token"])
        username = serializers.CharField(required=False, max_length=150)
        password = serializers.CharField(required=False, max_length=256, trim_whitespace=False)
        refresh_token = serializers.CharField(required=False, max_length=4096)

    @extend_schema(
        request=Input,
        responses={200: _OAUTH_RESPONSE},
        auth=[],
        operation_id="Authentication_AuthenticateToken",
    )
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        grant = data.validated_data
        if grant["grant_type"] == "password":
            if not grant.get("username") or not grant.get("password"):
                raise exceptions.ValidationError({"username": "username and password are required"})
            user = authenticate(request, username=grant["username"], password=grant["password"])
            if user is None or not user.is_active:
                raise exceptions.AuthenticationFailed("invalid credentials")
            return ok(oauth_tokens_for(user))
        if not grant.get("refresh_token"):
            raise exceptions.ValidationError({"refresh_token": "this field is required"})
        tokens = oauth_refresh(grant["refresh_token"])
        if tokens is None:
            raise exceptions.AuthenticationFailed("invalid, spent or revoked refresh token")
        return ok(tokens)


class TokenSerializer(ClosedSerializer):
    token = serializers.RegexField(r"^[a-zA-Z0-9_]{1,50}$", max_length=50)
    name = serializers.CharField(max_length=255, allow_blank=True)
    description = serializers.CharField(max_length=255, allow_blank=True, required=False)
    enabled = serializers.BooleanField()
    allow = serializers.JSONField(required=False)
    deny = serializers.JSONField(required=False)
    expire = serializers.IntegerField(required=False, allow_null=True, min_value=0)

    def validate(self, attrs):
        for name in ("allow", "deny"):
            if name in attrs and not isinstance(attrs[name], dict):
                raise serializers.ValidationError({name: "must be an object"})
        return attrs


class TokenOut(serializers.Serializer):
    token = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    allow = serializers.JSONField()
    deny = serializers.JSONField()
    expire = serializers.IntegerField(allow_null=True)
    created = serializers.IntegerField()
    modified = serializers.IntegerField()
    last_used = serializers.IntegerField(
        allow_null=True, help_text="When it last authenticated a request (ms, to the minute)."
    )
    access_token = serializers.CharField(required=False)


def _token_out(token, with_value=False):
    out = {
        "token": token.identifier,
        "name": token.name,
        "description": token.description,
        "enabled": token.enabled,
        "allow": token.allow,
        "deny": token.deny,
        "expire": token.expire,
        "created": to_ms(token.created),
        "modified": to_ms(token.modified),
        "last_used": to_ms(token.last_used),
    }
    if with_value:
        out["access_token"] = access_token_value(token)
    return out


class TokenListView(ApiView):
    actions = {"GET": ("Token", "ListTokens"), "POST": ("Token", "CreateToken")}

    @extend_schema(
        parameters=PAGE_PARAMETERS, responses={200: TokenOut(many=True)}, operation_id="Token_List"
    )
    def get(self, request, user):
        owner = self.path_owner()
        rows = access_tokens_of(owner=owner)
        return ok([_token_out(t) for t in page(request, rows)])

    @extend_schema(request=TokenSerializer, responses={200: TokenOut}, operation_id="Token_Create")
    def post(self, request, user):
        owner = self.path_owner()
        data = TokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        try:
            token = access_token_create(
                owner=owner,
                identifier=fields.pop("token"),
                allow=fields.pop("allow", {"*": {"*": "*"}}),
                **fields,
            )
        except ModelValidationError as exc:
            raise model_error(exc, _WIRE_NAMES) from None
        return ok(_token_out(token, with_value=True))


class TokenDetailView(ApiView):
    actions = {
        "GET": ("Token", "ReadTokenConfig"),
        "PUT": ("Token", "UpdateToken"),
        "DELETE": ("Token", "DeleteToken"),
    }
    resource_kwarg = "token"

    def _token(self):
        return get_object_or_404(
            AccessToken.objects.select_related("owner"),
            owner__username=self.kwargs["user"],
            identifier=self.kwargs["token"],
        )

    @extend_schema(responses={200: TokenOut}, operation_id="Token_ReadConfig")
    def get(self, request, user, token):
        # The token's value is shown once, when it is created: never again, to anyone.
        return ok(_token_out(self._token()))

    @extend_schema(request=TokenSerializer, responses={200: TokenOut}, operation_id="Token_Update")
    def put(self, request, user, token):
        found = self._token()
        data = TokenSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields.pop("token", None)
        try:
            access_token_update(token=found, **fields)
        except ModelValidationError as exc:
            raise model_error(exc, _WIRE_NAMES) from None
        return ok(_token_out(found))

    @extend_schema(responses={200: None}, operation_id="Token_Delete")
    def delete(self, request, user, token):
        access_token_revoke(token=self._token())
        return ok()
