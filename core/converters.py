from core.identifiers import IDENTIFIER_PATTERN


class IdentifierConverter:
    regex = IDENTIFIER_PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class TokenIdConverter(IdentifierConverter):
    regex = r"[a-zA-Z0-9_-]{1,50}"
