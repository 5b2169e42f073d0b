"""API authentication: OAuth grants, long-lived tokens, scopes and ownership, through HTTP."""

import re
import time

import jwt
import pytest
from django.conf import settings

from tests.factories import UserFactory

PASSWORD = "secret-pass-123"
FORM = "application/x-www-form-urlencoded"


def oauth(client, body):
    return client.post("/oauth/token", body, content_type=FORM)


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def alice_token(client, alice):
    return oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()[
        "access_token"
    ]


def create_token(client, auth, **fields):
    body = {"token": "t1", "name": "Token one", "enabled": True, **fields}
    return client.post("/v1/users/alice/tokens", body, content_type="application/json", **auth)


def test_password_grant_returns_bearer_tokens(client, alice):
    response = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "token_type"}
    assert body["expires_in"] == 7200 and body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["usr"] == "alice"


def test_wrong_password_is_401_with_json_error(client, alice):
    response = oauth(client, "grant_type=password&username=alice&password=nope")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"message": "invalid credentials"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [("grant_type=magic", "grant_type"), ("grant_type=password&username=alice", "username")],
)
def test_malformed_grant_is_400_naming_the_field(client, alice, body, field):
    response = oauth(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(field)


def test_refresh_grant_issues_a_new_access_token(client, alice):
    first = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()
    response = oauth(client, f"grant_type=refresh_token&refresh_token={first['refresh_token']}")
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert client.get("/v1/users/alice/tokens", **bearer(token)).status_code == 200


def test_refresh_token_dies_with_a_password_change(client, alice):
    first = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()
    alice.set_password("another-pass-456")
    alice.save()
    response = oauth(client, f"grant_type=refresh_token&refresh_token={first['refresh_token']}")
    assert response.status_code == 401


def test_an_access_token_is_not_a_refresh_token(client, alice, alice_token):
    response = oauth(client, f"grant_type=refresh_token&refresh_token={alice_token}")
    assert response.status_code == 401


def test_expired_access_token_is_401(client, alice):
    past = int(time.time()) - 10
    token = jwt.encode(
        {"usr": "alice", "typ": "access", "iat": past - 7200, "exp": past},
        settings.SECRET_KEY,
        algorithm="HS256",
    )
    response = client.get("/v1/users/alice/tokens", **bearer(token))
    assert response.status_code == 401
    assert "error" in response.json()


def test_no_credentials_is_401_and_forged_token_is_401(client, alice):
    assert client.get("/v1/users/alice/tokens").status_code == 401
    forged = jwt.encode(
        {"usr": "alice", "typ": "access"}, "not-our-key-but-long-enough-for-it", algorithm="HS256"
    )
    assert client.get("/v1/users/alice/tokens", **bearer(forged)).status_code == 401


def test_token_in_query_string_is_accepted(client, alice, alice_token):
    response = client.get(f"/v1/users/alice/tokens?authorization={alice_token}")
    assert response.status_code == 200


def test_long_lived_token_lifecycle(client, alice, alice_token):
    auth = bearer(alice_token)
    created = create_token(client, auth)
    assert created.status_code == 200
    value = created.json()["access_token"]
    assert created.json()["allow"] == {"*": {"*": "*"}}

    listed = client.get("/v1/users/alice/tokens", **bearer(value))
    assert listed.status_code == 200
    assert [t["token"] for t in listed.json()] == ["t1"]
    assert "access_token" not in listed.json()[0]

    updated = client.put(
        "/v1/users/alice/tokens/t1", {"name": "Renamed"}, content_type="application/json", **auth
    )
    assert updated.status_code == 200 and updated.json()["name"] == "Renamed"

    deleted = client.delete("/v1/users/alice/tokens/t1", **auth)
    assert deleted.status_code == 200
    assert deleted.content == b"" and "Content-Type" not in deleted
    assert client.get("/v1/users/alice/tokens", **bearer(value)).status_code == 401


def test_disabled_or_expired_long_lived_token_is_401(client, alice, alice_token):
    auth = bearer(alice_token)
    value = create_token(client, auth).json()["access_token"]
    client.put(
        "/v1/users/alice/tokens/t1", {"enabled": False}, content_type="application/json", **auth
    )
    assert client.get("/v1/users/alice/tokens", **bearer(value)).status_code == 401

    past_ms = int(time.time() * 1000) - 1000
    expiring = create_token(client, auth, token="t2", expire=past_ms).json()["access_token"]
    assert client.get("/v1/users/alice/tokens", **bearer(expiring)).status_code == 401


def test_scoped_token_is_limited_to_its_allow_list(client, alice, alice_token):
    auth = bearer(alice_token)
    value = create_token(
        client, auth, allow={"Token": {"*": ["ListTokens"]}}, deny={"Token": {"t1": "*"}}
    ).json()["access_token"]
    assert client.get("/v1/users/alice/tokens", **bearer(value)).status_code == 200
    response = client.get("/v1/users/alice/tokens/t1", **bearer(value))
    assert response.status_code == 403
    assert "ReadTokenConfig" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"token": "bad id"}, "token"),
        ({"name": "x" * 256}, "name"),
        ({"enabled": "perhaps"}, "enabled"),
        ({"surprise": 1}, "surprise"),
        ({"allow": ["*"]}, "allow"),
    ],
)
def test_token_validation_names_the_field(client, alice, alice_token, fields, field):
    response = create_token(client, bearer(alice_token), **fields)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(field)


def test_duplicate_token_id_is_400(client, alice, alice_token):
    create_token(client, bearer(alice_token))
    response = create_token(client, bearer(alice_token))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("token")


def test_another_users_path_is_403_but_staff_may_read(client, alice, alice_token):
    create_token(client, bearer(alice_token))
    UserFactory(username="mallory")
    client.force_login(UserFactory(username="mallory"))
    assert client.get("/v1/users/alice/tokens").status_code == 403
    assert client.get("/v1/users/alice/tokens/t1").status_code == 403

    staff = UserFactory(username="sam", is_staff=True)
    client.force_login(staff)
    assert client.get("/v1/users/alice/tokens").status_code == 200
    response = client.delete("/v1/users/alice/tokens/t1")
    assert response.status_code == 403


def test_unknown_token_is_404(client, alice, alice_token):
    response = client.get("/v1/users/alice/tokens/nothing", **bearer(alice_token))
    assert response.status_code == 404
    assert "error" in response.json()


def test_schema_and_offline_docs(client, alice):
    client.force_login(alice)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/v1/users/{user}/tokens" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    bundle = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', html).group(1)
    assert bundle.startswith(settings.STATIC_URL) or bundle.startswith("/" + settings.STATIC_URL)
    asset = client.get(bundle)
    assert asset.status_code == 200
    assert b"SwaggerUIBundle" in b"".join(asset.streaming_content)


# --- Refresh tokens rotate (issue 18, item 8) ------------------------------------------------


def refresh(client, token):
    return oauth(client, f"grant_type=refresh_token&refresh_token={token}")


def test_a_refresh_token_is_spent_by_its_refresh(client, alice):
    first = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()

    second = refresh(client, first["refresh_token"])
    again = refresh(client, first["refresh_token"])

    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert again.status_code == 401


def test_reusing_a_spent_refresh_token_revokes_its_family(client, alice):
    first = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()
    other_login = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()
    second = refresh(client, first["refresh_token"]).json()

    # A copy of the first token comes back: the whole family ends, the newest token included.
    assert refresh(client, first["refresh_token"]).status_code == 401
    assert refresh(client, second["refresh_token"]).status_code == 401
    # Another login's family is not touched; access tokens already issued live out their time.
    assert refresh(client, other_login["refresh_token"]).status_code == 200
    assert (
        client.get("/v1/users/alice/devices", **bearer(second["access_token"])).status_code == 200
    )


def test_a_chain_of_refreshes_works_one_token_at_a_time(client, alice):
    tokens = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()
    for _ in range(5):
        response = refresh(client, tokens["refresh_token"])
        assert response.status_code == 200
        tokens = response.json()
    assert (
        client.get("/v1/users/alice/devices", **bearer(tokens["access_token"])).status_code == 200
    )


# --- Tokens are bound to the account, not its name (issue 18, item 9) --------------------------


def test_tokens_do_not_outlive_their_account(client, alice):
    tokens = oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()
    owner = bearer(tokens["access_token"])
    long_lived = create_token(client, owner, token="gw").json()["access_token"]

    alice.delete()
    # Someone else signs up as "alice" and makes a token of the same id.
    UserFactory(username="alice")
    create_token(
        client,
        bearer(
            oauth(client, f"grant_type=password&username=alice&password={PASSWORD}").json()[
                "access_token"
            ]
        ),
        token="gw",
    )

    for token in (tokens["access_token"], long_lived):
        assert client.get("/v1/users/alice/devices", **bearer(token)).status_code == 401
    assert refresh(client, tokens["refresh_token"]).status_code == 401


def test_a_token_without_the_account_id_is_refused(client, alice):
    now = int(time.time())
    nameless = jwt.encode(
        {"usr": "alice", "typ": "access", "iat": now, "exp": now + 60},
        settings.SECRET_KEY,
        algorithm="HS256",
    )

    assert client.get("/v1/users/alice/devices", **bearer(nameless)).status_code == 401


def test_a_token_with_an_unknown_field_is_400_naming_it(
    client, alice, alice_token, assert_json_error
):
    response = create_token(client, bearer(alice_token), bogus=1)

    assert assert_json_error(response, 400) == "bogus: unknown field"
