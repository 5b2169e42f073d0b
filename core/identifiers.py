"""The identifier rule shared by devices, buckets, endpoints and properties (SPEC: ids)."""

from django.core.validators import RegexValidator

IDENTIFIER_PATTERN = r"[a-zA-Z0-9_-]{1,32}"
IDENTIFIER_MAX_LENGTH = 32

identifier_validator = RegexValidator(
    rf"^{IDENTIFIER_PATTERN}\Z",
    "Use 1 to 32 letters, digits, '_' or '-'.",
)
