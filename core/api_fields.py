"""Input fields for the API serializers: strict about JSON types, as the reference schema is.

A number is not a string and ``"true"`` is not a boolean. (Comments, not docstrings, on classes
that drf-spectacular would publish as schema descriptions.)
"""

import json

from rest_framework import exceptions, serializers

from core.identifiers import IDENTIFIER_MAX_LENGTH, identifier_validator


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdentifierField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", IDENTIFIER_MAX_LENGTH)
        super().__init__(validators=[identifier_validator], **kwargs)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


# A JSON integer; as in JSON Schema, a number with a zero fraction (10.0) is one.
class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# Any JSON value, null included; numbers too large for a double (1e400) are refused.
class JSONValueField(serializers.JSONField):
    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data):
        try:
            json.dumps(data, allow_nan=False)
        except ValueError:
            raise serializers.ValidationError("a number is too large") from None
        return data


# An object with ``additionalProperties: false``: an unknown key is a 400 naming it. ``refused``
# maps keys the reference knows but this server does not support to the reason.
class ClosedSerializer(serializers.Serializer):
    refused: dict = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for key in data:
                if key in self.refused:
                    raise exceptions.ValidationError({key: [self.refused[key]]})
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise exceptions.ValidationError({unknown[0]: ["unknown field"]})
        return super().to_internal_value(data)
