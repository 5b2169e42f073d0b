"""The project's middleware: query strings refused when they hold text no database stores, a row
deleted by a concurrent request as the 404 page, Django's messages middleware, lazily (a
request that shows or adds no message, as every API call and device callback, builds no message
storage), and the console in the browser's time zone."""

from functools import lru_cache
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.core.exceptions import BadRequest, ObjectDoesNotExist
from django.http import Http404
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty

from core.responses import is_callback_path
from core.text import UNSTORABLE_MESSAGE, query_has_unstorable_text


class StorableQueryMiddleware:
    """400 for a query string with a NUL character (``?name=%00``), before any view filters or
    searches with it: the API answers its JSON error, the console its 400 page. The device
    callback checks its own parameters (``thinger_http.wsgi`` serves it without this)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            "%00" in request.META.get("QUERY_STRING", "")
            and not is_callback_path(request.path_info, request.method)
            and query_has_unstorable_text(request.GET)
        ):
            raise BadRequest(UNSTORABLE_MESSAGE)
        return self.get_response(request)


class LazyMessageMiddleware(MessageMiddleware):
    def process_request(self, request):
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request, response):
        storage = getattr(request, "_messages", None)
        if isinstance(storage, SimpleLazyObject) and storage._wrapped is empty:
            return response
        return super().process_response(request, response)


class DeletedMeanwhileMiddleware:
    """The 404 page when a page's object is deleted by a concurrent request between the view
    reading it and a service writing it (the service raises the model's DoesNotExist; the API's
    exception handler answers its JSON 404 for the same)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ObjectDoesNotExist):
            raise Http404(str(exception)) from exception
        return None


TIME_ZONE_COOKIE = "tz"


@lru_cache(maxsize=512)
def _zone(name):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class BrowserTimeZoneMiddleware:
    """The console in the browser's clock: ``static/js/console.js`` keeps the browser's time zone
    (its IANA name) in the ``tz`` cookie, and each request of the console runs in it: times on
    the pages, and the times people type (the ranges' From and To), are the browser's, named;
    without the cookie (the first page, no JavaScript) they are the server's ``TIME_ZONE``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = _zone(unquote(request.COOKIES.get(TIME_ZONE_COOKIE, ""))[:64])
        if zone is None:
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
