"""The hot paths' shortcuts keep every check: remembered tokens, one round trip per request."""

from __future__ import annotations

import time
from collections import defaultdict

import flask
import pytest
import werkzeug.test

from sessionsvc.tokens.access import remembered_payload
from sessionsvc.web import verify
from sessionsvc.web.ratelimit import limited
from tests.conftest import commands_run
from tests.support import auth, free_port, login

VERIFY = "/api/sessions/verify"


# --- Remembered tokens: only the signature check is saved, never expiry or revocation -------


def test_a_remembered_token_is_refused_once_expired(make_app):
    # exp is in whole seconds: 2 s from now is 1 to 2 s away, enough for the first check.
    client = make_app(JWT_ACCESS_TOKEN_EXPIRES=2).test_client()
    token = login(client)["accessToken"]
    assert client.get(VERIFY, headers=auth(token)).status_code == 200  # verified, remembered

    time.sleep(2.1)
    response = client.get(VERIFY, headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_EXPIRED"


def test_a_remembered_token_is_refused_once_its_session_is_revoked(client):
    body = login(client)
    token = body["accessToken"]
    assert client.get(VERIFY, headers=auth(token)).status_code == 200

    client.delete("/api/sessions", headers=auth(token))
    response = client.get(VERIFY, headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


@pytest.mark.parametrize(
    "other_settings",
    [{"JWT_SECRET_KEY": "another-secret-" + "z" * 48}, {"JWT_AUDIENCE": "another-service"}],
    ids=["another key", "another audience"],
)
def test_a_token_remembered_under_some_settings_is_refused_under_others(make_app, other_settings):
    first = make_app().test_client()
    token = login(first)["accessToken"]
    assert first.get(VERIFY, headers=auth(token)).status_code == 200

    other = make_app(**other_settings).test_client()
    response = other.get(VERIFY, headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


def test_a_refresh_token_is_refused_as_an_access_token_after_its_own_use(client):
    refresh = login(client)["refreshToken"]
    rotated = client.post("/api/sessions/refresh", headers=auth(refresh)).json

    response = client.get(VERIFY, headers=auth(rotated["refreshToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


def test_only_access_tokens_are_remembered(client):
    body = login(client)
    remembered_payload.cache_clear()

    rotated = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    assert rotated.status_code == 200
    assert remembered_payload.cache_info().currsize == 0  # used once: nothing to gain

    assert client.get(VERIFY, headers=auth(body["accessToken"])).status_code == 200
    assert remembered_payload.cache_info().currsize == 1


# --- Verify in front of Flask (verify.py): Flask's answers, without its request cycle ------


@pytest.fixture
def both_paths(app):
    """Return a request function for the app as served, one for its Flask app alone, and a
    counter of the requests Flask itself handled."""
    handled = []
    flask_alone = werkzeug.test.Client(app.wsgi_app.wsgi_app, app.response_class)
    served = app.test_client()

    def count(sender, **extra):
        handled.append(1)

    flask.request_started.connect(count, app)
    yield served, flask_alone, handled
    flask.request_started.disconnect(count, app)


def answer(response) -> tuple[str, bytes, dict[str, str]]:
    headers = dict(response.headers)
    assert headers.pop("X-Request-Id")  # both give one; each its own unless the caller's
    return response.status, response.get_data(), headers


FAST = [
    ("GET", VERIFY, {}),
    ("HEAD", VERIFY, {}),
    ("POST", VERIFY + "/orders/42", {}),
    ("DELETE", VERIFY + "/", {}),
    ("PATCH", VERIFY, {"X-Request-Id": "gateway-req.1"}),
]
BY_FLASK = [
    ("GET", VERIFY, {"Authorization": "bearer {token}"}),
    ("GET", VERIFY, {"Authorization": "Bearer  {token}"}),
    ("GET", VERIFY, {"Authorization": "Bearer {token}, Basic eA=="}),
    ("GET", VERIFY, {"Authorization": "Bearer not.a.jwt"}),
    ("GET", VERIFY, {"Authorization": "Bearer {refresh}"}),
    ("GET", VERIFY, {"Authorization": ""}),
    ("OPTIONS", VERIFY, {}),
    ("POST", VERIFY, {"Content-Length": "2"}),
    ("GET", VERIFY + "x", {}),
    ("GET", VERIFY + "//x", {}),
    ("GET", VERIFY, {"X-Padding": "p" * 9000}),
]


def send(client, method, path, headers, body):
    values = {
        k: v.format(token=body["accessToken"], refresh=body["refreshToken"])
        for k, v in headers.items()
    }
    headers = auth(body["accessToken"]) | values
    data = b"{}" if headers.get("Content-Length") else None
    return client.open(path, method=method, headers=headers, data=data)


@pytest.mark.parametrize("revoked", [False, True], ids=["live", "revoked"])
@pytest.mark.parametrize(("method", "path", "headers"), FAST)
def test_verify_answers_without_flask_as_flask_would(both_paths, method, path, headers, revoked):
    served, flask_alone, handled = both_paths
    body = login(served)
    if revoked:
        served.delete("/api/sessions", headers=auth(body["accessToken"]))
    handled.clear()

    fast = send(served, method, path, headers, body)
    assert handled == []  # Flask never saw it
    slow = send(flask_alone, method, path, headers, body)
    assert handled == [1]

    assert answer(fast) == answer(slow)
    assert fast.status_code == (401 if revoked else 200)
    if "X-Request-Id" in headers:
        assert fast.headers["X-Request-Id"] == headers["X-Request-Id"]


@pytest.mark.parametrize(("method", "path", "headers"), BY_FLASK)
def test_verify_leaves_every_other_case_to_flask(both_paths, method, path, headers):
    served, flask_alone, handled = both_paths
    body = login(served)
    handled.clear()

    response = send(served, method, path, headers, body)

    assert handled == [1]
    assert answer(response) == answer(send(flask_alone, method, path, headers, body))


def test_verify_without_flask_answers_a_store_failure_as_flask_would(make_app, client):
    token = login(client)["accessToken"]
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_RETRIES=0)
    handled = []
    flask.request_started.connect(lambda sender, **extra: handled.append(1), down, weak=False)
    flask_alone = werkzeug.test.Client(down.wsgi_app.wsgi_app, down.response_class)

    fast = down.test_client().get(VERIFY, headers=auth(token))
    assert handled == []
    slow = flask_alone.get(VERIFY, headers=auth(token))

    assert answer(fast) == answer(slow)
    assert fast.json["code"] == "STORE_UNAVAILABLE"
    metrics = down.test_client().get("/metrics").get_data(as_text=True)
    assert "sessionsvc_store_errors_total 2.0" in metrics


def test_verify_without_flask_counts_in_the_same_metrics(both_paths):
    served, _, _ = both_paths
    token = login(served)["accessToken"]
    served.get(VERIFY, headers=auth(token))
    served.get(VERIFY, headers=auth(token))

    metrics = served.get("/metrics").get_data(as_text=True)

    labels = '{endpoint="verify.verify_session",status="200"}'
    assert f"sessionsvc_http_requests_total{labels} 2.0" in metrics
    assert f"sessionsvc_http_request_duration_seconds_count{labels} 2.0" in metrics


# --- The tripwire: no work on verify that the fast path would skip --------------------------


def audit(*args):
    """Stand for a hook somebody adds (an audit log, say)."""
    return args[0] if args else None


@pytest.mark.parametrize("kind", ["before_request", "after_request"])
def test_an_app_refuses_to_start_when_verify_gains_a_hook(make_app, monkeypatch, kind):
    # A copy of the blueprint's hooks with one more, as @verify.bp.<kind> would add it.
    funcs = f"{kind}_funcs"
    hooks = defaultdict(list, {k: list(v) for k, v in getattr(verify.bp, funcs).items()})
    hooks[None].append(audit)
    monkeypatch.setattr(verify.bp, funcs, hooks)

    with pytest.raises(verify.FastPathConflict, match=rf"{kind} hook tests\.test_hot_paths\.audit"):
        make_app()


def test_an_app_refuses_to_start_when_it_gains_a_hook(make_app):
    app = make_app()
    assert verify.check_fast_path(app) is None  # the app as created passes

    app.before_request(audit)

    with pytest.raises(
        verify.FastPathConflict, match=r"before_request hook tests\.test_hot_paths\.audit"
    ):
        verify.check_fast_path(app)


def unwrapped(view):
    """Stand for a decorator that does not use functools.wraps."""
    return lambda *args, **kwargs: view(*args, **kwargs)


@pytest.mark.parametrize(
    ("decorator", "named"),
    [
        (limited, r"sessionsvc\.web\.ratelimit\.limited\.<locals>\.wrapper"),
        (unwrapped, "unwrapped"),
    ],
    ids=["wraps", "no wraps"],
)
def test_an_app_refuses_to_start_when_verify_gains_a_decorator(make_app, decorator, named):
    app = make_app()
    app.view_functions[verify.ENDPOINT] = decorator(app.view_functions[verify.ENDPOINT])

    with pytest.raises(verify.FastPathConflict, match=rf"decorator [^;]*{named}"):
        verify.check_fast_path(app)


def test_a_hook_of_another_blueprint_is_not_verifys(make_app):
    # A hook of another blueprint never runs on verify: nothing for the fast path to skip.
    app = make_app()
    app.before_request_funcs["admin"].append(audit)

    assert verify.check_fast_path(app) is None


def test_default_rate_limits_never_reach_verify(make_app):
    # The fast path cannot apply a limit, so Flask's path of verify must not either.
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1 per minute").test_client()
    codes = [client.get("/api/sessions/verify").json["code"] for _ in range(3)]

    assert codes == ["MISSING_TOKEN"] * 3
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/openapi.json").status_code == 429  # the default limit is in force


# --- List and revoke check the caller's session inside their own script ---------------------


def test_a_revoked_caller_cannot_revoke_its_users_other_sessions(client):
    gone, other = login(client), login(client)
    client.delete(f"/api/sessions/{gone['session']['_id']}", headers=auth(gone["accessToken"]))

    response = client.delete(
        f"/api/sessions/{other['session']['_id']}", headers=auth(gone["accessToken"])
    )

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"
    assert client.get(VERIFY, headers=auth(other["accessToken"])).status_code == 200


@pytest.mark.parametrize("session_id", ["not-an-id", "A" * 22])
def test_a_revoked_caller_gets_401_not_404(client, session_id):
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    response = client.delete(f"/api/sessions/{session_id}", headers=auth(body["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


def test_a_revoked_caller_cannot_list(client):
    body = login(client)
    login(client)  # another live session of the same user
    client.delete(f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"]))

    response = client.get("/api/sessions", headers=auth(body["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


def test_an_idle_caller_cannot_list_and_its_session_is_pruned(make_app, redis, store):
    client = make_app(SESSION_IDLE_TIMEOUT=1).test_client()
    idle = login(client)
    time.sleep(1.2)
    fresh = login(client)

    response = client.get("/api/sessions", headers=auth(idle["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"
    index = redis.zrange(store.index_key("alice"), 0, -1)
    assert index == [fresh["session"]["_id"]]


# --- Round trips, counted by the server itself (conftest: counted, commands_run) ----------


def test_list_is_one_round_trip(counted):
    client, server = counted
    token = login(client)["accessToken"]
    login(client)
    client.get("/api/sessions", headers=auth(token))  # loads the script once

    ran = commands_run(
        server,
        lambda: [client.get("/api/sessions", headers=auth(token)) for _ in range(5)],
        top_level=True,
    )

    assert ran == {"evalsha": 5}


def test_revoke_is_one_round_trip(counted):
    client, server = counted
    caller = login(client)
    others = [login(client)["session"]["_id"] for _ in range(3)]
    client.delete(f"/api/sessions/{others.pop()}", headers=auth(caller["accessToken"]))

    def revoke_two() -> None:
        for session_id in others:
            response = client.delete(
                f"/api/sessions/{session_id}", headers=auth(caller["accessToken"])
            )
            assert response.status_code == 200

    assert commands_run(server, revoke_two, top_level=True) == {"evalsha": 2}
