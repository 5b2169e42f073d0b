from django.core.exceptions import BadRequest
from django.db import connection
from django.http import JsonResponse
from django.views import defaults

from core.responses import is_api_path, json_error


def healthz(request):
    """Liveness and database reachability, for load balancers and the run command."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def bad_request(request, exception):
    """A request refused before any view (a malformed Host header, say): JSON on API paths."""
    if is_api_path(request.path):
        message = str(exception) if isinstance(exception, BadRequest) else ""
        return json_error(400, message or "bad request")
    return defaults.bad_request(request, exception)


def not_found(request, exception):
    if is_api_path(request.path):
        return json_error(404, f"{request.path} not found")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_path(request.path):
        return json_error(500, "internal server error")
    return defaults.server_error(request)
