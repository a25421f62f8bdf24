"""Bad input on every endpoint: a clear JSON 4xx, and nothing written."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest

from tests.support import JWT_SECRET, SERVICE_KEY, auth, login

ANY_ID = "AAAAAAAAAAAAAAAAAAAAAA"
SERVICE = {"X-Service-Key": SERVICE_KEY}

# (method, path, credential): every endpoint that takes input.
ENDPOINTS = [
    ("POST", "/api/sessions", "service"),
    ("POST", "/api/sessions/refresh", "refresh"),
    ("GET", "/api/sessions", "access"),
    ("GET", "/api/sessions/verify", "access"),
    ("DELETE", "/api/sessions", "access"),
    ("DELETE", f"/api/sessions/{ANY_ID}", "access"),
    ("GET", "/api/admin/users/alice/sessions", "service"),
    ("DELETE", "/api/admin/users/alice/sessions", "service"),
    ("DELETE", f"/api/admin/users/alice/sessions/{ANY_ID}", "service"),
]
TOKEN_ENDPOINTS = [e for e in ENDPOINTS if e[2] != "service"]


@pytest.fixture
def victim(client):
    """A live session whose keys must come through every bad request unchanged."""
    return login(client)


def credential(kind: str, body: dict) -> dict[str, str]:
    if kind == "service":
        return SERVICE
    return auth(body["refreshToken"] if kind == "refresh" else body["accessToken"])


def assert_clear_refusal(response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, response.data
    if status:
        assert response.status_code == status
    assert response.is_json, response.data
    assert set(response.json) == {"code", "error"}
    assert response.json["code"].isupper()
    assert response.json["error"]


@pytest.mark.parametrize(("method", "path", "kind"), ENDPOINTS)
def test_a_huge_body_gets_413_on_every_endpoint(client, snapshot, victim, method, path, kind):
    before = snapshot()

    response = client.open(
        path,
        method=method,
        data=b'{"userId": "' + b"a" * 20_000 + b'"}',
        content_type="application/json",
        headers=credential(kind, victim),
    )

    assert_clear_refusal(response, 413)
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "kind"), ENDPOINTS)
def test_huge_headers_get_431_on_every_endpoint(client, snapshot, victim, method, path, kind):
    before = snapshot()

    response = client.open(
        path,
        method=method,
        headers={**credential(kind, victim), "User-Agent": "Mozilla/5.0 " + "x" * 9_000},
    )

    assert_clear_refusal(response, 431)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"userId": "alice"}', "text/plain"),
        (b"userId=alice", "application/x-www-form-urlencoded"),
        (b'{"userId": "alice"', "application/json"),
        (b'{"userId": "al\xffice"}', "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"", "application/json"),
        (b"null", "application/json"),
        (b'{"userId": "alice", "userAgent": "\xc3\x28"}', "application/json"),
    ],
)
def test_a_login_body_that_is_not_a_json_object_is_refused(client, snapshot, data, content_type):
    response = client.post("/api/sessions", data=data, content_type=content_type, headers=SERVICE)

    assert_clear_refusal(response, 400)
    assert snapshot() == {}


def test_a_big_user_agent_within_limits_is_capped_not_refused(client, redis, store):
    body = login(client, user_agent="Mozilla/5.0 (X11; Linux x86_64) " + "y" * 5_000)

    key = store.session_key("alice", body["session"]["_id"])
    assert max(len(value) for value in redis.hgetall(key).values()) <= 64
    assert redis.object("encoding", key) == "listpack"


@pytest.mark.parametrize(
    "session_id",
    [
        "*",
        "%7B",
        "%7D",
        "a:b",
        "%2A%7Balice%7D",
        "..",
        "%2e%2e",
        "..%2Fsessions",
        "%FF%FE",
        ANY_ID + "A",
    ],
)
@pytest.mark.parametrize("prefix", ["/api/sessions", "/api/admin/users/alice/sessions"])
def test_tricky_session_ids_are_not_found(client, snapshot, victim, prefix, session_id):
    headers = SERVICE if "admin" in prefix else auth(victim["accessToken"])
    before = snapshot()

    response = client.delete(f"{prefix}/{session_id}", headers=headers)

    assert_clear_refusal(response)
    assert response.status_code in (404, 405)
    assert snapshot() == before


@pytest.mark.parametrize("user_id", ["*", "%7Balice%7D", "a:b%7D", "%FF", "a%20b", "a" * 129])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_tricky_user_ids_are_refused_by_the_admin_api(client, snapshot, victim, user_id, method):
    before = snapshot()

    response = client.open(f"/api/admin/users/{user_id}/sessions", method=method, headers=SERVICE)

    assert_clear_refusal(response, 400)
    assert snapshot() == before


def forged(victim: dict, token_type: str, *, key=JWT_SECRET, algorithm="HS256", **changes) -> str:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "sid": victim["session"]["_id"],
        "jti": "j" * 22,
        "iat": now,
        "exp": now + 60,
        "type": token_type,
        "iss": "sessionsvc",
        "aud": "sessionsvc",
    } | changes
    claims = {name: value for name, value in claims.items() if value is not None}
    return pyjwt.encode(claims, key, algorithm=algorithm)


BAD_TOKENS = {
    "another key": {"key": "not-our-secret-" + "z" * 64},
    "another algorithm": {"algorithm": "HS512"},
    "no sid": {"sid": None},
    "no exp": {"exp": None},
    "no jti": {"jti": None},
    "a path trick as sid": {"sid": "../../x"},
    "a hash tag as sub": {"sub": "{alice}"},
}


@pytest.mark.parametrize("bad", BAD_TOKENS)
@pytest.mark.parametrize(("method", "path", "kind"), TOKEN_ENDPOINTS)
def test_bad_tokens_are_refused_on_every_token_endpoint(
    client, snapshot, victim, method, path, kind, bad
):
    token = forged(victim, kind, **BAD_TOKENS[bad])
    before = snapshot()

    response = client.open(path, method=method, headers=auth(token))

    assert_clear_refusal(response, 401)
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "kind"), TOKEN_ENDPOINTS)
def test_non_utf8_authorization_is_refused(client, snapshot, victim, method, path, kind):
    before = snapshot()

    response = client.open(
        path, method=method, headers={"Authorization": "Bearer \xff\xfe".encode("latin-1")}
    )

    assert_clear_refusal(response, 401)
    assert snapshot() == before
