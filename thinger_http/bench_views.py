"""A bare view for ``bench/ingest.py``: an empty 200 through the same server, middleware and URL
resolver as the callback, the ceiling the callback's throughput is compared with.

Mounted only when the setting ``BENCH_BARE_VIEW`` is on (environment ``BENCH_BARE_VIEW=1``).
"""

from django.views.decorators.csrf import csrf_exempt

from thinger_http.responses import empty_ok


@csrf_exempt
def bare(request):
    # The callback's own empty answer: no Content-Type, so no page-only work (the CSP header).
    return empty_ok()
