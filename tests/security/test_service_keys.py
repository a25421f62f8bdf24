"""Issue 17 §4: one service key did everything, and admin paths told routes apart.

The attacks: the login service's key (or whoever steals it) lists and revokes
any user's sessions and changes their claims, since one ``X-Service-Key``
opened every route; rotating it meant every caller changing at once. And a
caller without a key told the admin routes from other paths: 401 for a route,
404 for anything else. The defences: named keys with scopes (``SERVICE_KEYS``),
403 ``FORBIDDEN`` for a key without the route's scope, several keys valid at
once, logs naming the key (never its value), and 401 for every path under
``/admin`` without a valid key.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from sessionsvc.config.service_keys import SCOPES, ServiceKey, matching
from sessionsvc.serving import gunicorn_logs
from tests.support import JWT_SECRET, SERVICE_KEY, auth, login

LOGIN_KEY = "login-service-key-" + "l" * 20
SUPPORT_KEY = "support-desk-key-" + "s" * 20
CLAIMS_KEY = "claims-writer-key-" + "c" * 20
KEYS = [
    {"name": "login", "key": LOGIN_KEY, "scopes": ["sessions:create"]},
    {"name": "support", "key": SUPPORT_KEY, "scopes": ["admin:read", "admin:write"]},
    {"name": "roles", "key": CLAIMS_KEY, "scopes": ["claims:write"]},
]
SESSION = "AAAAAAAAAAAAAAAAAAAAAA"
# Every route that takes a service key, and the one scope it needs.
ROUTES = [
    pytest.param("post", "/api/sessions", {"userId": "alice"}, "sessions:create", id="login"),
    pytest.param("get", "/api/admin/users/alice/sessions", None, "admin:read", id="list"),
    pytest.param(
        "get", "/api/admin/users/alice/sessions/history", None, "admin:read", id="history"
    ),
    pytest.param("delete", "/api/admin/users/alice/sessions", None, "admin:write", id="revoke-all"),
    pytest.param(
        "delete", f"/api/admin/users/alice/sessions/{SESSION}", None, "admin:write", id="revoke"
    ),
    pytest.param(
        "put", "/api/admin/users/alice/claims", {"claims": {}}, "claims:write", id="claims"
    ),
    pytest.param(
        "put",
        f"/api/admin/users/alice/sessions/{SESSION}/claims",
        {"claims": {}},
        "claims:write",
        id="session-claims",
    ),
]


def holding(scope: str) -> str:
    return next(entry["key"] for entry in KEYS if scope in entry["scopes"])


def lacking(scope: str) -> list[str]:
    return [entry["key"] for entry in KEYS if scope not in entry["scopes"]]


@pytest.fixture
def keyed(make_app):
    return make_app(SERVICE_KEYS=KEYS).test_client()


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_a_key_without_the_routes_scope_is_forbidden(keyed, snapshot, method, path, body, scope):
    alice = login(keyed)
    before = snapshot()

    for key in lacking(scope):
        response = keyed.open(path, method=method, json=body, headers={"X-Service-Key": key})

        assert (response.status_code, response.json) == (
            403,
            {"code": "FORBIDDEN", "error": f"This service key lacks the scope {scope}."},
        )
    assert snapshot() == before
    assert keyed.get("/api/sessions", headers=auth(alice["accessToken"])).status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
@pytest.mark.parametrize("given", ["SERVICE_KEYS", "SERVICE_KEY"])
def test_a_key_with_the_scope_passes_and_service_key_alone_has_every_scope(
    make_app, method, path, body, scope, given
):
    if given == "SERVICE_KEY":  # as before SERVICE_KEYS: one key, every scope
        client, key = make_app().test_client(), SERVICE_KEY
    else:
        client, key = make_app(SERVICE_KEYS=KEYS).test_client(), holding(scope)

    response = client.open(path, method=method, json=body, headers={"X-Service-Key": key})

    assert response.status_code not in (401, 403), response.json
    assert response.status_code < 500


def test_the_login_key_cannot_list_revoke_or_change_claims(keyed):
    """The issue's case, end to end: the login service's key starts sessions, and no more."""
    login_key = {"X-Service-Key": LOGIN_KEY}
    created = keyed.post("/api/sessions", json={"userId": "alice"}, headers=login_key)
    session_id = created.json["session"]["_id"]

    attempts = [
        keyed.get("/api/admin/users/alice/sessions", headers=login_key),
        keyed.delete("/api/admin/users/alice/sessions", headers=login_key),
        keyed.delete(f"/api/admin/users/alice/sessions/{session_id}", headers=login_key),
        keyed.put("/api/admin/users/alice/claims", json={"claims": {}}, headers=login_key),
    ]

    assert created.status_code == 201
    assert [(a.status_code, a.json["code"]) for a in attempts] == [(403, "FORBIDDEN")] * 4
    live = keyed.get("/api/sessions", headers=auth(created.json["accessToken"]))
    assert live.status_code == 200


def test_every_service_key_route_needs_exactly_one_scope_and_documents_it(app, client):
    document = client.get("/api/openapi.json").json
    keyed_routes = {}  # (path, method): scope
    for rule in app.url_map.iter_rules():
        scope = getattr(app.view_functions[rule.endpoint], "service_key_scope", None)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if scope:
                keyed_routes[rule.rule, method.lower()] = scope
    documented = {
        (path.replace("{", "<").replace("}", ">"), method): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and operation.get("security") == [{"serviceKey": []}]
    }

    assert sorted(keyed_routes.values()) == sorted(
        [
            "sessions:create",
            *["admin:read", "admin:read", "admin:read"],  # sessions, devices, history
            *["admin:write", "admin:write", "admin:write", "admin:write"],  # and rename, forget
            *["claims:write", "claims:write"],
            "sessions:step-up",
            "support:create",
            # web/webhooks.py (issue 20): list deliveries and dead letters; replay one, or since.
            *["admin:read", "admin:read", "admin:write", "admin:write"],
        ]
    )
    assert set(keyed_routes.values()) == set(SCOPES)
    assert set(documented) == set(keyed_routes)
    for route, operation in documented.items():
        assert f"`{keyed_routes[route]}`" in operation["description"]
        forbidden = operation["responses"]["403"]["content"]["application/json"]["schema"]
        assert forbidden["properties"]["code"]["enum"] == ["FORBIDDEN"]


def test_two_keys_are_valid_at_once_for_a_rotation(make_app):
    old_key, new_key = "old-login-key-" + "o" * 20, "new-login-key-" + "n" * 20
    both = [
        {"name": "login-2025", "key": old_key, "scopes": ["sessions:create"]},
        {"name": "login-2026", "key": new_key, "scopes": ["sessions:create"]},
    ]
    during = make_app(SERVICE_KEYS=both).test_client()
    after = make_app(SERVICE_KEY=None, SERVICE_KEYS=both[1:]).test_client()

    def create(client, key):
        return client.post(
            "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": key}
        )

    assert [create(during, key).status_code for key in (old_key, new_key, SERVICE_KEY)] == [201] * 3
    assert [create(after, key).status_code for key in (old_key, new_key, SERVICE_KEY)] == [
        401,
        201,
        401,
    ]


def test_refresh_tokens_work_with_named_keys_alone(make_app):
    client = make_app(SERVICE_KEY=None, SERVICE_KEYS=KEYS, REFRESH_REUSE_GRACE=0).test_client()
    created = client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": LOGIN_KEY}
    ).json

    rotated = client.post("/api/sessions/refresh", headers=auth(created["refreshToken"]))
    time.sleep(0.01)  # past the (zero) grace window: the old token is now a stolen one
    reused = client.post("/api/sessions/refresh", headers=auth(created["refreshToken"]))

    assert rotated.status_code == 200
    # Still provably issued here: a reuse is theft, and ends the session.
    assert (reused.status_code, reused.json["code"]) == (401, "REFRESH_TOKEN_REUSED")


# --- Missing and wrong keys look the same under /admin -------------------------------------

ADMIN_PATHS = [
    ("get", "/api/admin/users/alice/sessions"),  # a route
    ("delete", f"/api/admin/users/alice/sessions/{SESSION}"),  # a route
    ("post", "/api/admin/users/alice/sessions"),  # a route (a support session)
    ("put", "/api/admin/users/alice/sessions"),  # a route, another method (405 with a key)
    ("get", "/api/admin/users/alice/devices"),  # no route (404 with a key)
    ("get", "/api/admin/keys"),  # no route
    ("get", "/api/admin"),  # the prefix itself
    ("get", "/api/admin/"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_PATHS)
def test_missing_and_wrong_keys_get_one_answer_on_every_admin_path(client, method, path):
    answers = {
        (
            response.status_code,
            response.get_data(as_text=True),
            tuple(sorted((k, v) for k, v in response.headers if k != "X-Request-Id")),
        )
        for response in (
            client.open(path, method=method),
            client.open(path, method=method, headers={"X-Service-Key": "wrong"}),
            client.open(path, method=method, headers={"X-Service-Key": ""}),
        )
    }

    # The same status, body and headers on every path, route or not: nothing tells them apart.
    assert answers == {
        (
            401,
            '{"code":"INVALID_SERVICE_KEY","error":"A valid X-Service-Key header is required."}\n',
            (
                ("Cache-Control", "no-store"),
                ("Content-Length", "83"),
                ("Content-Type", "application/json"),
            ),
        )
    }


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("put", "/api/admin/users/alice/sessions", 405),
        ("get", "/api/admin/keys", 404),
        ("get", "/api/adminx", 404),  # not under /admin: no key asked
    ],
)
def test_with_a_valid_key_routing_answers_as_before(client, method, path, status):
    response = client.open(path, method=method, headers={"X-Service-Key": SERVICE_KEY})

    assert response.status_code == status


def test_guessing_keys_on_unknown_admin_paths_is_throttled(make_app):
    client = make_app(
        RATELIMIT_ENABLED=True, RATE_LIMIT_SERVICE_KEY_FAILURES="3 per minute"
    ).test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.9"}

    guesses = [
        client.get(
            f"/api/admin/guess-{i}", headers={"X-Service-Key": f"k{i}"}, environ_base=attacker
        ).status_code
        for i in range(3)
    ]
    throttled = client.get(
        "/api/admin/users/alice/sessions",
        headers={"X-Service-Key": SERVICE_KEY},
        environ_base=attacker,
    )

    assert guesses == [401] * 3
    assert throttled.status_code == 429


# --- Logs name the key, never its value --------------------------------------------------


def test_a_refused_scope_is_logged_by_the_keys_name(keyed, caplog):
    with caplog.at_level(logging.WARNING, logger="sessionsvc.web.auth"):
        keyed.get("/api/admin/users/alice/sessions", headers={"X-Service-Key": LOGIN_KEY})

    assert "service key login lacks the scope admin:read" in caplog.text
    assert LOGIN_KEY not in caplog.text


def test_the_access_line_names_the_key_it_came_with(make_app, capsys):
    app = make_app(SERVICE_KEYS=KEYS)
    served, inner = [], app.wsgi_app

    def recording(environ, start_response):  # as gunicorn keeps it for its access line
        served.append(environ)
        return inner(environ, start_response)

    app.wsgi_app = recording
    client = app.test_client()
    response = client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": LOGIN_KEY}
    )
    refused = client.get("/api/admin/users/alice/sessions", headers={"X-Service-Key": "wrong"})
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level  # gunicorn's setup sets them
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = gunicorn_logs.GunicornLogger(cfg)
    try:
        for answer, environ in zip((response, refused), served, strict=True):
            gunicorn_response = SimpleNamespace(
                status=answer.status, headers=list(answer.headers.items()), sent=0
            )
            logger.access(gunicorn_response, None, environ, timedelta(0))
    finally:  # the loggers are process-wide: leave them as found
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        for log in (logger.error_log, logger.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True  # as before gunicorn's logger took it
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [(line["status"], line["service_key"]) for line in lines] == [
        (201, "login"),
        (401, None),
    ]
    assert LOGIN_KEY not in json.dumps(lines)


@pytest.mark.slow
def test_gunicorn_access_lines_name_the_key_never_its_value(gunicorn):
    server = gunicorn(
        SESSIONSVC_SERVICE_KEY="",
        SESSIONSVC_SERVICE_KEYS=json.dumps(KEYS),
    )

    status, _, _ = server.call(
        "POST", "/api/sessions", {"X-Service-Key": LOGIN_KEY}, {"userId": "a"}
    )
    forbidden, _, _ = server.call(
        "GET", "/api/admin/users/a/sessions", {"X-Service-Key": LOGIN_KEY}
    )
    server.stop()

    assert (status, forbidden) == (201, 403)
    text = server.log_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [
        r for r in records if r["logger"] == "gunicorn.access" and r["path"].startswith("/api")
    ]
    assert [r["service_key"] for r in access] == ["login", "login"]
    for secret in (LOGIN_KEY, SUPPORT_KEY, CLAIMS_KEY, JWT_SECRET):
        assert secret not in text


# --- Start-up ------------------------------------------------------------------------------


@pytest.fixture
def production(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SESSIONSVC_ENV", "production")
    return {"JWT_SECRET_KEY": JWT_SECRET, "REDIS_URL": "redis://unused:6379/0"}


def test_production_starts_with_named_keys_alone(production):
    app = create_app(production | {"SERVICE_KEYS": KEYS})

    assert [key.name for key in app.extensions["sessionsvc"].service_keys] == [
        "login",
        "support",
        "roles",
    ]


def test_production_refuses_a_short_named_key_naming_it_not_quoting_it(production):
    short = "tiny-key"
    keys = [*KEYS, {"name": "legacy", "key": short, "scopes": ["admin:read"]}]

    with pytest.raises(ConfigError) as refused:
        create_app(production | {"SERVICE_KEYS": keys})

    message = str(refused.value)
    assert "SESSIONSVC_SERVICE_KEYS: the key of 'legacy' must be at least 32 bytes" in message
    assert short not in message


def test_production_without_any_service_key_says_what_to_set(production):
    with pytest.raises(ConfigError, match=r"SESSIONSVC_SERVICE_KEY \(or SESSIONSVC_SERVICE_KEYS\)"):
        create_app(production)


def test_a_named_key_may_not_repeat_service_key(make_app):
    keys = [{"name": "login", "key": SERVICE_KEY, "scopes": ["sessions:create"]}]

    with pytest.raises(ConfigError) as refused:
        make_app(SERVICE_KEYS=keys)

    assert "must not list SESSIONSVC_SERVICE_KEY's key again" in str(refused.value)
    assert SERVICE_KEY not in str(refused.value)


def test_development_makes_no_every_scope_key_beside_named_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))

    app = create_app({"SERVICE_KEYS": KEYS})

    assert app.config["SERVICE_KEY"] is None
    assert "default" not in [key.name for key in app.extensions["sessionsvc"].service_keys]


def test_matching_finds_the_one_key_and_nothing_else():
    keys = [ServiceKey(e["name"], frozenset(e["scopes"]), e["key"]) for e in KEYS]

    assert matching(keys, SUPPORT_KEY) is keys[1]
    for near in ("", SUPPORT_KEY[:-1], SUPPORT_KEY + "x", SUPPORT_KEY.upper()):
        assert matching(keys, near) is None
