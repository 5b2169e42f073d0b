"""A bare view for ``bench/ingest.py``: an empty 200 through the same server, middleware and URL
resolver as the callback, the ceiling the callback's throughput is compared with.

Mounted only when the setting ``BENCH_BARE_VIEW`` is on (environment ``BENCH_BARE_VIEW=1``).
"""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    return HttpResponse(b"")
