"""The hot paths' shortcuts keep every check: remembered tokens, one round trip per request."""

from __future__ import annotations

import inspect
import logging
import time
from collections import defaultdict

import blinker
import flask
import jwt as pyjwt
import pytest
import werkzeug.test
from flask_jwt_extended import jwt_required

from sessionsvc.extension import sessionsvc
from sessionsvc.store import StoreError
from sessionsvc.telemetry import new_metrics
from sessionsvc.tokens.access import remembered_payload
from sessionsvc.web import errors, verify
from sessionsvc.web.auth import session_required
from sessionsvc.web.ratelimit import limited
from tests.conftest import commands_run
from tests.support import JWT_SECRET, auth, free_port, login

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
    assert FALLBACKS + "{" not in served.get("/metrics").get_data(as_text=True)  # not a fault


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


# --- A fault of the fast path: Flask answers, and it is counted and logged ------------------

FALLBACKS = "sessionsvc_verify_fast_path_fallbacks_total"


def fallbacks(app, error: str) -> float | None:
    return sessionsvc(app).metrics.registry.get_sample_value(FALLBACKS, {"error": error})


def test_a_fault_of_the_fast_path_is_answered_by_flask_counted_and_logged(
    both_paths, app, monkeypatch, caplog
):
    served, flask_alone, handled = both_paths
    token = login(served)["accessToken"]
    store = sessionsvc(app).store
    check = store.held  # verify's one store call

    def check_failing_outside_flask(*args, **kwargs):
        # A fault only the fast path has: it calls the store outside any request context.
        if not flask.has_request_context():
            raise RuntimeError("a fault of the fast path")
        return check(*args, **kwargs)

    monkeypatch.setattr(store, "held", check_failing_outside_flask)
    handled.clear()

    with caplog.at_level(logging.WARNING, logger="sessionsvc.web.verify"):
        first = served.get(VERIFY, headers=auth(token))
        second = served.get(VERIFY, headers=auth(token))

    assert handled == [1, 1]  # Flask answered both
    assert first.status_code == second.status_code == 200
    assert answer(first) == answer(flask_alone.get(VERIFY, headers=auth(token)))
    assert fallbacks(app, "RuntimeError") == 2
    warnings = [r for r in caplog.records if r.name == "sessionsvc.web.verify"]
    assert len(warnings) == 1  # once per error class and worker
    assert warnings[0].levelno == logging.WARNING
    line = warnings[0].getMessage()
    assert "RuntimeError" in line and "check_failing_outside_flask" in line
    assert token not in caplog.text and "a fault of the fast path" not in caplog.text


def test_a_signed_token_without_our_claims_goes_to_flask_uncounted(both_paths, app):
    served, flask_alone, handled = both_paths
    now = int(time.time())
    claims = {"sub": "alice", "exp": now + 60, "type": "access", "jti": "j" * 22}
    token = pyjwt.encode(claims | {"iss": "sessionsvc", "aud": "sessionsvc"}, JWT_SECRET)
    handled.clear()

    response = served.get(VERIFY, headers=auth(token))

    assert handled == [1]
    assert response.json["code"] == "INVALID_TOKEN"
    assert answer(response) == answer(flask_alone.get(VERIFY, headers=auth(token)))
    assert FALLBACKS + "{" not in served.get("/metrics").get_data(as_text=True)


# --- The tripwire: no work on verify that the fast path would skip --------------------------


def audit(*args):
    """Stand for a hook somebody adds (an audit log, say)."""
    return args[0] if args else None


@pytest.mark.parametrize(
    "kind",
    [
        "url_value_preprocessor",
        "before_request",
        "after_request",
        "teardown_request",
        "url_defaults",
    ],
)
def test_an_app_refuses_to_start_when_verify_gains_a_hook(make_app, monkeypatch, kind):
    # A copy of the blueprint's hooks with one more, as @verify.bp.<kind> would add it.
    funcs = verify.HOOKS[kind]
    hooks = defaultdict(list, {k: list(v) for k, v in getattr(verify.bp, funcs).items()})
    hooks[None].append(audit)
    monkeypatch.setattr(verify.bp, funcs, hooks)

    with pytest.raises(verify.FastPathConflict, match=rf"{kind} hook tests\.test_hot_paths\.audit"):
        make_app()


def test_an_app_refuses_to_start_when_verify_gains_an_error_handler(make_app, monkeypatch):
    # A copy of the blueprint's handlers with one more, as @verify.bp.errorhandler would add it.
    handlers = defaultdict(lambda: defaultdict(dict))
    handlers[None][None][StoreError] = audit
    monkeypatch.setattr(verify.bp, "error_handler_spec", handlers)

    with pytest.raises(
        verify.FastPathConflict,
        match=r"error handler tests\.test_hot_paths\.audit for StoreError on blueprint verify",
    ):
        make_app()


@pytest.mark.parametrize("signal", verify.SIGNALS, ids=lambda signal: signal.name)
def test_an_app_refuses_to_start_with_a_signal_receiver_for_any_app(make_app, signal):
    # As Sentry's integration connects its receivers: for every sender.
    signal.connect(audit)
    try:
        with pytest.raises(
            verify.FastPathConflict, match=rf"{signal.name} receiver tests\.test_hot_paths\.audit"
        ):
            make_app()
    finally:
        signal.disconnect(audit)


def test_the_tripwire_watches_every_signal_flask_has():
    sent = {s for s in vars(flask.signals).values() if isinstance(s, blinker.NamedSignal)}

    assert set(verify.SIGNALS) == sent


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"TESTING": False},
        {"RATELIMIT_ENABLED": True},
        {"REFRESH_TOKEN_TRANSPORT": "cookie", "CORS_ORIGINS": ["https://app.example"]},
        {"TRUSTED_PROXIES": ["127.0.0.1", "::1"], "UI_PATH": ""},
    ],
    ids=["defaults", "not testing", "rate limits", "cookies and CORS", "proxies, no page"],
)
def test_the_app_as_shipped_passes_the_tripwire(make_app, settings):
    app = make_app(**settings)  # create_app runs the check

    assert verify.check_fast_path(app) is None


def forwarded(app):
    """Stand for a receiver somebody connects (a tracer, say), on this app."""
    flask.request_started.connect(audit, app)


def handler_on_another_metrics(app):
    errors.register_error_handlers(app, new_metrics())


def without_the_sessionsvc_error_handler(app):
    del app.error_handler_spec[None][None][errors.SessionsvcError]


# Each kind of work Flask would do on verify, added to an app as made, and how it is named.
ADDED = {
    "before_request": (lambda app: app.before_request(audit), r"before_request hook [\w.]*audit"),
    "teardown_request": (
        lambda app: app.teardown_request(audit),
        r"teardown_request hook [\w.]*audit",
    ),
    "teardown_appcontext": (
        lambda app: app.teardown_appcontext(audit),
        r"teardown_appcontext hook [\w.]*audit",
    ),
    "url_value_preprocessor": (
        lambda app: app.url_value_preprocessor(audit),
        r"url_value_preprocessor hook [\w.]*audit",
    ),
    "url_defaults": (lambda app: app.url_defaults(audit), r"url_defaults hook [\w.]*audit"),
    "error handler of an answered error": (
        lambda app: app.register_error_handler(errors.TokenRevoked, audit),
        r"error handler [\w.]*audit for TokenRevoked",
    ),
    "error handler of their base": (
        lambda app: app.register_error_handler(errors.SessionsvcError, audit),
        r"error handler [\w.]*audit for SessionsvcError",
    ),
    "error handler of another error": (
        lambda app: app.register_error_handler(KeyError, audit),
        r"error handler [\w.]*audit for KeyError",
    ),
    "error handler of a status": (
        lambda app: app.register_error_handler(401, audit),
        r"error handler [\w.]*audit for Unauthorized",
    ),
    "the app's error handler on other objects": (
        handler_on_another_metrics,
        r"handle_sessionsvc_error for SessionsvcError closing over another metrics",
    ),
    "no handler of the answered errors": (
        without_the_sessionsvc_error_handler,
        r"handle_unexpected_error for TokenRevoked, which the fast path answers as "
        r"[\w.<>]*handle_sessionsvc_error does",
    ),
    "signal receiver for this app": (forwarded, r"request-started receiver [\w.]*audit"),
}


@pytest.mark.parametrize(("add", "named"), ADDED.values(), ids=ADDED.keys())
def test_an_app_refuses_to_start_when_it_gains_work_on_verify(make_app, add, named):
    app = make_app()
    assert verify.check_fast_path(app) is None  # the app as made passes

    add(app)
    try:
        with pytest.raises(verify.FastPathConflict, match=named):
            verify.check_fast_path(app)
    finally:  # a receiver outlives its app: leave none for the tests after
        flask.request_started.disconnect(audit)


def test_a_receiver_for_another_app_is_not_this_ones(make_app):
    app, other = make_app(), make_app()
    flask.request_started.connect(audit, other)
    try:
        assert verify.check_fast_path(app) is None
        with pytest.raises(verify.FastPathConflict, match="request-started receiver"):
            verify.check_fast_path(other)
    finally:
        flask.request_started.disconnect(audit)


def test_the_apps_own_error_handlers_registered_again_pass(app):
    errors.register_error_handlers(app, sessionsvc(app).metrics)

    assert verify.check_fast_path(app) is None


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


def undecorated(view):
    """Stand for verify's view without its session check."""
    return inspect.unwrap(view)


@pytest.mark.parametrize(
    ("decorate", "named"),
    [
        (
            lambda view: jwt_required(optional=True, locations=["cookies"])(undecorated(view)),
            r"decorator [\w.<>]*jwt_required[\w.<>]* on verify\.verify_session with "
            r"locations=\['cookies'\], optional=True, skip_revocation_check=False, "
            r"unlike the session_required\(view_checks_session=True\)",
        ),
        (
            lambda view: session_required()(undecorated(view)),  # a second round trip
            r"with skip_revocation_check=False, unlike",
        ),
        (
            lambda view: jwt_required(fresh=True, skip_revocation_check=True)(undecorated(view)),
            r"with fresh=True, unlike",
        ),
        (undecorated, r"verify\.verify_session with 0 of session_required"),
        (
            lambda view: session_required(view_checks_session=True)(view),
            r"verify\.verify_session with 2 of session_required",
        ),
    ],
    ids=["optional in cookies", "revocation checked", "fresh", "none", "two"],
)
def test_an_app_refuses_to_start_when_verifys_session_check_changes(make_app, decorate, named):
    app = make_app()
    app.view_functions[verify.ENDPOINT] = decorate(app.view_functions[verify.ENDPOINT])

    with pytest.raises(verify.FastPathConflict, match=named):
        verify.check_fast_path(app)


def test_the_session_check_is_compared_by_its_arguments_not_its_making(make_app):
    # The same check, made again by flask-jwt-extended's own decorator: nothing differs.
    app = make_app()
    view = jwt_required(skip_revocation_check=True)(inspect.unwrap(verify.verify_session))
    app.view_functions[verify.ENDPOINT] = view

    assert verify.check_fast_path(app) is None


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
