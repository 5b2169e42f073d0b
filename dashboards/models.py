from django.conf import settings
from django.db import models

from core.identifiers import identifier_field
from core.models import OwnedModel, identifier_unique_per_owner


class Dashboard(OwnedModel):
    """A user's page of widgets. ``widgets`` is a list of widget objects and ``layout`` their
    positions on a 12-column grid, ``{widget id: {x, y, w, h}}`` (``dashboards.widgets`` says
    what they may hold; ``dashboards.services`` checks them).

    ``share_token`` is the SHA-256 (hex) of the token of the dashboard's read-only link, which
    opens it without a login (the token itself is never stored; null: not shared; a new token
    revokes the old link); ``share_controls`` lets the control widgets work on that link.

    ``device_from_selector`` makes the dashboard a template: a selector at its top picks the
    device that every widget naming a device reads instead (``dashboards.selectors``).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboards"
    )
    identifier = identifier_field("dashboard ID")
    widgets = models.JSONField(default=list, blank=True)
    layout = models.JSONField(default=dict, blank=True)
    share_token = models.CharField(  # noqa: DJ001 (null: not shared; unique when set)
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    share_controls = models.BooleanField(
        "controls on the shared link",
        default=False,
        help_text="Whether the control widgets (switch, slider, text input) work on the shared "
        "link; otherwise they show their value only.",
    )

    device_from_selector = models.BooleanField(
        "device from a selector",
        default=False,
        help_text="A selector at the top of the dashboard picks the device its widgets read "
        "(those naming a device: properties, status); buckets stay as they are.",
    )

    class Meta(OwnedModel.Meta):
        constraints = [identifier_unique_per_owner("dashboard", "a dashboard")]
