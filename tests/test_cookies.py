"""The browser mode's server side: the refresh cookie, CSRF, CORS, the page's headers."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from tests.support import SERVICE_KEY, auth, login

COOKIE = "__Secure-sessionsvc-refresh"
CSRF = {"X-Requested-With": "sessionsvc"}
APP_ORIGIN = "https://app.example"


def set_cookie(response) -> dict[str, str] | None:
    """Return the refresh cookie's value and attributes as the response sets them, or None."""
    for line in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie(line)
        if COOKIE in parsed:
            morsel = parsed[COOKIE]
            return {"value": morsel.value, **{k: v for k, v in morsel.items() if v}}
    return None


@pytest.fixture
def cookie_client(make_app):
    return make_app(REFRESH_TOKEN_TRANSPORT="cookie").test_client()


def cors_headers(response) -> list[str]:
    return [name for name, _ in response.headers if name.startswith("Access-Control-")]


def browser_login(client, user_id: str = "alice") -> dict:
    response = client.post(
        "/api/sessions", json={"userId": user_id}, headers={"X-Service-Key": SERVICE_KEY}
    )
    assert response.status_code == 201, response.json
    return response


def test_body_mode_is_the_default_and_sets_no_cookie(client):
    response = client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )

    assert list(response.json) == ["accessToken", "refreshToken", "session", "deviceToken", "risk"]
    assert set_cookie(response) is None


def test_cookie_mode_hands_the_refresh_token_over_as_a_cookie_only(cookie_client):
    response = browser_login(cookie_client)

    assert list(response.json) == ["accessToken", "session", "deviceToken", "risk"]
    cookie = set_cookie(response)
    assert cookie["path"] == "/api/sessions/refresh"
    assert cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert int(cookie["max-age"]) == pytest.approx(1_209_600, abs=2)  # to the session's end
    assert response.headers["Cache-Control"] == "no-store"


def test_refresh_reads_the_cookie_rotates_it_and_answers_the_access_token(cookie_client):
    first = set_cookie(browser_login(cookie_client))["value"]

    response = cookie_client.post("/api/sessions/refresh", headers=CSRF)

    assert response.status_code == 200, response.json
    assert list(response.json) == ["accessToken"]
    assert response.headers["Cache-Control"] == "no-store"
    rotated = set_cookie(response)["value"]
    assert rotated != first
    listed = cookie_client.get("/api/sessions", headers=auth(response.json["accessToken"]))
    assert listed.status_code == 200


def test_a_cookie_without_the_csrf_header_is_refused_and_nothing_rotates(cookie_client):
    first = set_cookie(browser_login(cookie_client))["value"]

    response = cookie_client.post("/api/sessions/refresh")

    assert response.status_code == 403
    assert response.json == {
        "code": "CSRF_REJECTED",
        "error": "A request authenticated by a cookie must carry the X-Requested-With header.",
    }
    assert set_cookie(response) is None
    # The same token still rotates: the refused request changed nothing.
    cookie_client.set_cookie(COOKIE, first, path="/api/sessions/refresh")
    assert cookie_client.post("/api/sessions/refresh", headers=CSRF).status_code == 200


def test_a_reused_cookie_revokes_the_session_and_is_cleared(make_app):
    client = make_app(REFRESH_TOKEN_TRANSPORT="cookie", REFRESH_REUSE_GRACE=0).test_client()
    login_response = browser_login(client)
    stolen = set_cookie(login_response)["value"]
    assert client.post("/api/sessions/refresh", headers=CSRF).status_code == 200

    client.set_cookie(COOKIE, stolen, path="/api/sessions/refresh")
    response = client.post("/api/sessions/refresh", headers=CSRF)

    assert response.json["code"] == "REFRESH_TOKEN_REUSED"
    assert set_cookie(response)["max-age"] == "0"
    access = login_response.json["accessToken"]
    assert client.get("/api/sessions", headers=auth(access)).json["code"] == "TOKEN_REVOKED"


def test_an_authorization_header_wins_over_the_cookie(cookie_client, client):
    set_cookie(browser_login(cookie_client))
    body = login(client)

    response = cookie_client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert list(response.json) == ["accessToken", "refreshToken"]
    assert set_cookie(response) is None


@pytest.mark.parametrize(
    ("path", "own", "cleared"),
    [
        ("/api/sessions", None, True),
        ("/api/sessions?keep=current", None, False),
        ("/api/sessions/{own}", True, True),
    ],
)
def test_signing_out_this_session_clears_the_cookie(cookie_client, path, own, cleared):
    body = browser_login(cookie_client).json
    url = path.format(own=body["session"]["_id"])

    response = cookie_client.delete(url, headers=auth(body["accessToken"]))

    assert response.status_code == 200, response.json
    cookie = set_cookie(response)
    assert (cookie is not None and cookie["max-age"] == "0") is cleared


def test_api_clients_in_body_mode_get_no_cookie_header_on_sign_out(client):
    body = login(client)

    response = client.delete("/api/sessions", headers=auth(body["accessToken"]))

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_the_page_is_sent_with_its_security_headers(client):
    for path in ("/api/account/sessions", "/api/ui/sessionsvc-client.js", "/api/ui/devices.js"):
        with client.get(path) as response:  # a static file's answer holds it open
            assert response.status_code == 200, path
            assert response.headers["Content-Security-Policy"] == (
                "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            )
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            if path.endswith(".js"):
                assert response.mimetype == "text/javascript"


def test_the_page_path_is_configurable_and_can_be_turned_off(make_app):
    moved = make_app(UI_PATH="/me/devices", UI_LOGIN_URL="/signin").test_client()
    page = moved.get("/api/me/devices")
    assert page.status_code == 200
    assert 'href="/signin"' in page.text
    assert moved.get("/api/account/sessions").status_code == 404

    off = make_app(UI_PATH="").test_client()
    assert off.get("/api/account/sessions").json["code"] == "NOT_FOUND"


def test_the_development_sign_in_starts_a_session_as_this_browser(client):
    response = client.post(
        "/api/dev/sign-in",
        json={"userId": "alice", "userAgent": "PostmanRuntime/7.26.8"},
        headers=CSRF,
    )

    assert response.status_code == 201
    assert list(response.json) == ["accessToken", "session", "deviceToken", "risk"]
    assert response.json["session"]["device"]["isDev"] is True
    assert set_cookie(response)["httponly"]


def test_the_development_sign_in_wants_the_csrf_header(client, redis, key_prefix):
    response = client.post("/api/dev/sign-in", json={"userId": "alice"})

    assert response.json["code"] == "CSRF_REJECTED"
    assert list(redis.scan_iter(match=f"{key_prefix}*")) == []


def test_the_development_sign_in_does_not_exist_in_production(make_app, redis, key_prefix):
    client = make_app(ENV="production").test_client()

    response = client.post("/api/dev/sign-in", json={"userId": "alice"}, headers=CSRF)

    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"
    assert "data-dev-sign-in" not in client.get("/api/account/sessions").text
    assert list(redis.scan_iter(match=f"{key_prefix}*")) == []


def test_listed_cors_origins_get_credentials_and_others_nothing(make_app):
    client = make_app(CORS_ORIGINS=[APP_ORIGIN]).test_client()
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-requested-with",
    }

    allowed = client.options("/api/sessions/refresh", headers={"Origin": APP_ORIGIN, **preflight})
    other = client.options(
        "/api/sessions/refresh", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "x-requested-with" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert cors_headers(other) == []


def test_no_cors_origins_means_same_origin_only(client):
    response = client.get("/api/sessions", headers={"Origin": APP_ORIGIN})

    assert cors_headers(response) == []


@pytest.mark.parametrize("path", ["/api/sessions/verify", "/api/sessions/verify/some/page"])
def test_verify_still_refuses_a_preflight_from_a_listed_origin(make_app, path):
    client = make_app(CORS_ORIGINS=[APP_ORIGIN]).test_client()

    response = client.options(
        path, headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"}
    )

    assert response.status_code == 405
    assert cors_headers(response) == []


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"REFRESH_TOKEN_TRANSPORT": "header"}, "REFRESH_TOKEN_TRANSPORT"),
        ({"CORS_ORIGINS": ["*"]}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": 5}, "CORS_ORIGINS"),
        ({"UI_PATH": "account"}, "UI_PATH"),
    ],
)
def test_a_browser_setting_that_cannot_work_is_refused(setting, named):
    with pytest.raises(ConfigError, match=named):
        create_app({"JWT_SECRET_KEY": "x", "SERVICE_KEY": "y", **setting})


def test_cors_origins_read_from_the_environment_as_a_comma_list(make_app):
    client = make_app(CORS_ORIGINS=f"{APP_ORIGIN}, https://other.example").test_client()

    response = client.get("/api/sessions", headers={"Origin": "https://other.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "https://other.example"
