"""The framework's ceiling: a one-file Django app, outside the project, for ``bench/ingest.py``.

Only ``CommonMiddleware`` and one view that reads the body and answers an empty 200. It imports
nothing of the project. ``bench/ingest.py`` serves it with gunicorn, two sync workers:

    gunicorn --chdir bench bare_app --workers 2 --bind 127.0.0.1:PORT
"""

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-bare-app",  # noqa: S106 (a benchmark, never deployed)
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
)


@csrf_exempt
def ingest(request, user, device):
    request.body  # noqa: B018 (read it, as a callback does)
    return HttpResponse(b"", status=200)


urlpatterns = [path("v3/users/<str:user>/devices/<str:device>/callback/data", ingest)]

application = get_wsgi_application()
