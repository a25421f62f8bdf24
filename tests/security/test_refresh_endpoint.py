"""Issue 17 §2: the refresh cookie and the refresh endpoint.

- Cookie tossing: a page of the same site (another port, a sibling subdomain)
  plants a refresh cookie of its own beside the victim's, at another path or
  domain: the browser sends both, and the service took the first, whichever
  that was. A request carrying two is refused and every refresh cookie the
  browser could have sent is cleared.
- A liveness oracle: a guessed refresh token (a session id is in every access
  token an upstream sees) got INVALID_TOKEN for a live session and
  TOKEN_REVOKED for a dead one. Both now get the same answer.
- Secrets at rest: each session's hash held its current (and previous) refresh
  secret, so a backup, a replica or a MONITOR of the store refreshed any
  session. It now holds digests only, and no secret reaches the store at all.
"""

from __future__ import annotations

import re
import threading
import time
from http.cookies import SimpleCookie

import pytest
import redis as redis_py

from sessionsvc.domain.sessions import SessionRef
from sessionsvc.tokens.refresh import refresh_token
from tests.support import SERVICE_KEY, auth, login

COOKIE = "__Secure-sessionsvc-refresh"
CSRF = {"X-Requested-With": "sessionsvc"}
SECRET = re.compile(r"[A-Za-z0-9_-]{22}")  # what a refresh token's secret can be
JUNK_TAG = "t" * 22  # a tag that proves nothing: a guess, which ends no session


def guess(user_id: str, session_id: str, secret: str) -> str:
    """Return a refresh token for the session with this secret and a tag of no key."""
    token = refresh_token(SessionRef(user_id, session_id), secret, SERVICE_KEY)
    return token.rsplit(".", 1)[0] + "." + JUNK_TAG


def parts(token: str) -> tuple[str, str]:
    """Return a refresh token's session id and secret."""
    _, _, session_id, secret, _ = token.split(".")
    return session_id, secret


# --- cookie tossing ----------------------------------------------------------


@pytest.fixture
def cookie_app(make_app):
    return make_app(REFRESH_TOKEN_TRANSPORT="cookie")


def raw(app):
    """Return a client sending the Cookie header as given (no cookie jar of its own)."""
    return app.test_client(use_cookies=False)


def cookie_login(client, user_id: str) -> str:
    """Sign in in cookie mode; return the refresh token the cookie holds."""
    response = client.post(
        "/api/sessions", json={"userId": user_id}, headers={"X-Service-Key": SERVICE_KEY}
    )
    assert response.status_code == 201
    for line in response.headers.getlist("Set-Cookie"):
        if COOKIE in (parsed := SimpleCookie(line)):
            return parsed[COOKIE].value
    raise AssertionError("no refresh cookie")


def cleared(response) -> set[tuple[str, str]]:
    """Return the (path, domain) of each refresh cookie the response tells the browser to drop."""
    out = set()
    for line in response.headers.getlist("Set-Cookie"):
        morsel = SimpleCookie(line).get(COOKIE)
        if morsel is not None and morsel.value == "" and morsel["max-age"] == "0":
            assert morsel["secure"]  # else a browser ignores the clearing of a __Secure- cookie
            out.add((morsel["path"], morsel["domain"]))
    return out


@pytest.mark.parametrize("victim_first", [True, False], ids=["victim-first", "planted-first"])
def test_a_request_with_two_refresh_cookies_is_refused_and_both_are_cleared(
    cookie_app, victim_first
):
    client = raw(cookie_app)
    victim = cookie_login(client, "alice")
    planted = cookie_login(client, "mallory")
    pair = (victim, planted) if victim_first else (planted, victim)
    header = f"{COOKIE}={pair[0]}; other=1; {COOKIE}={pair[1]}"

    response = client.post(
        "/api/sessions/refresh",
        headers={**CSRF, "Cookie": header},
        base_url="https://sessions.example.com",
    )

    assert response.status_code == 401
    assert response.json["code"] == "DUPLICATE_REFRESH_COOKIE"
    assert "accessToken" not in response.json
    # Every path the endpoint's cookies can have (/api is the classic twin), for
    # the host itself (host-only, Domain=) and the parent domain a sibling can set.
    paths = {"/", "/api", "/api/", "/api/sessions", "/api/sessions/", "/api/sessions/refresh"}
    domains = {"", "sessions.example.com", "example.com"}
    assert cleared(response) == {(path, domain) for path in paths for domain in domains}
    # Neither token was used: the victim's session still refreshes with its own.
    alone = client.post("/api/sessions/refresh", headers={**CSRF, "Cookie": f"{COOKIE}={victim}"})
    assert alone.status_code == 200


def test_two_refresh_cookies_without_the_csrf_header_are_refused_as_csrf(cookie_app):
    client = raw(cookie_app)
    token = cookie_login(client, "alice")

    response = client.post(
        "/api/sessions/refresh", headers={"Cookie": f"{COOKIE}={token}; {COOKIE}={token}"}
    )

    assert (response.status_code, response.json["code"]) == (403, "CSRF_REJECTED")
    assert cleared(response) == set()  # a cross-site request clears nothing


def test_an_address_host_has_only_host_only_cookies_to_clear(cookie_app):
    client = raw(cookie_app)
    token = cookie_login(client, "alice")

    response = client.post(
        "/api/sessions/refresh",
        headers={**CSRF, "Cookie": f"{COOKIE}={token}; {COOKIE}=x"},
        base_url="http://127.0.0.1:8000",
    )

    assert response.status_code == 401
    assert {domain for _, domain in cleared(response)} == {""}


# --- the liveness oracle -----------------------------------------------------


def refused_answer(client, token: str) -> tuple[int, dict, str]:
    response = client.post("/api/sessions/refresh", headers=auth(token))
    return response.status_code, response.json, response.headers["Content-Type"]


@pytest.mark.parametrize(
    "state", ["revoked", "never-existed", "idle"], ids=lambda state: f"{state}-vs-live"
)
def test_a_guessed_token_tells_a_live_session_from_no_other(make_app, state):
    app = make_app(SESSION_IDLE_TIMEOUT=1) if state == "idle" else make_app()
    client = app.test_client()
    live_id, _ = parts(login(client, "alice")["refreshToken"])
    other = login(client, "alice")
    other_id, _ = parts(other["refreshToken"])
    if state == "revoked":
        client.delete("/api/sessions", headers=auth(other["accessToken"]))
        live_id, _ = parts(login(client, "alice")["refreshToken"])
    elif state == "never-existed":
        other_id = "A" * 22
    else:  # idle past its timeout: dead, though its key may linger until touched
        time.sleep(1.1)
        live_id, _ = parts(login(client, "alice")["refreshToken"])

    at_live = refused_answer(client, guess("alice", live_id, "g" * 22))
    at_dead = refused_answer(client, guess("alice", other_id, "g" * 22))

    assert at_live == at_dead
    refused = {"code": "INVALID_TOKEN", "error": "The refresh token is not valid."}
    assert at_live[:2] == (401, refused)


def test_the_genuine_token_of_a_revoked_session_still_says_it_was_revoked(client):
    body = login(client, "alice")
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    response = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    # Provably issued: its holder learns only what it knew (its session), and
    # must be told to sign in again rather than that its token is bad.
    assert (response.status_code, response.json["code"]) == (401, "TOKEN_REVOKED")


# --- secrets at rest ---------------------------------------------------------


def store_values(server: redis_py.Redis, prefix: str) -> list[str]:
    """Return every key, field, member, score and value under the prefix: a backup's content."""
    values: list[str] = []
    for key in server.scan_iter(match=f"{prefix}*", count=1000):
        values.append(key)
        kind = server.type(key)
        if kind == "hash":
            for field, value in server.hgetall(key).items():
                values += [field, value]
        elif kind == "zset":
            for member, score in server.zrange(key, 0, -1, withscores=True):
                values += [member, repr(score), str(int(score))]
        elif kind == "stream":
            for entry_id, fields in server.xrange(key):
                values.append(entry_id)
                for field, value in fields.items():
                    values += [field, value, *value.split(",")]
        elif kind == "string":
            values.append(server.get(key))
        else:
            raise AssertionError(f"a key of a type this test does not read: {key} {kind}")
    return values


def secret_candidates(values: list[str]) -> set[str]:
    """Return every run of 22 base64url characters within the values: all a secret can be."""
    found = set()
    for value in values:
        for run in re.findall(r"[A-Za-z0-9_-]{22,}", value):
            found.update(run[i : i + 22] for i in range(len(run) - 21))
    return found


@pytest.fixture
def monitored(make_app, own_valkey):
    """An app on the test's own Valkey, and every command that server ran, as MONITOR saw it."""
    app = make_app(REDIS_URL=own_valkey.connection_url, REFRESH_REUSE_GRACE=30)
    server = redis_py.Redis.from_url(own_valkey.connection_url, decode_responses=True)
    commands: list[str] = []
    ready = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        with server.monitor() as monitor:
            ready.set()
            while not stop.is_set():
                command = monitor.next_command()["command"]
                if command.startswith("PING"):
                    continue
                commands.append(command)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    yield app, server, commands
    stop.set()
    server.ping()  # wakes the watcher to see stop
    watcher.join(5)
    server.close()


def test_nothing_in_the_store_or_its_command_stream_refreshes_a_session(monitored, key_prefix):
    app, server, commands = monitored
    client = app.test_client()
    issued: list[str] = []
    current: dict[tuple[str, str], str] = {}
    for user in ("alice", "bob", "carol"):
        body = login(client, user, claims={"name": f"{user} example"})
        token = body["refreshToken"]
        issued.append(token)
        for _ in range(3):  # refreshes, each previous token presented again within the grace
            refreshed = client.post("/api/sessions/refresh", headers=auth(token)).json
            again = client.post("/api/sessions/refresh", headers=auth(token)).json
            assert again["refreshToken"] == refreshed["refreshToken"]  # grace: one successor
            token = refreshed["refreshToken"]
            issued.append(token)
        current[(user, parts(token)[0])] = token
    secrets = {parts(token)[1] for token in issued}
    values = store_values(server, key_prefix)
    server.echo("end-of-logins")  # the monitor has seen everything once it sees this
    deadline = time.monotonic() + 10
    while not any("end-of-logins" in command for command in commands):
        assert time.monotonic() < deadline, "the monitor saw nothing"
        time.sleep(0.01)
    seen = list(commands)

    assert any("EVALSHA" in command for command in seen)  # the monitor saw the refreshes
    # No part of any value or command refreshes a session, taken as its secret.
    tried = 0
    for user, session_id in current:
        for candidate in secret_candidates(values + seen):
            token = guess(user, session_id, candidate)
            response = client.post("/api/sessions/refresh", headers=auth(token))
            assert response.status_code == 401, (candidate, response.json)
            tried += 1
    assert tried > 100
    # No issued secret, current or past, in any value nor in any command sent.
    assert not [s for s in secrets if any(s in value for value in values)]
    assert not [s for s in secrets if any(s in command for command in seen)]
    # Every session was alive all along, the guesses ended none.
    for token in current.values():
        assert client.post("/api/sessions/refresh", headers=auth(token)).status_code == 200
