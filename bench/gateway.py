"""The deployed path: nginx with deploy/nginx.conf in front of the service and the baseline.

nginx runs the shipped file, only its addresses changed: its `sessionsvc`
upstream is the service, its `sessionsvc_protected` upstream (the services
behind the gateway) is the bare endpoint. Beside it the benchmark adds one
server of its own that passes requests to that same upstream without
`auth_request`: the bare endpoint through nginx, the baseline of this section
(the shipped file gives both upstreams the same keepalive settings).
Each request is counted by the gunicorn worker that answered it (the `pid` of
its access-log line), to see how nginx's keepalive pool spreads the load.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.support import (
    DEPLOY_NGINX_CONF,
    Gunicorn,
    Nginx,
    free_port,
    nginx_main_conf,
    render_deploy_conf,
)

from bench.load import Bench, Load, Result, check, combine, wrk
from bench.servers import cpu_seconds, start_gunicorn

# The benchmark's own server beside the shipped one: the bare endpoint through
# the shipped upstream block (its keepalive pool), with no auth_request.
OPEN_SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sessionsvc_protected;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
"""

SLOW_MS = 100  # wrk.lua's default BENCH_SLOW_US
# Verify against the floor, the bare endpoint after one Redis round trip, in every round.
FLOOR_TARGET = 0.85


@dataclass(frozen=True)
class Side:
    """One kind of request through nginx, and the gunicorn whose workers are counted."""

    name: str
    url: str
    load: Load
    servers: tuple[int, ...]  # pids whose CPU time is the servers' (gunicorns, Valkey)
    counted: Gunicorn
    target: float | None = None  # of the baseline's throughput
    floor: bool = False  # the least a check against Redis costs: targets are set beside it
    nginx: int | None = None  # the pid of the nginx it goes through, when not measure()'s


@dataclass(frozen=True)
class Share:
    """A round's least busy worker: its requests over its fair share (1.0 = an equal split)."""

    lowest: float
    replaced: bool  # a worker was replaced during the round (max_requests)

    def __str__(self) -> str:
        return f"{self.lowest:.2f}{'*' if self.replaced else ''}"


@dataclass
class Measured:
    side: Side
    connections: int
    result: Result  # cpu_us: the servers' CPU per request
    nginx_cpu_us: float
    spread: list[float]  # each round's throughput over the baseline's
    shares: list[Share]  # each round's
    rounds: list[Result]  # each round's

    @property
    def shares_text(self) -> str:
        return ", ".join(map(str, self.shares))

    @property
    def balanced(self) -> bool:
        return min(share.lowest for share in self.shares) >= 0.5


def worker_pids(server: Gunicorn) -> set[int]:
    pid = server.process.pid
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


class Tally:
    """Requests per worker of one gunicorn from its access log, from now on."""

    def __init__(self, server: Gunicorn) -> None:
        self.server = server
        self.offset = server.stdout.stat().st_size
        self.before = worker_pids(server)

    def share(self) -> Share:
        """Return the share of the worker that served the fewest requests since.

        A worker replaced meanwhile (max_requests) counts together with its
        successor; when several were, their requests are shared out evenly.
        """
        with self.server.stdout.open("rb") as log:
            log.seek(self.offset)
            lines = log.read().splitlines()
        counts: collections.Counter[int] = collections.Counter()
        for line in lines:
            if b'"gunicorn.access"' in line:
                with contextlib.suppress(ValueError):  # a line cut by the round's start or end
                    counts[json.loads(line)["pid"]] += 1
        total = sum(counts.values())
        workers = len(self.before)
        stayed = self.before & worker_pids(self.server)
        served = [float(counts[pid]) for pid in stayed]
        if replaced := workers - len(stayed):
            served += [(total - sum(served)) / replaced] * replaced
        return Share(min(served) * workers / max(1, total), replaced > 0)


def gateway_timeout() -> float:
    """Return the verify subrequest's proxy_read_timeout in deploy/nginx.conf, in seconds."""
    conf = DEPLOY_NGINX_CONF.read_text()
    block = re.search(r"location = /_sessionsvc_verify \{(.*?)\n    \}", conf, re.S)
    found = re.search(r"proxy_read_timeout\s+(\d+)(ms|s)?;", block.group(1) if block else "")
    if not found:
        return 60.0  # nginx's default
    return int(found.group(1)) / (1000 if found.group(2) == "ms" else 1)


def measure(
    bench: Bench,
    sides: list[Side],
    connections: int,
    nginx: int,
    *,
    strict: bool = True,
    alternate: bool = False,
) -> list[Measured]:
    """Run each side in turn for ``--rounds`` rounds; the first side is the baseline.

    ``strict``: refuse a round with errors; otherwise they are counted (overload).
    ``alternate``: every other round runs the sides in reverse order, so that
    neither always follows the same one.
    """
    args = bench.args
    for side in sides:
        wrk(side.url, side.load, args.warmup, connections)
    results: dict[str, list[Result]] = {side.name: [] for side in sides}
    nginx_cpu = dict.fromkeys(results, 0.0)
    shares: dict[str, list[Share]] = {side.name: [] for side in sides}
    for turn in range(args.rounds):
        for side in reversed(sides) if alternate and turn % 2 else sides:
            tally = Tally(side.counted)
            side_nginx = side.nginx or nginx
            servers_before = sum(map(cpu_seconds, side.servers))
            nginx_before = cpu_seconds(side_nginx)
            result = wrk(side.url, side.load, args.duration, connections)
            used = sum(map(cpu_seconds, side.servers)) - servers_before
            nginx_cpu[side.name] += cpu_seconds(side_nginx) - nginx_before
            shares[side.name].append(tally.share())
            if strict:
                check(result, side.load, connections)
            results[side.name].append(
                dataclasses.replace(result, cpu_us=used / max(1, result.requests) * 1e6)
            )
    base = results[sides[0].name]
    measured = []
    for side in sides:
        mine = results[side.name]
        total = combine(mine)
        row = Measured(
            side,
            connections,
            total,
            nginx_cpu[side.name] / max(1, total.requests) * 1e6,
            [a.rps / b.rps for a, b in zip(mine, base, strict=True)],
            shares[side.name],
            mine,
        )
        measured.append(row)
        print(
            f"  {side.name[:32]:<32} {total.rps:6.0f} req/s  p50 {total.p50_ms:.1f} ms"
            f"  p99 {total.p99_ms:.1f} ms  max {total.max_ms:.0f} ms"
            f"  > {SLOW_MS} ms {total.slow_share:.1%}  lowest worker share {row.shares_text}",
            flush=True,
        )
    return measured


def gateway_tables(bench: Bench, verify: Load) -> list[str]:
    """Measure the deployed path; return the section's tables and notes."""
    tmp = bench.tmp / "gateway"
    tmp.mkdir()
    app = start_gunicorn("wsgi:app", bench.env, bench.tmp)
    bare = start_gunicorn("bench.bare:app", bench.env, bench.tmp)
    port, open_port = free_port(), free_port()
    site = render_deploy_conf(listen=port, sessionsvc=app.port, protected=bare.port)
    (tmp / "sessionsvc.conf").write_text(site)
    # One nginx worker: one keepalive pool of 16 per upstream, which the client
    # connections outnumber (each nginx worker keeps a pool of its own).
    main = nginx_main_conf(tmp, worker_connections=4096, http=OPEN_SERVER.format(port=open_port))
    nginx = Nginx(tmp, main, port)
    try:
        nginx.start()
        url, open_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{open_port}"
        bare_load = verify.bare()
        service = (app.process.pid, bench.valkey._process.pid)
        sides = [
            Side("bare endpoint, no auth_request", open_url, bare_load, (bare.process.pid,), bare),
            Side(
                "bare endpoint after one Redis round trip (PING), no auth_request",
                open_url,
                verify.bare("/bare/redis"),
                (bare.process.pid, bench.valkey._process.pid),
                bare,
                floor=True,
            ),
            Side("verify", url, verify, service, app, target=0.8),
            Side(
                "gateway request: auth_request verify, then the bare endpoint",
                url,
                dataclasses.replace(bare_load, name="gateway"),
                (*service, bare.process.pid),
                app,
            ),
        ]
        rows = []
        for connections in map(int, bench.args.gateway_connections.split(",")):
            print(f"through nginx, {connections} connections:", flush=True)
            rows += measure(bench, sides, connections, nginx.process.pid)
        overload = bench.args.overload_connections
        print(f"overload, {overload} connections:", flush=True)
        heavy = measure(bench, sides, overload, nginx.process.pid, strict=False)
    finally:
        nginx.stop()
        app.stop()
        bare.stop()
    return _tables(bench, rows, heavy)


def _against_the_floor(rows: list[Measured]) -> list[str]:
    """Set each targeted request beside the floor: the bare endpoint after one Redis round trip."""
    lines = []
    for floor in (row for row in rows if row.side.floor):
        base = next(r for r in rows if r.connections == floor.connections).result
        for row in rows:
            if row.side.target and row.connections == floor.connections:
                rounds = [a / b for a, b in zip(row.spread, floor.spread, strict=True)]
                met = "met" if min(rounds) >= FLOOR_TARGET else "**missed**"
                lines.append(
                    f"- {row.side.name} at {row.connections} connections: "
                    f"**{row.result.rps / floor.result.rps:.2f}x** the bare endpoint after one "
                    f"Redis round trip (rounds {min(rounds):.2f} to {max(rounds):.2f}; target "
                    f"≥ {FLOOR_TARGET}x in every round {met}), which itself reached "
                    f"{floor.result.rps / base.rps:.2f}x the bare endpoint."
                )
    return lines


def _tables(bench: Bench, rows: list[Measured], heavy: list[Measured]) -> list[str]:
    args = bench.args
    lines = [
        "wrk against one nginx worker (one keepalive pool of 16 connections per "
        f"upstream); each figure {args.rounds} rounds of {args.duration:g} s, the "
        "four requests in turn. CPU: the servers' (gunicorns; Valkey with a Redis round trip), "
        "then nginx's. Worker share: in each round, the requests of the worker that "
        "served the fewest, over its fair share (1.00 = an equal split), among the "
        "workers of the gunicorn that answers (the bare endpoint's on the first two "
        "rows, the service's on the others); `*`: a worker was replaced in that round "
        "(max_requests), its requests and its successor's count as one.",
        "",
        "| connections | request through nginx | req/s | p50 | p99 | vs bare (rounds) | target "
        "| CPU µs/request (nginx) | lowest worker share, each round | ≥ 0.5 in every round |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for row in rows:
        base = next(r for r in rows if r.connections == row.connections).result
        ratio = row.result.rps / base.rps
        target = balance = "—"  # the targets are the service's
        if row.side.counted is not rows[0].side.counted:
            balance = "met" if row.balanced else "**missed**"
        if row.side.target:
            target = f"≥ {row.side.target}x {'met' if ratio >= row.side.target else '**missed**'}"
        lines.append(
            f"| {row.connections} | {row.side.name} | {row.result.rps:.0f} "
            f"| {row.result.p50_ms:.1f} ms | {row.result.p99_ms:.1f} ms "
            f"| **{ratio:.2f}x** ({min(row.spread):.2f} to {max(row.spread):.2f}) "
            f"| {target} | {row.result.cpu_us:.0f} ({row.nginx_cpu_us:.0f}) "
            f"| {row.shares_text} | {balance} |"
        )
    lines += ["", *_against_the_floor(rows)]
    timeout = gateway_timeout()
    lines += [
        "",
        f"**Overload**: {args.overload_connections} connections, the same four requests. "
        "The gateway's timeout for verify (`proxy_read_timeout` of "
        f"`/_sessionsvc_verify` in deploy/nginx.conf) is {timeout:g} s: a request "
        "waiting longer would be a 503.",
        "",
        f"| request through nginx | req/s | p50 | p99 | max | > {SLOW_MS} ms "
        "| non-2xx, socket errors | within the gateway timeout | lowest worker share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in heavy:
        r = row.result
        within = "yes" if r.max_ms < timeout * 1000 and not r.non2xx else "**no**"
        lines.append(
            f"| {row.side.name} | {r.rps:.0f} | {r.p50_ms:.0f} ms | {r.p99_ms:.0f} ms "
            f"| {r.max_ms:.0f} ms | {r.slow_share:.1%} | {r.non2xx}, {r.socket_errors} "
            f"| {within} | {row.shares_text} |"
        )
    verify = next(row for row in heavy if row.side.target)
    cores = os.cpu_count() or 1
    per_core = 1e6 / verify.result.cpu_us
    lines += [
        "",
        f"- Capacity per core: under overload verify cost the service "
        f"{verify.result.cpu_us:.0f} µs of CPU (gunicorn and Valkey) and nginx "
        f"{verify.nginx_cpu_us:.0f} µs, so a core given to the service answers at most "
        f"about {per_core:.0f} verify requests a second; here, with wrk and nginx on the "
        f"same {cores} cores, it answered {verify.result.rps:.0f}.",
    ]
    return lines
