"""Shared pieces of the REST API: errors, permissions, throttling, small helpers and the base of
the views of an asset (create, read, update, delete).

Every success is exactly 200 (SPEC section 9); an empty success has no body and no Content-Type;
every error is ``{"error": {"message": ...}}``.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as ModelValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from core.responses import empty_ok


class ApiView(APIView):
    # Base of every API view (a comment, not a docstring: drf-spectacular would publish it).
    # ``actions`` maps an HTTP method to (resource type, Thinger.io action name), which scoped
    # access tokens are checked against; ``resource_kwarg`` names the path parameter with the id.

    actions: dict = {}
    resource_kwarg = None

    def permission_scope(self, request):
        return self.actions.get(request.method, ("*", request.method))

    def path_owner(self):
        """The user named by ``{user}``; 404 when there is none."""
        return get_object_or_404(get_user_model(), username=self.kwargs["user"])

    def shows_secrets(self):
        """Whether the answer may carry the secrets of ``{user}``'s assets (tokens, signing
        keys, credentials in endpoint settings): only to that user. Staff reading another
        user's assets get them redacted, as the admin shows them."""
        return secrets_visible_to(self.request.user, self.kwargs.get("user"))


def secrets_visible_to(user, owner_username):
    """The one rule for showing an asset's secrets: to its owner only, staff included."""
    return bool(user and user.is_authenticated and user.get_username() == owner_username)


def ok(data=None):
    """200 with a JSON body, or an empty 200 when there is nothing to say."""
    if data is None:
        return empty_ok()
    return Response(data, status=200)


# No page or offset is larger: bigger values are clamped rather than overflowing the database's
# integers (found by schemathesis: ?index=7386433944042924576814076526592 was a 500 on SQLite).
INT_PARAM_MAX = 2**53


def int_param(request, name, default=None, minimum=None, maximum=None):
    """An integer query parameter; empty or absent gives the default (clients send ``x=``)."""
    raw = request.query_params.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: "must be an integer"}) from None
    if minimum is not None and value < minimum:
        raise exceptions.ValidationError({name: f"must be at least {minimum}"})
    return min(value, INT_PARAM_MAX if maximum is None else maximum)


def validated(serializer_class, data, **kwargs):
    """The serializer's validated data, or a 400 naming the first bad field."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def model_error(exc, names=None, prefix=""):
    """A service's ValidationError as a 400 naming the wire field; ``names`` maps model field
    names (``__all__`` included) to wire names, e.g. ``identifier`` to ``device``."""
    names = names or {}
    if hasattr(exc, "message_dict"):
        field, messages = next(iter(exc.message_dict.items()))
        return exceptions.ValidationError({f"{prefix}{names.get(field, field)}": messages[0]})
    return exceptions.ValidationError(exc.messages[0])


def without_id(data, asset, identifier):
    """An update's data without the asset's id, which may repeat the path's but not change it."""
    data = dict(data)
    if data.pop(asset, identifier) != identifier:
        article = "an" if asset[0] in "aeiou" else "a"
        raise exceptions.ValidationError({asset: f"{article} {asset}'s id cannot be changed"})
    return data


class AssetView(ApiView):
    # A view of one kind of asset (device, bucket, endpoint), declared in the style of NetBox's
    # generic views: a subclass names its pieces and the bases below answer create, read, update
    # and delete the same way for every kind. ``asset`` is the wire name: the path parameter with
    # the id, and the id field of request and response bodies. The pieces a subclass gives, as
    # its methods need them: ``find(username=, identifier=)``, the path selector (None when there
    # is no such asset); ``out(obj)``, the answer's body; ``create_input`` and
    # ``create(owner, identifier, data)`` for POST; ``update_input`` and ``update(obj, data)`` for
    # PUT; ``remove(obj)`` for DELETE. ``data`` is the validated input without the id.

    asset = None
    create_input = None
    update_input = None

    def found(self):
        """The asset the path names; 404 when ``{user}`` has none by that id."""
        identifier = self.kwargs[self.asset]
        obj = self.find(username=self.kwargs["user"], identifier=identifier)
        if obj is None:
            raise Http404(f"{self.asset} {identifier!r} not found")
        return obj

    def model_error(self, exc):
        """A service's ValidationError as a 400; the model's id field is the asset's wire name."""
        return model_error(exc, {"identifier": self.asset, "__all__": self.asset})


class AssetListView(AssetView):
    # POST .../{assets}: create one. The list (GET) is each view's own: filters differ.

    def post(self, request, *args, **kwargs):
        owner = self.path_owner()
        data = dict(validated(self.create_input, request.data))
        identifier = data.pop(self.asset)
        try:
            created = self.create(owner, identifier, data)
        except ModelValidationError as exc:
            raise self.model_error(exc) from None
        return ok(self.out(created))


class AssetDetailView(AssetView):
    # GET, PUT (a partial update; the id cannot change) and DELETE .../{assets}/{id}.

    def get(self, request, *args, **kwargs):
        return ok(self.out(self.found()))

    def put(self, request, *args, **kwargs):
        obj = self.found()
        data = validated(self.update_input, request.data, partial=True)
        data = without_id(data, self.asset, obj.identifier)
        try:
            self.update(obj, data)
        except ModelValidationError as exc:
            raise self.model_error(exc) from None
        return ok(self.out(obj))

    def delete(self, request, *args, **kwargs):
        self.remove(self.found())
        return ok()


def page(request, rows, *, default=None, maximum=None):
    """``index`` (the first item, from 0) and ``count`` (items) of a list; clients ask for pages
    until one is short. Without ``count`` the rest of the list, or ``default`` items."""
    index = int_param(request, "index", 0, minimum=0)
    count = int_param(request, "count", default, minimum=1)
    if count is not None and maximum is not None and count > maximum:
        raise exceptions.ValidationError({"count": f"must be at most {maximum}"})
    return rows[index : index + count] if count else rows[index:]


PAGE_PARAMETERS = [
    OpenApiParameter("index", int, description="position of the first item, from 0"),
    OpenApiParameter("count", int, description="items a page; a shorter page is the last"),
]
