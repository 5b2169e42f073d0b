"""Console forms of the account page: the password change and a new long-lived token.

Forms check what a person typed; the services decide the rest (their ValidationErrors go back
onto the form through the views).
"""

import copy
import json

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.signals import user_login_failed
from django.utils import timezone

from accounts.models import AccessToken
from accounts.permissions import CUSTOM, PRESETS, validate_permissions
from core.logins import LOCKED_MESSAGE, login_locked
from core.text import validate_storable
from core.times import to_ms


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form (current password, the new one twice, the password validators), with a
    wrong current password counted as a failed login, as on ``/login/``: someone guessing it in
    a session left open is stopped by the same limits."""

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request
        self.fields["old_password"].label = "Current password"
        self.fields["old_password"].widget.attrs.pop("autofocus", None)
        self.fields["new_password2"].label = "New password, again"

    def clean_old_password(self):
        if self.request is not None:
            seconds = login_locked(self.request, self.user.username)
            if seconds:
                raise forms.ValidationError(LOCKED_MESSAGE.format(seconds=seconds).capitalize())
        old = self.cleaned_data["old_password"]
        if not self.user.check_password(old):
            if self.request is not None:
                user_login_failed.send(
                    sender=__name__,
                    credentials={"username": self.user.username},
                    request=self.request,
                )
            raise forms.ValidationError(
                "This is not your current password.", code="password_incorrect"
            )
        return old


def parse_permissions(text):
    """A permission document typed as JSON (an empty box: no rules, ``{}``), or a
    ValidationError saying what is wrong with it."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(
            f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    validate_storable(value)
    validate_permissions(value)
    return value


_IDENTIFIER = AccessToken._meta.get_field("identifier")
_JSON_ATTRS = {"class": "code", "rows": 5, "spellcheck": "false"}


class AccessTokenForm(forms.Form):
    identifier = forms.CharField(
        label="Token ID",
        max_length=_IDENTIFIER.max_length,
        validators=_IDENTIFIER.validators,
        help_text="1 to 50 letters, digits or '_'; it names the token in the API.",
        widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "e.g. node_red"}),
    )
    name = forms.CharField(
        label="Name",
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Node-RED on the greenhouse Pi"}),
    )
    expire = forms.DateTimeField(
        label="Expires",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    permissions = forms.ChoiceField(
        label="Permissions",
        choices=[*((p.key, p.label) for p in PRESETS.values()), (CUSTOM, "Custom")],
        initial="full",
        widget=forms.RadioSelect,
    )
    allow = forms.CharField(
        label="Allow (JSON)",
        required=False,
        help_text='What it may do, e.g. <code>{"Bucket": {"readings": ["ReadBucket"]}, '
        '"Device": {"*": "*"}}</code>: a resource type, a resource name and the actions; '
        "<code>*</code> means any.",
        widget=forms.Textarea(attrs=_JSON_ATTRS),
    )
    deny = forms.CharField(
        label="Deny (JSON)",
        required=False,
        help_text='What it may not do, even where Allow says it may, e.g. <code>{"Device": '
        '{"*": ["DeleteDevice"]}}</code>. Empty: nothing denied.',
        widget=forms.Textarea(attrs=_JSON_ATTRS),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expire"].help_text = (
            f"Optional, in {timezone.get_current_timezone_name()}: after it the token is refused. "
            "Empty: it never expires."
        )

    def preset_rows(self):
        """(radio, description) of each permission choice, for the template."""
        descriptions = {key: preset.description for key, preset in PRESETS.items()}
        descriptions[CUSTOM] = "Write the allow and deny rules yourself, in JSON."
        return [(radio, descriptions[radio.data["value"]]) for radio in self["permissions"]]

    def clean_expire(self):
        moment = self.cleaned_data.get("expire")
        if moment is not None and moment <= timezone.now():
            raise forms.ValidationError("Choose a time in the future, or leave it empty.")
        return moment

    def clean(self):
        """Custom permissions: the JSON boxes, parsed and checked (ignored for a preset)."""
        data = super().clean()
        if data.get("permissions") != CUSTOM:
            return data
        for name in ("allow", "deny"):
            try:
                data[name] = parse_permissions(data.get(name))
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        if data.get("allow") == {}:
            self.add_error("allow", "Give at least one permission, or choose a preset.")
        return data

    def token_fields(self):
        """The keyword arguments of ``access_token_create`` this form gives."""
        data = self.cleaned_data
        preset = PRESETS.get(data["permissions"])
        return {
            "identifier": data["identifier"],
            "name": data["name"],
            "allow": copy.deepcopy(preset.allow) if preset else data["allow"],
            "deny": copy.deepcopy(preset.deny) if preset else data["deny"],
            "expire": to_ms(data.get("expire")),
        }
