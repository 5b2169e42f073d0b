"""Content-Security-Policy for the pages a browser renders."""

from csp.middleware import CSPMiddleware


class PageContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware, for HTML only.

    A policy governs documents; the REST API's JSON, downloads and the device callback's empty
    answers skip building one, which would otherwise cost every device call as much as a query.
    """

    def process_response(self, request, response):
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)
