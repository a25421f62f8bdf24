"""What a revoke safe from a Redis crash costs: revoke and login latency by persistence setting.

One Valkey of its own, on files in the bench's folder, switched between
persistence settings with CONFIG SET (snapshots only; an append-only file
fsynced every second or on every write), and apps with and without
``REDIS_WAIT_AOF`` (docs/redis.md, "Durability of revokes"). Each app is called
in process through its WSGI app, as bench/algorithms.py does: the figures
differ by what Redis and the wait add. Rounds alternate between the cases;
each figure is the median and the 99th percentile of all rounds' calls, and
revokes answered 503 (not on disk within ``REDIS_WAIT_TIMEOUT``) are counted.
``python -m bench.durability`` prints the table; ``make bench`` puts it in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis as redis_py
from flask.testing import FlaskClient

from bench.servers import SERVICE_KEY, bench_app, start_valkey


@dataclass(frozen=True)
class Case:
    """A persistence setting of the server and whether revokes wait for it."""

    name: str
    appendonly: str
    appendfsync: str
    wait_aof: bool


CASES = (
    Case("snapshots only (`appendonly no`)", "no", "everysec", False),
    Case("`appendfsync everysec`", "yes", "everysec", False),
    Case("`appendfsync everysec`, `REDIS_WAIT_AOF`", "yes", "everysec", True),
    Case("`appendfsync always`", "yes", "always", False),
    Case("`appendfsync always`, `REDIS_WAIT_AOF`", "yes", "always", True),
)
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


@dataclass
class Figures:
    login: list[float]  # ms per call
    revoke: list[float]
    refused: int = 0  # revokes answered 503 STORE_NOT_DURABLE


def one_round(client: FlaskClient, figures: Figures, n: int, tag: str) -> None:
    """Log ``n`` users in, then revoke each one's session with its own token (timed)."""
    service = {"X-Service-Key": SERVICE_KEY}
    logins: list[dict[str, Any]] = []
    for i in range(n):
        body = {"userId": f"bench-durability-{tag}-{i}", "userAgent": UA, "ip": "203.0.113.7"}
        started = time.perf_counter()
        response = client.post("/api/sessions", json=body, headers=service)
        figures.login.append((time.perf_counter() - started) * 1e3)
        assert response.status_code == 201, response.json
        logins.append(response.json)
    for login in logins:
        path = f"/api/sessions/{login['session']['_id']}"
        headers = {"Authorization": f"Bearer {login['accessToken']}"}
        started = time.perf_counter()
        response = client.delete(path, headers=headers)
        figures.revoke.append((time.perf_counter() - started) * 1e3)
        if response.status_code == 503:
            figures.refused += 1
        else:
            assert response.status_code == 200, response.json


def measure(redis_url: str, *, sessions: int, rounds: int) -> dict[str, Figures]:
    """Return every case's calls, rounds alternating between the cases."""
    server = redis_py.Redis.from_url(redis_url)
    apps = {
        case.name: bench_app(
            redis_url,
            REDIS_KEY_PREFIX=f"bench-durability-{number}:",
            REDIS_WAIT_AOF=case.wait_aof,
            RATELIMIT_ENABLED=False,
            EVENTS_STREAM="",
            LOG_LEVEL="CRITICAL",  # the 503s are counted, not logged
        )
        for number, case in enumerate(CASES)
    }
    figures = {case.name: Figures([], []) for case in CASES}
    try:
        for round_no in range(-1, rounds):  # round -1: warm-up, not counted
            first = max(round_no, 0) % len(CASES)
            for case in CASES[first:] + CASES[:first]:
                server.config_set("appendonly", case.appendonly)
                server.config_set("appendfsync", case.appendfsync)
                while server.info("persistence").get("aof_rewrite_in_progress"):
                    time.sleep(0.05)  # turning the AOF on writes the file first
                into = figures[case.name] if round_no >= 0 else Figures([], [])
                client = apps[case.name].test_client()
                one_round(client, into, sessions, f"{round_no}-{CASES.index(case)}")
    finally:
        for app in apps.values():
            app.extensions["sessionsvc"].close()
        server.close()
    return figures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def table(figures: dict[str, Figures]) -> list[str]:
    """Return the figures as a Markdown table: median and p99 of login and revoke."""
    lines = [
        "| server, setting | login: median, p99 | revoke: median, p99 | revokes answered 503 |",
        "|---|---:|---:|---:|",
    ]
    for case in CASES:
        one = figures[case.name]
        cells = [
            f"{statistics.median(calls):.2f} ms, {percentile(calls, 0.99):.2f} ms"
            for calls in (one.login, one.revoke)
        ]
        lines.append(
            f"| {case.name} | {cells[0]} | {cells[1]} | {one.refused} of {len(one.revoke)} |"
        )
    return lines


def section(tmp: Path, *, sessions: int = 100, rounds: int = 3) -> list[str]:
    """Return make bench's section: the table, and how it was measured."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    valkey = start_valkey(tmp, "valkey-durability")
    try:
        figures = measure(valkey.connection_url, sessions=sessions, rounds=rounds)
    finally:
        valkey.stop()
    return [
        "### Revokes safe from a Redis crash: what the persistence settings cost",
        "",
        "In process (the app's WSGI callable), one app per case on one Valkey of its own "
        "whose files are in the bench's temporary folder, switched between the cases "
        f"with CONFIG SET; per round and case {sessions} logins, then a revoke of each "
        f"(`DELETE /sessions/:id` with its own token); {rounds} rounds alternating between "
        "the cases; `REDIS_WAIT_TIMEOUT` at its default (0.25 s); the median and p99 of "
        "every call (bench/durability.py). `everysec` waits for the server's next fsync "
        "(its cron, ten times a second); `always` fsyncs every write, logins too "
        f"([durability](redis.md#durability-of-revokes)). Load average before: {load}.",
        "",
        *table(figures),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100, help="logins and revokes per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sessionsvc-bench-durability-") as tmp:
        lines = section(Path(tmp), sessions=args.sessions, rounds=args.rounds)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
