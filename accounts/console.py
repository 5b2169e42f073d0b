"""The console's account page: the user's password and their long-lived API tokens (create,
enable or disable, revoke). Reads go through selectors, changes through services.

A new token's value is shown once, on the page the creation leads to: the session holds which
token was just created (not its value) until that page is shown, so a reload, the back button
or another tab never shows it again.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services
from accounts.auth import access_token_value
from accounts.forms import AccessTokenForm, PasswordChangeForm
from accounts.models import AccessToken
from accounts.permissions import permissions_summary
from accounts.selectors import access_tokens_of
from core.console import ObjectDeleteView, ObjectEditView, owned_or_404, paginate

SECTION = "account"
TOKENS_PER_PAGE = 50
# The session key naming the token whose value the account page shows, once.
NEW_TOKEN_KEY = "account_new_token"  # noqa: S105 (a session key, not a secret)


def _token(request, identifier):
    return owned_or_404(access_tokens_of(owner=request.user), request.user, identifier=identifier)


def _created_token(request):
    """The token created just before this page, with its value; None after the first showing."""
    pk = request.session.pop(NEW_TOKEN_KEY, None)
    token = access_tokens_of(owner=request.user).filter(pk=pk).first() if pk else None
    if token is None:
        return None
    return {"token": token, "value": access_token_value(token)}


def _account_page(request, password_form):
    page = paginate(request, access_tokens_of(owner=request.user), TOKENS_PER_PAGE)
    rows = [(token, *permissions_summary(token.allow, token.deny)) for token in page]
    context = {
        "section": SECTION,
        "password_form": password_form,
        "page": page,
        "rows": rows,
        "created": _created_token(request),
        "api_base": settings.PUBLIC_URL.rstrip("/"),
    }
    return render(request, "console/account/account.html", context)


@never_cache
@login_required
def account(request):
    return _account_page(request, PasswordChangeForm(request.user, request=request))


@never_cache
@login_required
def password_change(request):
    """The password form of the account page. Every other session of the user is signed out
    (their session hash no longer matches); this one goes on."""
    if request.method != "POST":
        return redirect("console-account")
    form = PasswordChangeForm(request.user, request.POST, request=request)
    if not form.is_valid():
        return _account_page(request, form)
    revoked = services.user_password_change(
        user=request.user, password=form.cleaned_data["new_password1"]
    )
    update_session_auth_hash(request, request.user)
    logins = f"{revoked} API login{'s' if revoked != 1 else ''} (refresh tokens)"
    messages.success(
        request,
        f"Your password was changed. Your other sessions were signed out and {logins} revoked. "
        "Long-lived API tokens keep working: revoke any you no longer trust.",
    )
    return redirect("console-account")


class TokenCreateView(ObjectEditView):
    section = SECTION
    template_name = "console/account/token_form.html"
    form_class = AccessTokenForm
    created_message = "Token {obj.identifier} created. Copy its value now: it is not shown again."

    def save(self, obj, form):
        token = services.access_token_create(owner=self.request.user, **form.token_fields())
        self.request.session[NEW_TOKEN_KEY] = token.pk
        return token

    def get_return_url(self, obj, *, created):
        return reverse("console-account")


class TokenRevokeView(ObjectDeleteView):
    url_kwarg = "token"
    deleted_message = "Token {obj.identifier} revoked: requests with it are refused from now on."
    return_url_name = "console-account"

    def find(self, identifier):
        return _token(self.request, identifier)

    def delete_object(self, obj):
        services.access_token_revoke(token=obj)


@login_required
@require_POST
def token_enable(request, token):
    """Enable (``enabled=true``) or disable (``enabled=false``) a token."""
    found = _token(request, token)
    choice = request.POST.get("enabled")
    if choice not in ("true", "false"):
        return HttpResponseBadRequest("enabled must be true or false")
    try:
        services.access_token_update(token=found, enabled=choice == "true")
    except AccessToken.DoesNotExist:
        raise Http404("No such token.") from None
    if found.enabled:
        messages.success(request, f"Token {found.identifier} enabled.")
    else:
        messages.success(
            request,
            f"Token {found.identifier} disabled: requests with it are refused until you "
            "enable it again.",
        )
    return redirect("console-account")
