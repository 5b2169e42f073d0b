"""The shape shared by what a user owns and names: devices, buckets, endpoints and access tokens."""

from django.db import models


class OwnedModel(models.Model):
    """A user's object, named in URLs by an ``identifier`` unique per owner.

    Each model declares its ``owner`` and ``identifier`` (their related name and verbose name are
    its own, and part of the migrations' state) and the constraint, with
    ``identifier_unique_per_owner``.
    """

    name = models.CharField(max_length=255, blank=True)
    description = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["owner_id", "identifier"]

    def __str__(self):
        return f"{self.owner.username}/{self.identifier}" if self.owner_id else self.identifier


def identifier_unique_per_owner(prefix, thing):
    """The constraint ``<prefix>_identifier_unique_per_owner``: its message ("You already have
    <thing> with this ID.") is the answer to a duplicate id in the admin, the console and the
    API."""
    return models.UniqueConstraint(
        fields=["owner", "identifier"],
        name=f"{prefix}_identifier_unique_per_owner",
        violation_error_message=f"You already have {thing} with this ID.",
    )
