"""A dashboard's read-only link, and the device selector of a dashboard used as a template.

The owner makes the link on the dashboard's Share page (a new link revokes the old one), can
revoke it and let its control widgets work. The token is shown once, in the answer to the POST
that makes it: only its SHA-256 is stored (not in the session either), so a reload or the back
button cannot show it again.

The link opens ``/shared/dashboards/<token>/`` without a login: the widgets drawn by the
console's templates, with no navigation, no link to the rest of the account and controls
disabled unless the owner allows them. Its answers carry ``Referrer-Policy: no-referrer`` (the
token is in the URL) and ``X-Robots-Tag: noindex``; a wrong or revoked token is the 404 page.
"""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.console import owned_or_404
from dashboards import services
from dashboards.models import Dashboard
from dashboards.selectors import (
    dashboard_by_share_token,
    dashboard_data,
    default_device,
    selectable_device,
    widgets_on_device,
)
from dashboards.tiles import tiles
from devices.selectors import devices_for_owner

SECTION = "dashboards"
# Devices listed in a dashboard's selector (the search box narrows them).
SELECTOR_DEVICES = 500


def drawn(dashboard, device=None, only=None):
    """The tiles of ``dashboard`` and whether one is a chart; ``device``: the device picked in
    its selector (one of the owner's); ``only``: the tiles of the widgets with these ids only."""
    widgets = dashboard.widgets
    if device is not None and dashboard.device_from_selector:
        widgets = widgets_on_device(widgets, device)
    shown = tiles(dashboard, dashboard_data(dashboard, device=device, only=only), widgets)
    return {
        "tiles": shown,
        # Chart.js even for a chart with nothing to draw yet: its first records come live.
        "has_chart": any(one["type"] == "chart" for one in shown),
    }


def live_context(dashboard, device=None, token=None):
    """Where a dashboard's page follows its changes (``static/js/dashboard-live.js``): its live
    socket (``dashboards.live``) and the address of its tiles, for the device the selector
    picked; on the read-only link (``token``), the link's own."""
    if token is not None:
        return {
            "live_url": f"/shared/dashboards/{token}/live",
            "tiles_url": reverse("shared-dashboard-tiles", args=[token]),
        }
    query = "?" + urlencode({"device": device}) if device else ""
    return {
        "live_url": f"/v1/users/{dashboard.owner.username}/dashboards/{dashboard.identifier}"
        f"/live{query}",
        "tiles_url": reverse("console-dashboard-tiles", args=[dashboard.identifier]) + query,
    }


def picked_device(request, dashboard):
    """The device the console's selector picked for ``dashboard``: ``(device id or None, what
    is wrong or None)``; None when the dashboard has no selector or shows its own device."""
    if not dashboard.device_from_selector:
        return None, None
    picked = request.GET.get("device", "").strip()
    if not picked or picked == default_device(dashboard):
        return None, None
    if selectable_device(dashboard, picked) is None:
        return None, f'You have no device "{picked}": the dashboard shows its own device.'
    return picked, None


def selector_choice(dashboard, device):
    """The selector's default and picked device, as a control widget's form needs them."""
    if not dashboard.device_from_selector:
        return {}
    return {"default": default_device(dashboard), "picked": device or default_device(dashboard)}


def selector_context(request, dashboard, device):
    """What the selector at the top of a template dashboard shows in the console."""
    if not dashboard.device_from_selector:
        return {}
    rows = devices_for_owner(request.user).values_list("identifier", "name")[:SELECTOR_DEVICES]
    return {"selector": {**selector_choice(dashboard, device), "devices": list(rows)}}


# --- The owner's side: make, revoke, allow controls ------------------------------------------


def _owned(request, identifier):
    return owned_or_404(
        Dashboard.objects.select_related("owner"), request.user, identifier=identifier
    )


def _share_page(request, dashboard, token=None):
    context = {"section": SECTION, "dashboard": dashboard, "shared": bool(dashboard.share_token)}
    if token:
        context["link"] = request.build_absolute_uri(reverse("shared-dashboard", args=[token]))
    return render(request, "console/dashboards/share.html", context)


@never_cache
@login_required
def dashboard_share(request, dashboard):
    """GET: whether the dashboard has a link; POST: a new link (the old one stops working),
    shown on the page this answers with, once."""
    dashboard = _owned(request, dashboard)
    if request.method != "POST":
        return _share_page(request, dashboard)
    token = services.dashboard_share(dashboard=dashboard)
    messages.success(
        request,
        "Link created. Copy it now: it is not shown again. Any link made before stops working.",
    )
    return _share_page(request, dashboard, token)


@login_required
@require_POST
def dashboard_share_revoke(request, dashboard):
    dashboard = _owned(request, dashboard)
    services.dashboard_unshare(dashboard=dashboard)
    messages.success(request, "Link revoked: it opens nothing from now on.")
    return redirect("console-dashboard-share", dashboard.identifier)


@login_required
@require_POST
def dashboard_share_controls(request, dashboard):
    """Let the control widgets work on the link (``controls=true``) or not (``false``)."""
    dashboard = _owned(request, dashboard)
    choice = request.POST.get("controls")
    if choice not in ("true", "false"):
        return HttpResponseBadRequest('controls must be "true" or "false"')
    services.dashboard_update(dashboard=dashboard, share_controls=choice == "true")
    if dashboard.share_controls:
        messages.success(request, "The controls work on the link: anyone with it can use them.")
    else:
        messages.success(request, "The controls on the link show their value only.")
    return redirect("console-dashboard-share", dashboard.identifier)


# --- The link: no login --------------------------------------------------------------------


def _link_headers(response):
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _not_found(request):
    return _link_headers(TemplateResponse(request, "404.html", status=404))


def _link_view(view):
    """A view of the link: the token's dashboard or the 404 page, with the link's headers."""

    @wraps(view)
    @never_cache
    def wrapped(request, token, **kwargs):
        dashboard = dashboard_by_share_token(token)
        if dashboard is None:
            return _not_found(request)
        try:
            response = view(request, token, dashboard, **kwargs)
        except Http404:
            response = _not_found(request)
        return _link_headers(response)

    return wrapped


@_link_view
def shared_dashboard(request, token, dashboard):
    """The dashboard as its link shows it. A template dashboard shows its own device only: the
    link does not list the account's devices."""
    picked = request.GET.get("device")
    if picked is not None and picked != default_device(dashboard):
        raise Http404("a shared link shows the dashboard's own device only")
    context = {
        "dashboard": dashboard,
        "token": token,
        "shared": True,
        "controls": dashboard.share_controls,
        "default_device": default_device(dashboard) if dashboard.device_from_selector else None,
        **drawn(dashboard),
        **live_context(dashboard, token=token),
    }
    return render(request, "shared/dashboard.html", context)


@_link_view
def shared_dashboard_tiles(request, token, dashboard):
    """The tiles ``?w=<id>`` of the link's dashboard, as the console's ``dashboard_tiles``."""
    context = {
        "dashboard": dashboard,
        "token": token,
        "shared": True,
        "controls": dashboard.share_controls,
        **drawn(dashboard, only=set(request.GET.getlist("w")) or None),
    }
    return render(request, "console/dashboards/_tiles.html", context)


@_link_view
@require_POST
def shared_dashboard_control(request, token, dashboard, widget):
    """A control widget's form on the link, when the owner lets the controls work there."""
    if not dashboard.share_controls:
        return HttpResponseForbidden("The controls of this dashboard work for its owner only.")
    try:
        services.dashboard_control_write(
            dashboard=dashboard, widget_id=widget, value=request.POST.get("value")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Sent.")
    return redirect(f"{reverse('shared-dashboard', args=[token])}#tile-{widget}")
