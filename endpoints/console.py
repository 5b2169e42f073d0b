"""Console pages for endpoints: list, create and edit per type, delete, a test call that shows
the target's answer, and the call log with its attempts."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.console import add_service_errors, owned_or_404, paginate
from endpoints import services
from endpoints.forms import CONFIG_FORMS, EndpointForm, TestCallForm, config_forms
from endpoints.models import Endpoint, EndpointCall
from endpoints.selectors import endpoint_calls, endpoints_of

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


def _edit_page(request, form, configs, chosen_type, **context):
    return render(
        request,
        "console/endpoints/form.html",
        {
            "section": SECTION,
            "form": form,
            "configs": configs,
            "chosen_type": chosen_type,
            **context,
        },
    )


@login_required
def endpoint_create(request):
    chosen_type = request.POST.get("type") or request.GET.get("type") or Endpoint.Type.HTTP_REQUEST
    if chosen_type not in CONFIG_FORMS:
        chosen_type = Endpoint.Type.HTTP_REQUEST
    form = EndpointForm(request.POST or None, initial={"type": chosen_type})
    configs = config_forms(request.POST or None)
    if request.method == "POST":
        chosen = next((c for c in configs if c.type == chosen_type), None)
        if form.is_valid() and chosen.is_valid():
            try:
                endpoint = services.endpoint_create(
                    owner=request.user, config=chosen.config(), **form.cleaned_data
                )
            except ValidationError as exc:
                _apply_errors(form, chosen, exc)
            else:
                messages.success(
                    request, f"Endpoint {endpoint.identifier} created. Send it a test call below."
                )
                return redirect("console-endpoint", endpoint.identifier)
    return _edit_page(request, form, configs, chosen_type, creating=True)


@login_required
def endpoint_edit(request, endpoint):
    endpoint = _endpoint(request, endpoint)
    initial = {
        "name": endpoint.name,
        "description": endpoint.description,
        "type": endpoint.type,
        "enabled": endpoint.enabled,
    }
    form = EndpointForm(request.POST or None, initial=initial, editing=True)
    chosen_type = request.POST.get("type") or endpoint.type
    configs = config_forms(request.POST or None, type=endpoint.type, config=endpoint.config)
    if request.method == "POST":
        chosen = next((c for c in configs if c.type == chosen_type), None)
        if form.is_valid() and chosen is not None and chosen.is_valid():
            try:
                services.endpoint_update(
                    endpoint=endpoint, config=chosen.config(), **form.cleaned_data
                )
            except ValidationError as exc:
                _apply_errors(form, chosen, exc)
            else:
                messages.success(request, f"Endpoint {endpoint.identifier} saved.")
                return redirect("console-endpoint", endpoint.identifier)
    return _edit_page(request, form, configs, chosen_type, creating=False, endpoint=endpoint)


@login_required
@require_POST
def endpoint_delete(request, endpoint):
    endpoint = _endpoint(request, endpoint)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint {endpoint.identifier} deleted with its call log.")
    return redirect("console-endpoint-list")


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


@login_required
def endpoint_detail(request, endpoint, test_form=None, test_result=None):
    endpoint = _endpoint(request, endpoint)
    page = paginate(request, endpoint_calls(endpoint=endpoint), CALLS_PER_PAGE)
    context = {
        "section": SECTION,
        "endpoint": endpoint,
        "config_rows": _config_rows(endpoint),
        "page": page,
        "test_form": test_form or TestCallForm(),
        "test_result": test_result,
    }
    return render(request, "console/endpoints/detail.html", context)


@login_required
@require_POST
def endpoint_test(request, endpoint):
    """Call the endpoint now with the payload typed, and show the target's answer."""
    endpoint_obj = _endpoint(request, endpoint)
    form = TestCallForm(request.POST)
    result = None
    if form.is_valid():
        result = services.endpoint_call_now(
            endpoint=endpoint_obj, payload=form.cleaned_data["payload"]
        )
    return endpoint_detail(request, endpoint, test_form=form, test_result=result)
