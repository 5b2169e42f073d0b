"""Gunicorn's access log with every part of a line masked (``thinger_http.log``): the path of a
dashboard's shared link holds its token, and Django's handlers never see these lines."""

from gunicorn.glogging import Logger

from thinger_http.log import mask


class MaskedLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        found = super().atoms(resp, req, environ, request_time)
        return {
            key: mask(value) if isinstance(value, str) else value for key, value in found.items()
        }
