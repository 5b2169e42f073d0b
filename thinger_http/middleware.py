"""The project's middleware: query strings refused when they hold text no database stores, a row
deleted by a concurrent request as the 404 page, and Django's messages middleware, lazily (a
request that shows or adds no message, as every API call and device callback, builds no message
storage)."""

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.core.exceptions import BadRequest, ObjectDoesNotExist
from django.http import Http404
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
