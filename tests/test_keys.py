"""Signing keys: the key ring's checks, tokens of every algorithm, the JWKS, and rotation."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
import redis as redis_py
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from jwt.utils import base64url_decode, base64url_encode

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from sessionsvc.tokens.keyring import new_jwk as new_private_jwk
from tests.conftest import commands_run
from tests.support import JWT_SECRET, ROOT, Gunicorn, auth, login

VERIFY = "/api/sessions/verify"
JWKS = "/api/.well-known/jwks.json"
ASYMMETRIC = ("EdDSA", "ES256", "RS256")


def new_jwk(alg: str, kid: str | None = None, *, active: bool = False, **extra: Any) -> dict:
    """Return a new private JWK of the algorithm (a kid of its name unless given)."""
    kid = kid or f"{alg.lower()}-key"
    if bits := extra.pop("bits", None):  # an RSA key of another size
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(private, as_dict=True)
        return jwk | {"kid": kid, "alg": alg, "active": active} | extra
    return new_private_jwk(alg, kid, active=active) | extra


def public(jwk: dict) -> dict:
    """Return the JWK without its private members: a verify-only key."""
    return {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}


def ring(*keys: dict) -> str:
    return json.dumps({"keys": list(keys)})


@pytest.fixture(scope="module")
def keys() -> dict[str, dict]:
    """One active key of each algorithm, made once (RSA key generation is slow)."""
    return {alg: new_jwk(alg, active=True) for alg in (*ASYMMETRIC, "HS256")}


# --- The ring's checks: one clear message naming the key --------------------------------


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([new_jwk("EdDSA", "a"), new_jwk("EdDSA", "b")], "no key is active"),
        (
            [new_jwk("EdDSA", "a", active=True), new_jwk("EdDSA", "b", active=True)],
            "only one key may be active, not 'a', 'b'",
        ),
        ([new_jwk("EdDSA", "a", active=True), new_jwk("EdDSA", "a")], "key 'a': duplicate kid"),
        ([new_jwk("RS256", "small", active=True, bits=1024)], "key 'small': an RSA key must be"),
        (
            [new_jwk("HS256", "short", active=True, k="c2hvcnQ")],
            "key 'short': an HMAC secret must be at least 32 bytes",
        ),
        ([new_jwk("EdDSA", "bad", active=True) | {"x": "AAAA"}], "key 'bad': malformed"),
        ([public(new_jwk("EdDSA", "pub", active=True))], "key 'pub': the active key must hold"),
        ([new_jwk("EdDSA", "x", active=True) | {"alg": "HS512"}], "key 'x': alg must be one of"),
        ([new_jwk("EdDSA", "x", active=True) | {"alg": "ES256"}], "key 'x': ES256 needs kty 'EC'"),
        ([new_jwk("EdDSA", "a b", active=True)], "key 'a b': kid must be"),
        ([new_jwk("EdDSA", "x", active="yes")], "key 'x': active must be true or false"),
        (["not a key"], "key #1: must be a JSON object"),
        ([], "must be a JWK Set"),
    ],
    ids=[
        "no active key",
        "two active keys",
        "duplicate kid",
        "RSA under 2048 bits",
        "HMAC under 32 bytes",
        "malformed key",
        "active key without its private part",
        "unsupported alg",
        "alg of another key type",
        "kid with a space",
        "active not a boolean",
        "not an object",
        "no keys",
    ],
)
def test_a_bad_key_ring_is_refused_with_one_clear_message(entries, message):
    with pytest.raises(ConfigError, match=f"\n- SESSIONSVC_JWT_KEYS: .*{message}") as refused:
        create_app({"ENV": "production", "SERVICE_KEY": "s" * 32, "JWT_KEYS": ring(*entries)})

    assert "Traceback" not in str(refused.value)
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("d"), str):
            assert entry["d"] not in str(refused.value)  # never a private part in a message


@pytest.mark.parametrize(
    ("source", "message"),
    [("/nonexistent/jwks.json", "cannot read /nonexistent/jwks.json"), ("{not json", "not valid")],
)
def test_an_unreadable_key_ring_is_refused(source, message):
    with pytest.raises(ConfigError, match=message):
        create_app({"SERVICE_KEY": "s" * 32, "JWT_KEYS": source})


def test_the_ring_is_read_from_a_file(make_app, keys, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(ring(keys["ES256"]))

    token = login(make_app(JWT_KEYS=str(path)).test_client())["accessToken"]

    assert pyjwt.get_unverified_header(token)["kid"] == keys["ES256"]["kid"]


def test_tokens_from_before_key_ids_pass_while_jwt_secret_key_stays(make_app, keys):
    before = make_app(JWT_KEYS=None).test_client()  # JWT_SECRET_KEY alone, as before
    body = login(before)
    claims = pyjwt.decode(body["accessToken"], options={"verify_signature": False})
    kidless = pyjwt.encode(claims, JWT_SECRET, "HS256")  # as the previous version minted it
    after = make_app(JWT_KEYS=ring(keys["EdDSA"])).test_client()  # JWT_SECRET_KEY kept

    for path in (VERIFY, "/api/sessions"):
        assert after.get(path, headers=auth(kidless)).status_code == 200
    without = make_app(JWT_KEYS=ring(keys["EdDSA"]), JWT_SECRET_KEY=None).test_client()
    refused = without.get("/api/sessions", headers=auth(kidless))
    assert (refused.status_code, refused.json["code"]) == (401, "INVALID_TOKEN")


# --- Tokens of every algorithm, and the JWKS that checks them ---------------------------


@pytest.mark.parametrize("alg", [*ASYMMETRIC, "HS256"])
def test_tokens_carry_the_active_kid_and_pass_every_path(make_app, keys, alg):
    client = make_app(JWT_KEYS=ring(keys[alg])).test_client()
    body = login(client)

    header = pyjwt.get_unverified_header(body["accessToken"])
    assert (header["kid"], header["alg"]) == (keys[alg]["kid"], alg)
    assert client.get(VERIFY, headers=auth(body["accessToken"])).status_code == 200  # fast path
    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200
    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    assert refreshed.status_code == 200
    assert pyjwt.get_unverified_header(refreshed.json["accessToken"])["kid"] == keys[alg]["kid"]


# RFC 9864 (2025) names Ed25519 "Ed25519" and deprecates "EdDSA", which joserfc
# says; gateways and PyJWT know "EdDSA" (docs/keys.md).
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_a_token_verifies_against_the_jwks_alone_with_another_jose_library(make_app, keys, alg):
    client = make_app(JWT_KEYS=ring(keys[alg])).test_client()
    token = login(client)["accessToken"]

    published = KeySet.import_key_set(client.get(JWKS).json)
    decoded = jose_jwt.decode(token, published, algorithms=[alg])

    assert decoded.header["kid"] == keys[alg]["kid"]
    assert decoded.claims["sub"] == "alice"


def test_the_jwks_holds_every_public_key_and_no_secret(make_app, keys):
    verify_only = public(new_jwk("EdDSA", "old-ed25519"))
    entries = [keys["EdDSA"] | {"active": False}, keys["ES256"], keys["RS256"] | {"active": False}]
    client = make_app(JWT_KEYS=ring(*entries, verify_only, keys["HS256"] | {"active": False}))

    response = client.test_client().get(JWKS)

    assert response.status_code == 200
    published = response.json["keys"]
    assert [key["kid"] for key in published] == [
        keys["EdDSA"]["kid"],
        keys["ES256"]["kid"],
        keys["RS256"]["kid"],
        "old-ed25519",
    ]
    for key in published:
        assert key["use"] == "sig"
        assert key["kty"] != "oct"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k", "active"} & set(key)
    assert keys["HS256"]["k"] not in response.get_data(as_text=True)
    # Readers may cache it for less than a rotation's wait (docs/keys.md: twice the max-age).
    assert response.headers["Cache-Control"] == "public, max-age=300"


def test_an_hmac_ring_publishes_no_key(client):
    assert client.get(JWKS).json == {"keys": []}


# --- Rotation: no session ends; a removed key ends exactly its own tokens ---------------


def test_a_rotation_logs_nobody_out(make_app, keys):
    old, new = keys["EdDSA"], new_jwk("ES256", "new-key", active=True)
    before = make_app(JWT_KEYS=ring(old)).test_client()
    body = login(before)
    # 1. the new key verifies only; 2. it signs, the old one verifies only; 3. the old one goes.
    steps = [
        ring(old, public(new) | {"active": False}),
        ring(old | {"active": False}, new),
        ring(new),
    ]
    apps = [make_app(JWT_KEYS=step).test_client() for step in steps]

    assert apps[0].get(VERIFY, headers=auth(body["accessToken"])).status_code == 200
    assert apps[1].get(VERIFY, headers=auth(body["accessToken"])).status_code == 200
    refreshed = apps[1].post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json
    assert pyjwt.get_unverified_header(refreshed["accessToken"])["kid"] == "new-key"
    # The old key removed: its access tokens end, the session does not.
    again = apps[2].post("/api/sessions/refresh", headers=auth(refreshed["refreshToken"]))
    assert again.status_code == 200
    assert apps[2].get(VERIFY, headers=auth(again.json["accessToken"])).status_code == 200


def test_a_compromised_key_removed_at_once_ends_exactly_its_tokens(make_app, keys):
    leaked, other = keys["EdDSA"] | {"active": False}, keys["ES256"]
    signed_by_leaked = login(make_app(JWT_KEYS=ring(leaked | {"active": True})).test_client())
    signed_by_other = login(make_app(JWT_KEYS=ring(other)).test_client())
    after = make_app(JWT_KEYS=ring(other)).test_client()

    for path in (VERIFY, "/api/sessions"):
        refused = after.get(path, headers=auth(signed_by_leaked["accessToken"]))
        assert (refused.status_code, refused.json["code"]) == (401, "INVALID_TOKEN")
        assert after.get(path, headers=auth(signed_by_other["accessToken"])).status_code == 200
    # The session itself lives on: its refresh token (no signature) gets a token of the new key.
    refreshed = after.post("/api/sessions/refresh", headers=auth(signed_by_leaked["refreshToken"]))
    assert refreshed.status_code == 200
    assert after.get(VERIFY, headers=auth(refreshed.json["accessToken"])).status_code == 200


# --- Bad key headers: 401 INVALID_TOKEN, no Redis command, nothing written --------------


def signed(claims: dict, jwk: dict, headers: dict | None = None) -> str:
    """Return a token signed with a JWK's private key, its kid and alg, plus ``headers``."""
    key = pyjwt.PyJWK(jwk, jwk["alg"]).key
    return pyjwt.encode(claims, key, jwk["alg"], headers={"kid": jwk["kid"]} | (headers or {}))


def hmac_signed(secret: bytes, kid: str) -> Callable[[dict], str]:
    """Return a maker of HS256 tokens with this secret, by hand: PyJWT refuses key-like secrets."""

    def make(claims: dict) -> str:
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        parts = [base64url_encode(json.dumps(part).encode()) for part in (header, claims)]
        signing_input = b".".join(parts)
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
        return (signing_input + b"." + base64url_encode(signature)).decode()

    return make


ACTIVE = new_jwk("EdDSA", "active", active=True)
VERIFY_ONLY = public(new_jwk("ES256", "verify-only"))
BAD_HEADERS: dict[str, Callable[[dict], str]] = {
    "unknown kid": lambda claims: signed(claims, ACTIVE | {"kid": "nobody"}),
    "kid of a key of another algorithm": lambda claims: signed(claims, new_jwk("ES256", "active")),
    "alg none": lambda claims: pyjwt.encode(claims, None, "none", headers={"kid": "active"}),
    "HMAC with the public key's bytes": hmac_signed(base64url_decode(ACTIVE["x"]), "active"),
    "HMAC with a JWKS-only key's JSON": hmac_signed(
        json.dumps(VERIFY_ONLY).encode(), "verify-only"
    ),
    "huge kid": lambda claims: signed(claims, ACTIVE | {"kid": "k" * 4000}),
    "no kid": lambda claims: pyjwt.encode(claims, pyjwt.PyJWK(ACTIVE).key, "EdDSA"),
    # Correctly signed, yet naming a key elsewhere: never fetched, never trusted.
    "jku header": lambda claims: signed(claims, ACTIVE, {"jku": "https://attacker.example/k"}),
    "x5u header": lambda claims: signed(claims, ACTIVE, {"x5u": "https://attacker.example/c"}),
    "jwk header": lambda claims: signed(claims, ACTIVE, {"jwk": public(ACTIVE)}),
}


@pytest.fixture
def counted_ring(make_app, own_valkey):
    """A client of an app with a two-key ring on the test's own server, and that server."""
    app = make_app(REDIS_URL=own_valkey.connection_url, JWT_KEYS=ring(ACTIVE, VERIFY_ONLY))
    server = redis_py.Redis.from_url(own_valkey.connection_url, decode_responses=True)
    yield app.test_client(), server
    server.close()


@pytest.mark.parametrize("bad", BAD_HEADERS)
@pytest.mark.parametrize("path", [VERIFY, "/api/sessions"])
def test_a_bad_key_header_is_refused_without_a_redis_command(counted_ring, bad, path):
    client, server = counted_ring
    body = login(client)
    claims = pyjwt.decode(body["accessToken"], options={"verify_signature": False})
    token = BAD_HEADERS[bad](claims)
    answers = []

    ran = commands_run(server, lambda: answers.append(client.get(path, headers=auth(token))))

    assert (answers[0].status_code, answers[0].json["code"]) == (401, "INVALID_TOKEN")
    assert ran == {}  # not one command: nothing read, nothing written


# --- A rotation under gunicorn: SIGHUP re-reads the ring, no request fails --------------


def workers(server) -> set[int]:
    """Return the pids of the gunicorn master's worker processes."""
    pid = server.process.pid
    return set(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))


def reload(server, path: Path, jwks: str) -> None:
    """Write the ring whole, SIGHUP the master, and wait until every worker is a new one."""
    staged = path.with_suffix(".new")
    staged.write_text(jwks)
    staged.replace(path)
    old = workers(server)
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = workers(server)
        if len(current) == 2 and not current & old:  # the fixture's WEB_CONCURRENCY
            return
        time.sleep(0.1)
    pytest.fail(f"the workers were not replaced:\n{server.log_text()}")


@pytest.mark.slow
def test_a_rotation_by_sighup_fails_no_request_and_ends_no_session(gunicorn, keys, tmp_path):
    old, new = keys["EdDSA"], new_jwk("ES256", "new-key", active=True)
    path = tmp_path / "jwks.json"
    path.write_text(ring(old))
    server = gunicorn(SESSIONSVC_JWT_KEYS=str(path))
    before = server.login()
    tokens = [before["accessToken"]]
    answers: list[int | str] = []
    stop = threading.Event()

    def gateway() -> None:  # verify, without a pause, every token minted so far
        while not stop.is_set():
            for token in list(tokens):
                try:
                    answers.append(server.call("GET", VERIFY, auth(token))[0])
                except OSError as error:
                    answers.append(repr(error))

    checking = threading.Thread(target=gateway)
    checking.start()
    try:
        # docs/keys.md's steps: the new key verifies everywhere, then signs.
        reload(server, path, ring(old, public(new) | {"active": False}))
        assert pyjwt.get_unverified_header(server.login()["accessToken"])["kid"] == old["kid"]
        reload(server, path, ring(old | {"active": False}, new))
        after = server.login()
        assert pyjwt.get_unverified_header(after["accessToken"])["kid"] == "new-key"
        tokens.append(after["accessToken"])
        status, _, refreshed = server.call(
            "POST", "/api/sessions/refresh", auth(before["refreshToken"])
        )
        assert status == 200
        assert pyjwt.get_unverified_header(refreshed["accessToken"])["kid"] == "new-key"
        time.sleep(1)  # both keys' tokens checked for a while on the new workers
    finally:
        stop.set()
        checking.join()

    assert answers.count(200) == len(answers) > 20, sorted(set(map(str, answers)))
    # Last step: the old key goes. Its tokens end; its sessions do not.
    reload(server, path, ring(new))
    assert server.call("GET", VERIFY, auth(tokens[0]))[2]["code"] == "INVALID_TOKEN"
    assert server.call("GET", VERIFY, auth(tokens[1]))[0] == 200
    status, _, again = server.call("POST", "/api/sessions/refresh", auth(refreshed["refreshToken"]))
    assert status == 200
    assert server.call("GET", VERIFY, auth(again["accessToken"]))[0] == 200


@pytest.mark.slow
def test_a_bad_ring_stops_gunicorn_with_one_error_naming_the_key(tmp_path):
    two_active = [
        new_jwk("EdDSA", "2026-06", active=True),
        new_jwk("EdDSA", "2026-12", active=True),
    ]
    server = Gunicorn(
        tmp_path, {"SESSIONSVC_ENV": "development", "SESSIONSVC_JWT_KEYS": ring(*two_active)}
    )

    result = subprocess.run(
        server.args, cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    problem = "- SESSIONSVC_JWT_KEYS: only one key may be active, not '2026-06', '2026-12'"
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(jwk["d"] in result.stderr + result.stdout for jwk in two_active)
