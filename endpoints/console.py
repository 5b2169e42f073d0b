"""Console pages for endpoints: list, create and edit per type, delete, a test call that shows
the target's answer, and the call log with its attempts."""

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.console import (
    ObjectDeleteView,
    ObjectEditView,
    add_service_errors,
    kept_form,
    owned_or_404,
    paginate,
    redirect_with_form,
)
from endpoints import services
from endpoints.forms import CONFIG_FORMS, EndpointForm, TestCallForm, config_forms
from endpoints.kinds import refused_target
from endpoints.models import Endpoint, EndpointCall
from endpoints.selectors import endpoint_call, endpoint_calls, endpoints_of

SECTION = "endpoints"
CALLS_PER_PAGE = 20
SECRET_FIELDS = {"key", "token", "bot_token", "auth_token"}


def _endpoint(request, identifier):
    return owned_or_404(Endpoint.objects.all(), request.user, identifier=identifier)


@login_required
def endpoint_list(request):
    latest = EndpointCall.objects.filter(endpoint=OuterRef("pk")).order_by("-created", "-id")
    endpoints = endpoints_of(username=request.user.username).annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_called=Subquery(latest.values("created")[:1]),
    )
    page = paginate(request, endpoints, 50)
    return render(request, "console/endpoints/list.html", {"section": SECTION, "page": page})


def _apply_errors(form, chosen, exc):
    """A service's errors: ``config.<field>`` on the chosen type's form, the rest on ``form``."""
    rest = {}
    for name, msgs in exc.message_dict.items():
        if name != "config" and not name.startswith("config."):
            rest[name] = msgs
            continue
        field = name.removeprefix("config").removeprefix(".")
        target = field if field in chosen.fields else None
        for message in msgs:
            chosen.add_error(target, message if target else f"{field or 'config'}: {message}")
    if rest:
        add_service_errors(form, ValidationError(rest), non_field_to="identifier")


class _EndpointPage:
    section = SECTION
    url_kwarg = "endpoint"

    def find(self, identifier):
        return _endpoint(self.request, identifier)


class EndpointEditView(_EndpointPage, ObjectEditView):
    """The endpoint's form and, beside it, one configuration form per type; the one of the type
    chosen is checked and saved with it."""

    template_name = "console/endpoints/form.html"
    context_object_name = "endpoint"
    form_class = EndpointForm
    created_message = "Endpoint {obj.identifier} created. Send it a test call below."
    saved_message = "Endpoint {obj.identifier} saved."
    return_url_name = "console-endpoint"

    def get_form(self, obj):
        data = self.request.POST or None
        if obj is None:
            chosen_type = self.request.POST.get("type") or self.request.GET.get("type")
            if chosen_type not in CONFIG_FORMS:
                chosen_type = Endpoint.Type.HTTP_REQUEST
            form = EndpointForm(data, initial={"type": chosen_type})
            self.configs = config_forms(data, chosen=chosen_type)
        else:
            chosen_type = self.request.POST.get("type") or obj.type
            form = super().get_form(obj)
            self.configs = config_forms(data, chosen=chosen_type, type=obj.type, config=obj.config)
        self.chosen_type = chosen_type
        self.chosen = next((c for c in self.configs if c.type == chosen_type), None)
        return form

    def initial(self, obj):
        return {
            "name": obj.name,
            "description": obj.description,
            "type": obj.type,
            "enabled": obj.enabled,
        }

    def is_valid(self, form):
        return form.is_valid() and self.chosen is not None and self.chosen.is_valid()

    def save(self, obj, form):
        config = self.chosen.config()
        if obj is None:
            return services.endpoint_create(
                owner=self.request.user, config=config, **form.cleaned_data
            )
        return services.endpoint_update(endpoint=obj, config=config, **form.cleaned_data)

    def warnings(self, obj):
        """Saved even so (the guard's setting and the name's addresses may change, and the API
        takes it): say at once that the address guard will refuse its calls."""
        refused = refused_target(obj.type, obj.config)
        return [f"Its calls will be refused: {refused}."] if refused else []

    def form_errors(self, form, exc):
        _apply_errors(form, self.chosen, exc)

    def extra_context(self, obj):
        return {
            "configs": self.configs,
            "chosen_type": self.chosen_type,
            "chosen_config": self.chosen,
        }


class EndpointDeleteView(_EndpointPage, ObjectDeleteView):
    deleted_message = "Endpoint {obj.identifier} deleted with its call log."
    return_url_name = "console-endpoint-list"

    def delete_object(self, obj):
        services.endpoint_delete(endpoint=obj)


def _config_rows(endpoint):
    """The configuration as label/value rows, secrets shown by their last characters only."""
    form_class = CONFIG_FORMS.get(endpoint.type)
    rows = []
    if form_class is None:
        return rows
    fields = form_class(prefix=endpoint.type).fields
    for name, field in fields.items():
        value = endpoint.config.get(name)
        if name == "headers":
            value = ", ".join(f"{h.get('key')}: {h.get('value')}" for h in value or [])
        if value in (None, ""):
            continue
        choices = dict(getattr(field, "choices", None) or [])
        if isinstance(value, str) and value in choices:
            value = choices[value]
        if name in SECRET_FIELDS and isinstance(value, str):
            value = f"••••{value[-4:]}" if len(value) > 8 else "••••"
        rows.append({"label": field.label, "value": value, "code": name in ("body", "headers")})
    return rows


def _test_result(endpoint, call_id):
    """The test call ``?test=`` names (a call of this endpoint from no device) as the page shows
    it: its outcome and its attempt; None when there is no such call."""
    try:
        call_id = int(call_id)
    except (TypeError, ValueError):
        return None
    call = endpoint_calls(endpoint=endpoint).filter(pk=call_id, device=None).first()
    attempts = list(call.attempt_log.all()) if call else []
    if not attempts:
        return None
    attempt = attempts[0]
    return {
        "call": call,
        "ok": call.status == EndpointCall.Status.SUCCEEDED,
        "status_code": attempt.status_code,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
        "response_excerpt": attempt.response_excerpt,
    }


CALL_FILTERS = [
    ("", "All"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("pending", "Pending"),
]


@login_required
def endpoint_detail(request, endpoint):
    endpoint = _endpoint(request, endpoint)
    status = request.GET.get("status", "")
    if status not in dict(CALL_FILTERS):
        status = ""
    page = paginate(request, endpoint_calls(endpoint=endpoint, status=status), CALLS_PER_PAGE)
    test_result = _test_result(endpoint, request.GET.get("test"))
    test_form = kept_form(request, TestCallForm)
    if test_form is None:
        # The payload of the test call shown, to send it again or change it.
        initial = {}
        if test_result:
            initial["payload"] = json.dumps(test_result["call"].payload, ensure_ascii=False)
        test_form = TestCallForm(initial=initial)
    context = {
        "section": SECTION,
        "endpoint": endpoint,
        "config_rows": _config_rows(endpoint),
        "page": page,
        "status": status,
        "status_label": dict(CALL_FILTERS)[status].lower(),
        "filters": [
            {"key": key, "label": label, "url": "?" + urlencode({"status": key} if key else {})}
            for key, label in CALL_FILTERS
        ],
        "query": urlencode({"status": status}) if status else "",
        "test_form": test_form,
        "test_result": test_result,
    }
    return render(request, "console/endpoints/detail.html", context)


def _call(endpoint, call_id):
    call = endpoint_call(endpoint=endpoint, call_id=call_id)
    if call is None:
        raise Http404("No such call.")
    return call


@login_required
def endpoint_call_detail(request, endpoint, call):
    """One call of the log: its whole payload, every attempt, and Retry when it failed."""
    endpoint = _endpoint(request, endpoint)
    call = _call(endpoint, call)
    context = {
        "section": SECTION,
        "endpoint": endpoint,
        "call": call,
        "attempts": list(call.attempt_log.all()),
        "payload": json.dumps(call.payload, indent=2, ensure_ascii=False),
    }
    return render(request, "console/endpoints/call.html", context)


@login_required
@require_POST
def endpoint_call_retry(request, endpoint, call):
    """A failed call back to the queue (services.endpoint_call_retry), then its page."""
    endpoint = _endpoint(request, endpoint)
    call = _call(endpoint, call)
    try:
        services.endpoint_call_retry(call=call)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"Call {call.pk} is queued again: its new attempt appears below when made."
        )
    return redirect("console-endpoint-call", endpoint.identifier, call.pk)


@login_required
@require_POST
def endpoint_test(request, endpoint):
    """Call the endpoint now with the payload typed, then back to its page, which shows the
    target's answer (``?test=<call>``)."""
    endpoint = _endpoint(request, endpoint)
    page = reverse("console-endpoint", args=[endpoint.identifier])
    form = TestCallForm(request.POST)
    if not form.is_valid():
        return redirect_with_form(request, form, f"{page}#test")
    result = services.endpoint_call_now(endpoint=endpoint, payload=form.cleaned_data["payload"])
    if result.ok:
        messages.success(request, f"Test call sent: the target answered HTTP {result.status_code}.")
    else:
        messages.error(request, "Test call failed: " + _failure(result))
    return redirect(f"{page}?test={result.call.pk}#test")


def _failure(result):
    if result.status_code:
        return f"the target answered HTTP {result.status_code}."
    return result.error or "no answer."
