"""Worker class A/B through nginx: a candidate worker class against gunicorn's stock gthread.

Both sides are the service under the shipped gunicorn.conf.py (same workers,
threads and every other setting), only ``--worker-class`` differs, each behind
an nginx of its own running deploy/nginx.conf (its protected upstream the same
bare endpoint for both). They run at the same time and are loaded in turn, the
order reversed every other round, so that a change in the machine's load
weighs on both. Each round measures the gateway request (auth_request verify,
then the bare endpoint), verify alone, and the floor (the bare endpoint after one
Redis round trip, through the first nginx), and counts each worker's requests.

The rule: the candidate is worth keeping only if stock gthread, in every
round, misses the balance target (a worker under half its fair share) or
serves at least 10% fewer gateway requests.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from tests.support import ROOT, Gunicorn, Nginx, free_port, nginx_main_conf, render_deploy_conf

from bench.gateway import FLOOR_TARGET, OPEN_SERVER, Measured, Side, measure
from bench.load import Bench, Load
from bench.servers import start_gunicorn

STOCK = "gthread"
BALANCED = 0.5  # the least busy worker's share of the requests, over an equal split
FEWER = 0.9  # stock gthread's gateway requests over the candidate's, at most


def shipped_worker_class() -> str:
    """Return the worker_class that gunicorn.conf.py sets (gunicorn's default: sync)."""
    found = re.search(r'^worker_class = "([^"]+)"', (ROOT / "gunicorn.conf.py").read_text(), re.M)
    return found.group(1) if found else "sync"


def _gateway(
    tmp: Path, service: Gunicorn, protected: Gunicorn, open_port: int | None = None
) -> Nginx:
    """Start nginx on deploy/nginx.conf in front of ``service``; one worker, as gateway.py's.

    ``open_port``: gateway.py's open server beside it, the protected upstream
    without auth_request.
    """
    tmp.mkdir()
    port = free_port()
    site = render_deploy_conf(listen=port, sessionsvc=service.port, protected=protected.port)
    (tmp / "sessionsvc.conf").write_text(site)
    http = OPEN_SERVER.format(port=open_port) if open_port else ""
    main = nginx_main_conf(tmp, worker_connections=4096, http=http)
    return Nginx(tmp, main, port).start()


@dataclasses.dataclass(frozen=True)
class Cell:
    """One round at one connection count: each side's gateway requests and lowest shares."""

    connections: int
    round: int
    candidate_rps: float
    stock_rps: float
    candidate_shares: tuple[float, float]  # gateway request, verify
    stock_shares: tuple[float, float]
    candidate_floor: float  # verify over the floor, the bare endpoint after one round trip
    stock_floor: float

    @property
    def ratio(self) -> float:
        return self.stock_rps / self.candidate_rps

    @property
    def stock_missed(self) -> bool:
        return min(self.stock_shares) < BALANCED or self.ratio <= FEWER


def _cells(connections: int, rows: list[Measured]) -> list[Cell]:
    gateway_a, gateway_b, verify_a, verify_b, floor = rows
    return [
        Cell(
            connections,
            i + 1,
            gateway_a.rounds[i].rps,
            gateway_b.rounds[i].rps,
            (gateway_a.shares[i].lowest, verify_a.shares[i].lowest),
            (gateway_b.shares[i].lowest, verify_b.shares[i].lowest),
            verify_a.rounds[i].rps / floor.rounds[i].rps,
            verify_b.rounds[i].rps / floor.rounds[i].rps,
        )
        for i in range(len(gateway_a.rounds))
    ]


def workers_ab_section(bench: Bench, verify: Load, candidate: str) -> list[str]:
    """Measure ``candidate`` against stock gthread through nginx; return the section."""
    title = "### Worker class A/B through nginx"
    if candidate == STOCK:
        return [
            title,
            "",
            f"The shipped worker class is gunicorn's own `{STOCK}`: nothing to compare. "
            "`--ab-worker-class module.Class` measures another against it.",
        ]
    tmp = bench.tmp / "workers-ab"
    tmp.mkdir()
    load_before = os.getloadavg()
    bare = start_gunicorn("bench.bare:app", bench.env, bench.tmp)
    servers = {
        name: start_gunicorn("wsgi:app", bench.env, bench.tmp, ("--worker-class", name))
        for name in (candidate, STOCK)
    }
    gateways: dict[str, Nginx] = {}
    cells: list[Cell] = []
    totals: list[str] = []
    try:
        open_port = free_port()
        for name, server in servers.items():
            folder = tmp / name.rsplit(".", 1)[-1]
            gateways[name] = _gateway(folder, server, bare, None if gateways else open_port)
        gateway_load = dataclasses.replace(verify.bare(), name="gateway")
        valkey = bench.valkey._process.pid

        def side(name: str, load: Load, what: str) -> Side:
            server, nginx = servers[name], gateways[name]
            pids = (server.process.pid, valkey) + ((bare.process.pid,) if what == "gateway" else ())
            url = f"http://127.0.0.1:{nginx.port}"
            label = f"{what}, {name.rsplit('.', 1)[-1]}"
            return Side(label, url, load, pids, server, nginx=nginx.process.pid)

        sides = [
            side(candidate, gateway_load, "gateway"),
            side(STOCK, gateway_load, "gateway"),
            side(candidate, verify, "verify"),
            side(STOCK, verify, "verify"),
            Side(
                "floor: bare after one PING",
                f"http://127.0.0.1:{open_port}",
                verify.bare("/bare/redis"),
                (bare.process.pid, valkey),
                bare,
                nginx=gateways[candidate].process.pid,
            ),
        ]
        for connections in map(int, bench.args.gateway_connections.split(",")):
            print(f"worker class A/B through nginx, {connections} connections:", flush=True)
            rows = measure(bench, sides, connections, 0, alternate=True)
            cells += _cells(connections, rows)
            gateway_a, gateway_b = rows[:2]
            totals.append(
                f"- {connections} connections, all rounds: gateway requests "
                f"{gateway_a.result.rps:.0f} a second with `{candidate}` (p99 "
                f"{gateway_a.result.p99_ms:.1f} ms), {gateway_b.result.rps:.0f} with `{STOCK}` "
                f"(p99 {gateway_b.result.p99_ms:.1f} ms): {STOCK} at "
                f"{gateway_b.result.rps / gateway_a.result.rps:.2f}x."
            )
    finally:
        for nginx in gateways.values():
            nginx.stop()
        for server in (*servers.values(), bare):
            server.stop()
    load_after = os.getloadavg()
    return [title, "", *_report(bench, candidate, cells, totals, load_before, load_after)]


def _report(
    bench: Bench,
    candidate: str,
    cells: list[Cell],
    totals: list[str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> list[str]:
    args = bench.args
    missed = sum(cell.stock_missed for cell in cells)
    keep = missed == len(cells)
    verdict = f"keep `{candidate}`" if keep else f"ship `{STOCK}`"
    print(f"  {STOCK} missed in {missed} of {len(cells)} rounds: {verdict}", flush=True)

    def shares(pair: tuple[float, float]) -> str:
        return f"{pair[0]:.2f}, {pair[1]:.2f}"

    lines = [
        f"`{candidate}` (A) against gunicorn's `{STOCK}` (B): the service under the shipped "
        "gunicorn.conf.py with only `--worker-class` changed, each behind an nginx of its "
        "own on deploy/nginx.conf (one worker), loaded in turn, the order reversed every "
        f"other round; {args.rounds} rounds of {args.duration:g} s per request and side. "
        "Lowest share: the requests of the worker that served the fewest in the round, over "
        "an equal split, for the gateway request and for verify alone. Verify / floor: "
        "verify's requests over those of the bare endpoint after one Redis round trip "
        f"(through the first nginx) in the same round, target ≥ {FLOOR_TARGET}. Load "
        f"average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load_before)} before the section, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after.",
        "",
        "| connections | round | gateway req/s A | gateway req/s B | B / A "
        "| lowest share A (gateway, verify) | lowest share B (gateway, verify) "
        "| verify / floor A | verify / floor B | B misses |",
        "| ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for cell in cells:
        lines.append(
            f"| {cell.connections} | {cell.round} | {cell.candidate_rps:.0f} "
            f"| {cell.stock_rps:.0f} | {cell.ratio:.2f} | {shares(cell.candidate_shares)} "
            f"| {shares(cell.stock_shares)} | {cell.candidate_floor:.2f} | {cell.stock_floor:.2f} "
            f"| {'yes' if cell.stock_missed else 'no'} |"
        )
    floors = {
        name: [getattr(cell, f"{side}_floor") for cell in cells]
        for name, side in ((candidate, "candidate"), (STOCK, "stock"))
    }
    lines += [
        "",
        *totals,
        *(
            f"- Verify over the floor with `{name}`: {min(ratios):.2f} to {max(ratios):.2f}, "
            f"≥ {FLOOR_TARGET} in {sum(r >= FLOOR_TARGET for r in ratios)} of {len(ratios)} rounds."
            for name, ratios in floors.items()
        ),
        f"- Rule: keep A only if B, in every round, has a worker under {BALANCED} of its fair "
        f"share or serves at least {1 - FEWER:.0%} fewer gateway requests. B missed in "
        f"**{missed} of {len(cells)}** rounds: {verdict}.",
    ]
    return lines
