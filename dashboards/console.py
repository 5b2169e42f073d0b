"""Console pages for dashboards: list, create and edit (the widgets and layout as JSON), delete,
and the dashboard itself, each widget drawn with what it shows now."""

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.console import (
    ObjectDeleteView,
    ObjectEditView,
    add_service_errors,
    owned_or_404,
    paginate,
)
from dashboards import services
from dashboards.forms import DashboardForm
from dashboards.models import Dashboard
from dashboards.selectors import dashboards_of
from dashboards.shared import (
    drawn,
    live_context,
    picked_device,
    selector_choice,
    selector_context,
)
from dashboards.widgets import KINDS
from devices.selectors import devices_for_owner

SECTION = "dashboards"


def _dashboard(request, identifier):
    return owned_or_404(
        Dashboard.objects.select_related("owner"), request.user, identifier=identifier
    )


@login_required
def dashboard_list(request):
    page = paginate(request, dashboards_of(username=request.user.username), 50)
    return render(request, "console/dashboards/list.html", {"section": SECTION, "page": page})


def example_widgets(user):
    """Widgets to start from, on the user's first device and its first property if any."""
    device = devices_for_owner(user).prefetch_related("properties").first()
    device_id = device.identifier if device else "my_device"
    prop = next(iter(device.properties.all()), None) if device else None
    widgets = [
        {
            "id": "reading",
            "type": "value",
            "title": "Reading",
            "source": {
                "kind": "property",
                "device": device_id,
                "property": prop.identifier if prop else "my_property",
            },
            "options": {"unit": "", "decimals": 1},
        },
        {
            "id": "status",
            "type": "device_status",
            "source": {"kind": "device", "device": device_id},
        },
        {
            "id": "history",
            "type": "chart",
            "title": "Last day",
            "source": {
                "kind": "bucket",
                "bucket": "my_bucket",
                "fields": ["temperature"],
                "range": {"last": "1d"},
            },
        },
    ]
    layout = {
        "reading": {"x": 0, "y": 0, "w": 4, "h": 3},
        "status": {"x": 4, "y": 0, "w": 4, "h": 3},
        "history": {"x": 0, "y": 3, "w": 8, "h": 4},
    }
    return json.dumps(widgets, indent=2), json.dumps(layout, indent=2)


class _DashboardPage:
    section = SECTION
    url_kwarg = "dashboard"

    def find(self, identifier):
        return _dashboard(self.request, identifier)


class DashboardEditView(_DashboardPage, ObjectEditView):
    template_name = "console/dashboards/form.html"
    context_object_name = "dashboard"
    form_class = DashboardForm
    created_message = "Dashboard {obj.identifier} created."
    saved_message = "Dashboard {obj.identifier} saved."
    return_url_name = "console-dashboard"

    def initial(self, obj):
        return {
            "name": obj.name,
            "description": obj.description,
            "enabled": obj.enabled,
            "widgets": obj.widgets,
            "layout": obj.layout,
            "device_from_selector": obj.device_from_selector,
        }

    def save(self, obj, form):
        if obj is None:
            return services.dashboard_create(owner=self.request.user, **form.cleaned_data)
        return services.dashboard_update(dashboard=obj, **form.cleaned_data)

    def form_errors(self, form, exc):
        """``widgets[0].source.device: ...`` on the widgets box, ``layout.w1.x: ...`` on the
        layout box; the rest as every edit page puts them."""
        rest = {}
        for key, texts in exc.message_dict.items():
            box = key.split(".", 1)[0].split("[", 1)[0]
            if box in ("widgets", "layout"):
                for text in texts:
                    form.add_error(box, text if key == box else f"{key}: {text}")
            else:
                rest[key] = texts
        if rest:
            add_service_errors(form, ValidationError(rest), non_field_to="identifier")

    def extra_context(self, obj):
        widgets, layout = example_widgets(self.request.user)
        return {
            "example_widgets": widgets,
            "example_layout": layout,
            "kinds": KINDS.values(),
        }


class DashboardDeleteView(_DashboardPage, ObjectDeleteView):
    deleted_message = "Dashboard {obj.identifier} deleted."
    return_url_name = "console-dashboard-list"

    def delete_object(self, obj):
        services.dashboard_delete(dashboard=obj)


@login_required
def dashboard_detail(request, dashboard):
    """The dashboard; one with a selector shows the device of ``?device=`` (404 with a message
    when the user has no such device)."""
    dashboard = _dashboard(request, dashboard)
    device, wrong = picked_device(request, dashboard)
    if wrong:
        messages.error(request, wrong)
    context = {
        "section": SECTION,
        "dashboard": dashboard,
        **drawn(dashboard, device),
        **selector_context(request, dashboard, device),
        **live_context(dashboard, device),
    }
    return render(request, "console/dashboards/detail.html", context, status=404 if wrong else 200)


@login_required
def dashboard_tiles(request, dashboard):
    """The tiles of the widgets ``?w=<id>`` (repeated; none: all of them) as HTML, for the
    dashboard's page to swap in place when they change (``static/js/dashboard-live.js``), on
    the device its selector picked (``?device=``); ids of no widget are ignored."""
    dashboard = _dashboard(request, dashboard)
    device, wrong = picked_device(request, dashboard)
    if wrong:
        raise Http404(wrong)
    context = {
        "dashboard": dashboard,
        "selector": selector_choice(dashboard, device),
        **drawn(dashboard, device, only=set(request.GET.getlist("w")) or None),
    }
    return render(request, "console/dashboards/_tiles.html", context)


@login_required
@require_POST
def dashboard_control(request, dashboard, widget):
    """A control widget's form: write its property (of the device the page's selector picked,
    ``?device=``), then back to the widget."""
    dashboard = _dashboard(request, dashboard)
    page = reverse("console-dashboard", args=[dashboard.identifier])
    device, wrong = picked_device(request, dashboard)
    if device:
        page += "?" + urlencode({"device": device})
    try:
        if wrong:
            raise ValidationError(wrong)
        prop = services.dashboard_control_write(
            dashboard=dashboard, widget_id=widget, value=request.POST.get("value"), device=device
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        shown = json.dumps(prop.value, ensure_ascii=False)
        messages.success(
            request, f"Property {prop.identifier} of {prop.device.identifier} set to {shown}."
        )
    return redirect(f"{page}#tile-{widget}")
