from endpoints.models import EndpointCall


def endpoint_call_record(*, endpoint, device, payload, ts):
    """Record a call to make. Call inside the transaction that stores the triggering data."""
    return EndpointCall.objects.create(endpoint=endpoint, device=device, payload=payload, ts=ts)
