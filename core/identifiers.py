"""The identifier rule shared by devices, buckets, endpoints and properties (SPEC: ids), and the
generation numbers that tokens carry."""

import secrets

from django.core.validators import RegexValidator
from django.db import models

IDENTIFIER_PATTERN = r"[a-zA-Z0-9_-]{1,32}"
IDENTIFIER_MAX_LENGTH = 32

identifier_validator = RegexValidator(
    rf"^{IDENTIFIER_PATTERN}\Z",
    "Use 1 to 32 letters, digits, '_' or '-'.",
)


def new_token_generation():
    """A random token generation for a device or an access token: one deleted and created again
    under the same id gets a new one, so the tokens issued before never come back to life."""
    return secrets.randbelow(2**31 - 1) + 1


def identifier_field(verbose_name):
    """The identifier column of a device, bucket, endpoint or property."""
    return models.CharField(
        verbose_name, max_length=IDENTIFIER_MAX_LENGTH, validators=[identifier_validator]
    )
