"""Reads of endpoints, their call log and the ready templates, for the API and the console."""

from django.db.models import Prefetch, Q

from endpoints.kinds import endpoint_templates
from endpoints.models import Endpoint, EndpointAttempt, EndpointCall


def endpoints_of(*, username, name="", type="", identifier=""):
    """A user's endpoints by id. ``name`` matches the id or the name, ``identifier`` the id
    (both case-insensitive, any part); ``type`` is exact. Empty filters are ignored."""
    rows = Endpoint.objects.filter(owner__username=username)
    if name:
        rows = rows.filter(Q(identifier__icontains=name) | Q(name__icontains=name))
    if identifier:
        rows = rows.filter(identifier__icontains=identifier)
    if type:
        rows = rows.filter(type=type)
    return rows.order_by("identifier", "pk")


def endpoint_by_path(*, username, identifier):
    """The endpoint ``{endpoint}`` of user ``{user}``, or None."""
    return (
        Endpoint.objects.select_related("owner")
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


# The call log's filters: the statuses each one shows ("pending" includes a call being sent).
CALL_FILTERS = {
    "succeeded": (EndpointCall.Status.SUCCEEDED,),
    "failed": (EndpointCall.Status.FAILED,),
    "pending": (EndpointCall.Status.PENDING, EndpointCall.Status.SENDING),
}


def endpoint_calls(*, endpoint, status=""):
    """The endpoint's call log, newest first, each call with its device and its attempts
    (``call.attempt_log.all()``, newest first); ``status`` (a key of CALL_FILTERS) keeps some.
    Slice it: a page costs two queries, whatever the size of the log, on the (endpoint,
    created) index."""
    attempts = EndpointAttempt.objects.order_by("-started_at", "-id")
    calls = EndpointCall.objects.filter(endpoint=endpoint)
    if status:
        calls = calls.filter(status__in=CALL_FILTERS[status])
    return (
        calls.select_related("device")
        .prefetch_related(Prefetch("attempt_log", queryset=attempts))
        .order_by("-created", "-id")
    )


def endpoint_call(*, endpoint, call_id):
    """One call of the endpoint's log with its device and attempts, or None."""
    return endpoint_calls(endpoint=endpoint).filter(pk=call_id).first()


def endpoint_template(*, identifier):
    """One of the ready templates (``endpoints.kinds.TEMPLATES``) by its id, or None."""
    return next((t for t in endpoint_templates() if t["id"] == identifier), None)
