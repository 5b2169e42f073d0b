"""The callback's refusals, as DRF exceptions: the project's exception handler writes their JSON
error body, and ``wait`` becomes the ``Retry-After`` header."""

from rest_framework.exceptions import APIException


class CallbackError(APIException):
    """A callback refused with an HTTP status and a message; ``wait`` (seconds) for 429 and 503."""

    def __init__(self, status, message, *, wait=None):
        super().__init__(message)
        self.status_code = status
        self.message = message
        self.wait = wait
