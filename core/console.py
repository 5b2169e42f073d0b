"""The browser console's shared pieces: login and logout, the home page, the helpers every
section uses (ownership lookups, tabs registered in Python, service errors onto forms, forms
with errors kept across a redirect), and the generic create/edit and delete pages each section
declares its own from.

Each app keeps its own pages in ``<app>/console.py``; the templates are under ``templates/console``.
"""

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View


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
    for name, texts in items:
        target = name if name in form.fields else non_field_to
        if target not in form.fields:
            target = None
        for message in texts:
            form.add_error(target, message)


def local_path(value):
    """``value`` when it is a path on this site (``/devices/...``), else None: a ``next``
    parameter never leads to another site (``//host``, ``https://host``, ``/\\host``, control
    characters that browsers drop)."""
    if not value or not value.startswith("/"):
        return None
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in value):
        return None
    if not url_has_allowed_host_and_scheme(value, allowed_hosts=None):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def with_query(url, **params):
    """``url`` with ``params`` set in its query string (replacing the same names)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


# Redirect after every POST, a form with errors too: the form is kept in the session and the page
# it belongs to shows it again, bound to what was sent. The address is always the page's (its
# links work) and reloading it sends nothing again.

_KEPT_FORM = "console_kept_form"


def _form_name(form_class):
    return f"{form_class.__module__}.{form_class.__qualname__}"


def redirect_with_form(request, form, to):
    """Redirect to ``to`` (a page's URL, with a #fragment if need be), keeping what ``form``
    was sent (not the CSRF token) for that page's ``kept_form``."""
    data = {key: form.data.getlist(key) for key in form.data if key != "csrfmiddlewaretoken"}
    request.session[_KEPT_FORM] = {
        "path": urlsplit(to).path,
        "form": _form_name(type(form)),
        "data": data,
    }
    return redirect(to)


def kept_form(request, form_class):
    """The ``form_class`` form that ``redirect_with_form`` kept for this page, bound again to the
    same data (so it shows the same errors), once; None when there is none."""
    kept = request.session.get(_KEPT_FORM)
    if not kept or kept["path"] != request.path or kept["form"] != _form_name(form_class):
        return None
    del request.session[_KEPT_FORM]
    data = QueryDict(mutable=True)
    for key, values in kept["data"].items():
        data.setlist(key, values)
    return form_class(data)


# Create, edit and delete, declared (as NetBox's generic views are): a page names its section,
# template, form, messages and where it goes after; small hooks call the app's services.


class OwnedObjectMixin(LoginRequiredMixin):
    """A page about one of the user's objects: the login page for anonymous users (before any
    lookup), then the object the URL names, the user's own or 404.

    ``url_kwarg`` is the URL's keyword for the object; a create page has none. ``find`` is the
    app's lookup, so the page reads the object as the app's other pages do.
    """

    url_kwarg = ""

    def get_object(self):
        """The object the URL names, or None on a create page."""
        identifier = self.kwargs.get(self.url_kwarg)
        return None if identifier is None else self.find(identifier)

    def find(self, identifier):
        """The user's object with this identifier, or 404."""
        raise NotImplementedError


class ObjectEditView(OwnedObjectMixin, View):
    """The create page (no object in the URL) and the edit page of an object, one class.

    GET shows the form: blank to create, filled by ``initial(obj)`` to edit. A valid POST calls
    ``save``; the service's ValidationError goes back onto the form (``form_errors``), success
    flashes a message and redirects.

    A create page opened from another page with ``?next=<path>`` (a path of this site only)
    goes back there after creating, with ``created=<identifier>`` added, and its Cancel too.
    """

    section = ""
    template_name = ""
    context_object_name = ""
    form_class = None
    # Templates formatted with ``obj``, the object saved.
    created_message = ""
    saved_message = ""
    # Where the object goes after a save, given its identifier.
    return_url_name = ""

    def get(self, request, **kwargs):
        obj = self.get_object()
        return self.render_form(obj, self.get_form(obj))

    def post(self, request, **kwargs):
        obj = self.get_object()
        form = self.get_form(obj)
        if self.is_valid(form):
            try:
                saved = self.save(obj, form)
            except ValidationError as exc:
                self.form_errors(form, exc)
            else:
                message = self.created_message if obj is None else self.saved_message
                messages.success(request, message.format(obj=saved))
                for warning in self.warnings(saved):
                    messages.warning(request, warning)
                if obj is None and self.next_url():
                    return redirect(with_query(self.next_url(), created=saved.identifier))
                return redirect(self.get_return_url(saved, created=obj is None))
        return self.render_form(obj, form)

    def get_form(self, obj):
        """Create: the blank form. Edit: the form without the identifier (it never changes),
        filled from the object."""
        if obj is None:
            return self.form_class(self.request.POST or None)
        return self.form_class(self.request.POST or None, initial=self.initial(obj), editing=True)

    def initial(self, obj):
        """The edit form's values, from the object."""
        return {}

    def is_valid(self, form):
        return form.is_valid()

    def save(self, obj, form):
        """Create (``obj`` is None) or update through the app's service; the object saved."""
        raise NotImplementedError

    def warnings(self, obj):
        """What to know about the object saved, though it is valid (messages after the save's)."""
        return []

    def form_errors(self, form, exc):
        """The service's errors on the form; those of no field of the form on the identifier
        (a create page's uniqueness), else at the top."""
        add_service_errors(form, exc, non_field_to="identifier")

    def get_return_url(self, obj, *, created):
        return reverse(self.return_url_name, args=[obj.identifier])

    def next_url(self):
        """Where a create page goes back to (``?next=``), when it is a path of this site."""
        return local_path(self.request.GET.get("next"))

    def extra_context(self, obj):
        return {}

    def render_form(self, obj, form):
        context = {
            "section": self.section,
            "form": form,
            "creating": obj is None,
            "return_to": self.next_url() if obj is None else None,
        }
        if obj is not None:
            context[self.context_object_name] = obj
        context.update(self.extra_context(obj))
        return render(self.request, self.template_name, context)


class ObjectDeleteView(OwnedObjectMixin, View):
    """Delete an object: a POST only (405 otherwise), then back to the list with a message."""

    http_method_names = ("post",)
    # Formatted with ``obj``, the object deleted.
    deleted_message = ""
    return_url_name = ""

    def post(self, request, **kwargs):
        obj = self.get_object()
        self.delete_object(obj)
        messages.success(request, self.deleted_message.format(obj=obj))
        return redirect(self.get_return_url(obj))

    def delete_object(self, obj):
        """Delete through the app's service."""
        raise NotImplementedError

    def get_return_url(self, obj):
        return reverse(self.return_url_name)


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
