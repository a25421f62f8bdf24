"""The report's tables: round trips per request, memory per session, scaling, worker classes."""

from __future__ import annotations

import collections
import importlib.util
import os
import statistics
import time

import redis
from tests.support import Gunicorn, auth

from bench.load import REQUIREMENTS, Bench, Load, Result, Row, check, count_commands, wrk
from bench.seed import (
    Seeded,
    index_key,
    load_others,
    seed,
    session_key,
    user_agent,
    write_lines,
    write_sessions,
)
from bench.servers import SERVICE_KEY, bench_app, start_gunicorn, start_valkey
from sessionsvc.domain.devices import default_device_name, new_device_id, parse_device
from sessionsvc.domain.locations import Place
from sessionsvc.domain.sessions import SessionRef, new_session_id, now_ms
from sessionsvc.extension import get_store
from sessionsvc.store import SessionStore
from sessionsvc.tokens.refresh import new_refresh_secret
from sessionsvc.web.logins import issue_tokens


def command_table(bench: Bench, app: Gunicorn, seeded: dict[str, list[Seeded]]) -> list[str]:
    """Count round trips and commands per request of each endpoint, 50 requests each."""
    client = redis.Redis.from_url(bench.valkey.connection_url, decode_responses=True)
    n = 50
    user_iter = iter(seeded["count"])  # single-use: enough for the measurements and retries
    list_token = seeded["list"][0].access
    create_body = {"userId": f"count-new-{bench.run_id}", "userAgent": user_agent(1)}

    def send(method: str, path: str, headers: dict[str, str], body: object = None) -> None:
        status, _, answer = app.call(method, path, headers, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {answer}")

    cases = {
        "verify": lambda: send("GET", "/api/sessions/verify", auth(list_token)),
        "verify with requirements": lambda: send(
            "GET", f"/api/sessions/verify?{REQUIREMENTS}", auth(seeded["verify-aal2"][0].access)
        ),
        "list (10 sessions)": lambda: send("GET", "/api/sessions", auth(list_token)),
        "create": lambda: send(
            "POST", "/api/sessions", {"X-Service-Key": SERVICE_KEY}, create_body
        ),
        "refresh": lambda: send("POST", "/api/sessions/refresh", auth(next(user_iter).refresh)),
        "revoke (DELETE :id)": lambda: (
            s := next(user_iter),
            send("DELETE", f"/api/sessions/{s.session_id}", auth(s.access)),
        ),
        "revoke-all (DELETE, 1 session)": lambda: send(
            "DELETE", "/api/sessions", auth(next(user_iter).access)
        ),
    }
    lines = [
        "| endpoint | round trips / request | commands / request (server's count) |",
        "| --- | ---: | --- |",
    ]
    for name, request in cases.items():
        request()  # loads the script into the server's cache once (NOSCRIPT, SCRIPT LOAD)
        trips, calls = count_commands(
            client, request, n if "verify" in name or "list" in name else n - 2
        )
        text = ", ".join(f"{c:g} {name}" for name, c in sorted(calls.items(), key=lambda x: -x[1]))
        lines.append(f"| {name} | {trips:g} | {text} |")
        print(f"  {name:<32} {trips:g} round trips: {text}", flush=True)

    # Revoke-all of a user with 1,000 sessions, loaded straight into the store.
    user = f"bulk-{bench.run_id}"
    ids = [new_session_id() for _ in range(1000)]
    now = now_ms()
    expire_at = write_sessions(client, [(user, session_id) for session_id in ids], now)
    with bench.app.app_context():
        token = issue_tokens(SessionRef(user, ids[0]), expire_at, new_refresh_secret())[
            "accessToken"
        ]
    timings: list[float] = []

    def revoke_all() -> None:
        started = time.perf_counter()
        send("DELETE", "/api/sessions", auth(token))
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


def history_memory_table(bench: Bench, total: int = 20_000) -> list[str]:
    """Measure memory per history entry (an ended session), in fresh servers of their own."""
    lines = [
        "| history | entries | used_memory delta / entry | MEMORY USAGE / entry | encoding |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for per_user in (1, 100):  # one ended session per user; HISTORY_MAX_PER_USER's default
        server = start_valkey(bench.tmp, f"history-{per_user}")
        try:
            client = redis.Redis.from_url(server.connection_url, decode_responses=True)
            app = bench_app(server.connection_url, MAX_SESSIONS_PER_USER=0)
            users = [f"user-{i // per_user}@example.com" for i in range(total)]
            before = client.info("memory")["used_memory"]
            seed(app, users, events=False)
            with app.app_context():
                store = get_store()
                for start in range(0, total, 1000 * per_user):
                    pipe = client.pipeline(transaction=False)
                    ending = SessionStore(pipe, prefix=store.prefix)
                    for user_id in sorted(set(users[start : start + 1000 * per_user])):
                        ending.revoke_all(user_id)
                    pipe.execute()
            # What is left of the users is their history: the sessions and indexes are gone.
            after = client.info("memory")["used_memory"]
            sample = sorted(set(users))[:: max(1, total // per_user // 500)]
            usage = statistics.mean(client.memory_usage(store.history_key(u)) for u in sample)
            encoding = client.object("encoding", store.history_key(sample[0]))
            name = f"{per_user} ended session{'s' if per_user > 1 else ''} per user"
            per_entry = (after - before) / total
            lines.append(
                f"| {name} | {total:,} | {per_entry:.0f} B | {usage / per_user:.0f} B"
                f" | {encoding} |"
            )
            print(f"  {name}: {per_entry:.0f} B/entry (MEMORY USAGE {usage / per_user:.0f} B)")
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
        "empty": start_gunicorn("wsgi:app", bench.env, bench.tmp),
        "1M": start_gunicorn(
            "wsgi:app", bench.env | {"SESSIONSVC_REDIS_URL": full.connection_url}, bench.tmp
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
    "gthread, 1 worker per core x 4 threads (shipped)": (),
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
        app = start_gunicorn("wsgi:app", bench.env, bench.tmp, args)
        bare = start_gunicorn("bench.bare:app", bench.env, bench.tmp, args)
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
    return importlib.util.find_spec(name) is not None


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


def device_memory_table(bench: Bench, users: int = 2000) -> list[str]:
    """Measure what a user's known devices cost (issue 19), beside the per-session figure."""
    lines = [
        "| devices per user | users | used_memory delta / user | MEMORY USAGE of the devices "
        "hash | encoding |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    place = Place("London, United Kingdom", "GB", 51.5142, -0.0931)
    for per_user in (1, 5, 20):  # 20: MAX_DEVICES_PER_USER's default, the most a user keeps
        server = start_valkey(bench.tmp, f"devices-{per_user}")
        try:
            client = redis.Redis.from_url(server.connection_url, decode_responses=True)
            app = bench_app(server.connection_url)
            with app.app_context():
                store = get_store()
                before = client.info("memory")["used_memory"]
                for u in range(users):
                    for d in range(per_user):
                        store.device_login(
                            f"user-{u}@example.com",
                            None,
                            name=default_device_name(parse_device(user_agent(d))),
                            new_id=new_device_id(),
                            place=place,
                        )
                after = client.info("memory")["used_memory"]
                sample = [store.devices_key(f"user-{u}@example.com") for u in range(0, users, 20)]
            usage = statistics.mean(client.memory_usage(key) for key in sample)
            encoding = client.object("encoding", sample[0])
            per_user_bytes = (after - before) / users
            lines.append(
                f"| {per_user} | {users:,} | {per_user_bytes:.0f} B | {usage:.0f} B | {encoding} |"
            )
            print(f"  {per_user} devices per user: {per_user_bytes:.0f} B/user", flush=True)
            client.close()
        finally:
            server.stop()
    return lines
