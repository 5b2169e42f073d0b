"""The shapes of the API's successes (SPEC section 9), checked alike by every API test module:
a JSON 200, or an empty 200 with no Content-Type and ``Content-Length: 0``."""


def assert_json_ok(response):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def assert_empty_ok(response):
    assert response.status_code == 200, response.content
    assert response.content == b""
    assert "Content-Type" not in response
    assert response["Content-Length"] == "0"
