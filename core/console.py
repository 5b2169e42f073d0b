"""The browser console's shared pieces: login and logout, the home page, and the helpers every
section uses (ownership lookups, tabs registered in Python, service errors onto forms).

Each app keeps its own pages in ``<app>/console.py``; the templates are under ``templates/console``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse


@login_required
def home(request):
    return redirect("console-device-list")


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


LogoutView = auth_views.LogoutView


def owned_or_404(queryset, user, **lookup):
    """The user's own object, or 404: another user's object does not exist for them."""
    return get_object_or_404(queryset, owner=user, **lookup)


def paginate(request, queryset, per_page=25):
    """The page asked for by ``?page=`` (out of range: the last one)."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def add_service_errors(form, exc: ValidationError, *, non_field_to=None):
    """Put a service's ValidationError on the form: each message on its field when the form has
    it, else on ``non_field_to`` (the field a constraint is about, e.g. the identifier), else at
    the top of the form."""
    if hasattr(exc, "error_dict"):
        items = exc.message_dict.items()
    else:
        items = [(NON_FIELD_ERRORS, exc.messages)]
    for name, messages in items:
        target = name if name in form.fields else non_field_to
        if target not in form.fields:
            target = None
        for message in messages:
            form.add_error(target, message)


# Tabs, registered in Python (as NetBox does) rather than written out in each template: a page
# names its group and its active tab, the partial ``console/partials/tabs.html`` draws them.


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url_name: str
    badge: Callable[[Any], int | None] | None = None


_TABS: dict[str, list[Tab]] = {}


def register_tab(group, key, label, url_name, *, badge=None):
    tabs = _TABS.setdefault(group, [])
    if any(tab.key == key for tab in tabs):
        return
    tabs.append(Tab(key=key, label=label, url_name=url_name, badge=badge))


def tabs_for(group, obj, url_args):
    """The group's tabs for ``obj``: ``[{key, label, url, badge}]`` in registration order."""
    return [
        {
            "key": tab.key,
            "label": tab.label,
            "url": reverse(tab.url_name, args=url_args),
            "badge": tab.badge(obj) if tab.badge else None,
        }
        for tab in _TABS.get(group, [])
    ]
