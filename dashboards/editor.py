"""Console pages that edit a dashboard without JSON: add a widget (choose its kind, then its
form), change or remove one, and save the layout the grid editor sends. Each change goes
through ``dashboards.services.dashboard_update``, which checks it as it checks the JSON."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from buckets.selectors import buckets_of
from dashboards import services
from dashboards.console import SECTION, _dashboard
from dashboards.widget_forms import WidgetForm, initial_for
from dashboards.widgets import KINDS, MAX_WIDGETS, widget_by_id
from devices.models import Property
from devices.selectors import devices_for_owner

# What each kind of widget is for, on the page that offers them.
KIND_TEXTS = {
    "chart": "Fields of a bucket's records over time, several series, aggregated if you like.",
    "value": "A number or a text, with its unit.",
    "text": "A text, as it is.",
    "gauge": "A number on a dial, between a minimum and a maximum, with coloured ranges.",
    "donut": "A number as a share of a ring, between a minimum and a maximum.",
    "led": "A light: on when the value is, coloured by ranges, blinking if you like.",
    "map": "A position (lat and lng fields) and the track of the last records.",
    "device_status": "Whether a device is connected, its last call and its calls today.",
    "switch": "Turns a property on and off.",
    "slider": "Sets a property to a number between a minimum and a maximum.",
    "text_input": "Sets a property to a text.",
}


def _form(request, kind, **kwargs):
    user = request.user
    return WidgetForm(
        request.POST or None,
        kind=kind,
        devices=devices_for_owner(user),
        properties=Property.objects.filter(device__owner=user)
        .select_related("device")
        .order_by("identifier", "device__identifier"),
        buckets=buckets_of(username=user.username),
        **kwargs,
    )


def _new_id(widgets, kind):
    """The first of ``gauge``, ``gauge-2``, ``gauge-3``... that no widget has."""
    taken = {widget.get("id") for widget in widgets}
    base = kind.replace("_", "-")
    number = 1
    while (base if number == 1 else f"{base}-{number}") in taken:
        number += 1
    return base if number == 1 else f"{base}-{number}"


def _page(dashboard, widget_id=None):
    page = reverse("console-dashboard", args=[dashboard.identifier])
    return f"{page}#tile-{widget_id}" if widget_id else page


def _save(dashboard, form, place):
    """Put the form's widget in the dashboard's list as stored now: ``place(widgets)`` gives
    ``(widgets, index of the form's widget)``. The saved widget, or None with the errors on the
    form."""
    saved = {}

    def change(widgets):
        widgets, index = place(widgets)
        saved.update(index=index, widget=widgets[index])
        return widgets

    try:
        services.dashboard_widgets_change(dashboard=dashboard, change=change)
    except ValidationError as exc:
        if "index" in saved:
            form.add_errors(exc.message_dict, saved["index"])
        else:
            form.add_error(None, exc)
        return None
    return saved["widget"]


def _render_form(request, dashboard, form, widget=None, status=200):
    context = {
        "section": SECTION,
        "dashboard": dashboard,
        "form": form,
        "kind": form.kind,
        "widget": widget,
        "groups": form.groups(),
        "source_fields": form.source_fields(),
    }
    return render(request, "console/dashboards/widget_form.html", context, status=status)


@login_required
def widget_add(request, dashboard):
    """GET without ``?type=``: the kinds to choose from; with it, that kind's form."""
    dashboard = _dashboard(request, dashboard)
    kind = KINDS.get(request.GET.get("type", ""))
    if kind is None:
        if request.method == "POST":
            raise Http404("No such kind of widget.")
        kinds = [{"kind": one, "text": KIND_TEXTS[one.type]} for one in KINDS.values()]
        context = {
            "section": SECTION,
            "dashboard": dashboard,
            "kinds": kinds,
            "full": len(dashboard.widgets) >= MAX_WIDGETS,
        }
        return render(request, "console/dashboards/widget_kinds.html", context)
    form = _form(request, kind)
    if request.method == "POST" and form.is_valid():

        def place(widgets):
            return [*widgets, form.widget(_new_id(widgets, kind.type))], len(widgets)

        widget = _save(dashboard, form, place)
        if widget is not None:
            messages.success(request, f"Widget {widget['id']} added.")
            return redirect(_page(dashboard, widget["id"]))
    return _render_form(request, dashboard, form, status=400 if form.is_bound else 200)


@login_required
def widget_edit(request, dashboard, widget):
    dashboard = _dashboard(request, dashboard)
    found = widget_by_id(dashboard.widgets, widget)
    if found is None or found.get("type") not in KINDS:
        raise Http404("This dashboard has no such widget.")
    form = _form(request, KINDS[found["type"]], initial=initial_for(found))
    if request.method == "POST" and form.is_valid():

        def place(widgets):
            stored = widget_by_id(widgets, found["id"])
            if stored is None:
                raise ValidationError("This widget was removed meanwhile: add it again.")
            index = widgets.index(stored)
            return [*widgets[:index], form.widget(found["id"]), *widgets[index + 1 :]], index

        if _save(dashboard, form, place) is not None:
            messages.success(request, f"Widget {found['id']} saved.")
            return redirect(_page(dashboard, found["id"]))
    return _render_form(request, dashboard, form, found, status=400 if form.is_bound else 200)


@login_required
@require_POST
def widget_remove(request, dashboard, widget):
    dashboard = _dashboard(request, dashboard)
    found = widget_by_id(dashboard.widgets, widget)
    if found is None:
        raise Http404("This dashboard has no such widget.")
    try:
        services.dashboard_widgets_change(
            dashboard=dashboard,
            change=lambda widgets: [one for one in widgets if one.get("id") != widget],
        )
    except ValidationError as exc:
        messages.error(request, "The widget stays: " + " ".join(exc.messages))
        edit = reverse("console-dashboard-widget-edit", args=[dashboard.identifier, widget])
        return redirect(edit)
    messages.success(request, f"Widget {widget} removed.")
    return redirect(_page(dashboard))


@login_required
@require_POST
def layout_save(request, dashboard):
    """The grid editor's positions, ``{"layout": {widget id: {x, y, w, h}}}`` as JSON: 200 with
    the layout saved, or 400 with ``{"errors": {"layout.w1.x": [message]}}`` and nothing
    saved."""
    dashboard = _dashboard(request, dashboard)
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    if not isinstance(body, dict) or set(body) != {"layout"}:
        errors = {"layout": ['send a JSON object {"layout": {widget id: {x, y, w, h}}}']}
        return JsonResponse({"errors": errors}, status=400)
    try:
        services.dashboard_update(dashboard=dashboard, layout=body["layout"])
    except ValidationError as exc:
        return JsonResponse({"errors": exc.message_dict}, status=400)
    return JsonResponse({"layout": dashboard.layout})
