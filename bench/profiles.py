"""Profiles: py-spy samples of the service's workers under load, summed up by layer."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.support import Gunicorn

from bench.load import Bench, Load, wrk

BIN = Path(sys.executable).parent


def profile(bench: Bench, app: Gunicorn, load: Load) -> list[str]:
    """Sample the app's workers with py-spy while wrk drives ``load``; summarize the stacks."""
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(py_spy).exists():
        return [f"- {load.name}: no profile (py-spy is not installed)"]
    out = bench.tmp / f"profile-{load.name.split()[0]}.txt"
    seconds = max(2, int(bench.args.duration))
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(app.process.pid),
            "--subprocesses",
            "--gil",  # only samples holding the GIL: where the CPU goes, not the waits
            "--nonblocking",
            "--duration",
            str(seconds),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    wrk(app.url, load, seconds, bench.args.connections)
    spy.wait(30)
    if not out.exists():
        return [f"- {load.name}: no profile (py-spy could not sample)"]
    return summarize_profile(out, load.name)


# py-spy names frames "function (package/module.py:line)".
GROUPS = [
    ("JWT decode and verify (PyJWT, flask-jwt-extended)", r"\((jwt|flask_jwt_extended)/"),
    ("JWT signing", r"create_(access|refresh)_token"),
    ("redis-py and hiredis (client side of the round trips)", r"\((redis|hiredis)/"),
    ("ua-parser", r"\(ua_parser"),
    ("JSON", r"\(json/|\(flask/json/"),
    (
        "observability (metrics, JSON logs, request ids)",
        r"\((prometheus_client|pythonjsonlogger)/|\(sessionsvc/(metrics|logs)\.py",
    ),
    ("Flask-Limiter (hooks, even with limits off)", r"\(flask_limiter/"),
    ("werkzeug (HTTP parsing, routing, response)", r"\(werkzeug/"),
    ("Flask (dispatch, contexts)", r"\(flask/"),
    ("gunicorn (accept, parse, write, access log)", r"\(gunicorn/"),
    ("sessionsvc's own code", r"\(sessionsvc/"),
]


def summarize_profile(path: Path, name: str) -> list[str]:
    """Attribute each sample to the innermost frame group it falls in (self time by layer)."""
    totals: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if not any("gunicorn" in f or "wsgi" in f for f in frames[:3]):
            continue  # the master process, not a worker
        samples += n
        group = "other (interpreter, sockets, stdlib)"
        for frame in reversed(frames):
            found = next((g for g, pattern in GROUPS if re.search(pattern, frame)), None)
            if found:
                group = found
                break
        totals[group] += n
        seen = set()
        for frame in frames:
            for g, pattern in GROUPS:
                if g not in seen and re.search(pattern, frame):
                    inclusive[g] += n
                    seen.add(g)
    layers = ", ".join(
        f"{group} {100 * n / samples:.0f}% ({100 * inclusive[group] / samples:.0f}%)"
        for group, n in totals.most_common()
    )
    return [f"- **{name}** ({samples} samples): {layers}."]
