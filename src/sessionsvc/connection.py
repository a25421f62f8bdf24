"""The Redis client for the configured deployment: one server, Sentinel, or Cluster."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import redis
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import parse_url
from redis.exceptions import NoScriptError
from redis.retry import Retry
from redis.sentinel import Sentinel

Client: TypeAlias = redis.Redis | RedisCluster

# What RedisCluster raises besides RedisError (no node reachable, no slot table).
ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)


def _retry(retries: int) -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), retries)


def _socket_options(timeout: float) -> dict[str, Any]:
    # No health_check_interval: its PING on connect would run inside connect's own
    # retry, nested in each command's retry, and triple the worst wait on a hung
    # server. A stale connection fails its command and is retried anyway.
    return {"decode_responses": True, "socket_timeout": timeout, "socket_connect_timeout": timeout}


def redis_client(url: str, *, timeout: float, retries: int, **options: Any) -> redis.Redis:
    """Make a client that gives up on a dead or hung server within a bounded time."""
    return redis.Redis.from_url(
        url,
        retry=_retry(retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **_socket_options(timeout) | options,
    )


def cluster_client(url: str, *, timeout: float, retries: int, **options: Any) -> RedisCluster:
    """Make a Cluster client from any node's URL, with the same bounds (connects at once)."""
    # The node connections themselves never retry: RedisCluster retries whole
    # commands, after refreshing its slot table, so MOVED/ASK/TRYAGAIN and a
    # failed-over primary are its job.
    return RedisCluster.from_url(url, retry=_retry(retries), **_socket_options(timeout) | options)


def sentinel_client(
    sentinels: str | list[str],
    service: str,
    *,
    timeout: float,
    retries: int,
    url: str | None = None,
) -> redis.Redis:
    """Make a client of the primary that Sentinel names ``service`` (found on each connect).

    ``url``'s username, password and database apply to the primary; its host is ignored.
    """
    addresses = sentinels.split(",") if isinstance(sentinels, str) else sentinels
    pairs = (address.strip().rpartition(":") for address in addresses)
    nodes = [(host.strip("[]"), int(port)) for host, _, port in pairs]  # [::1]:26379 too
    credentials = {
        key: value
        for key, value in (parse_url(url) if url else {}).items()
        if key in ("username", "password", "db")
    }
    # The sentinels get the socket timeouts only, not the primary's credentials.
    return Sentinel(nodes, **_socket_options(timeout)).master_for(
        service,
        retry=_retry(retries),
        # A connection to a demoted primary fails with ConnectionError, so a
        # retry asks Sentinel again and reaches the new one.
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **credentials,
    )


def close(client: Client) -> None:
    """Close a client's connections: RedisCluster.close() leaves its nodes' pools open."""
    if isinstance(client, RedisCluster):
        for node in client.get_nodes():
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()
    client.close()


def is_cluster(client: redis.Redis) -> bool:
    """Tell whether the server behind a plain client is a Cluster node (one round trip)."""
    return client.info("cluster").get("cluster_enabled") == 1


def thread_client(client: Client) -> Callable[[], Client]:
    """Return a function giving a client on a connection of the calling thread's own.

    redis-py's pool checks a connection out and back in around every command
    (a lock, and a poll() to see nothing is left unread on it): about half of
    a round trip's cost on the client. A worker thread serves one request at
    a time, so it keeps one connection instead, taken from the same pool (same
    timeouts and retries), made on first use. Made again in a forked child,
    never shared with it. A Cluster client (one pool per node), a Sentinel one
    (its pool finds the primary again after a failover) or a pipeline is used
    as it is.
    """
    if (
        not isinstance(client, redis.Redis)
        or isinstance(client, Pipeline)
        or type(client.connection_pool) is not redis.ConnectionPool
    ):
        return lambda: client
    own = threading.local()

    def connection() -> Client:
        if getattr(own, "pid", None) != os.getpid():
            # Connects now: a failure here is a store failure like any other.
            own.client = redis.Redis(
                connection_pool=client.connection_pool, single_connection_client=True
            )
            own.pid = os.getpid()
        return own.client

    return connection


def run_and_wait(
    client: redis.Redis, script: Script, keys: list[str], args: list, replicas: int, timeout_ms: int
) -> tuple[Any, int]:
    """Run a script and WAIT behind it on the same connection: a pipeline, one round trip.

    Return the script's result and how many replicas acknowledged it. WAIT
    counts the replicas that have this connection's writes, so it cannot be a
    command of its own.
    """
    for _ in range(2):  # the second time with the script loaded
        pipe = client.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.wait(replicas, timeout_ms)
        result, acknowledged = pipe.execute(raise_on_error=False)
        if not isinstance(result, NoScriptError):
            break
        client.script_load(script.script)
    for outcome in (result, acknowledged):
        if isinstance(outcome, Exception):
            raise outcome
    return result, acknowledged


class LazyClient:
    """Make the client on first use, then keep it; a failed attempt is retried next time.

    Cluster detection and RedisCluster itself need the server, and create_app
    does no I/O: a Redis that is down at start gives 503s until it is back.
    """

    def __init__(self, make: Callable[[], Client]) -> None:
        self._make = make
        self._client: Client | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
                client = self._client
        return client

    def close(self) -> None:
        """Close the client's connections, if it was ever made."""
        if self._client is not None:
            close(self._client)


def connector(config: Mapping[str, Any], default_url: str) -> LazyClient:
    """Return a function giving the configured client, made on first use."""
    url = config["REDIS_URL"] or default_url
    bounds = {"timeout": config["REDIS_SOCKET_TIMEOUT"], "retries": config["REDIS_RETRIES"]}
    if config["REDIS_SENTINELS"]:  # config.validate() refused REDIS_CLUSTER=true with it
        return LazyClient(
            lambda: sentinel_client(
                config["REDIS_SENTINELS"],
                config["REDIS_SENTINEL_MASTER"],
                url=config["REDIS_URL"],
                **bounds,
            )
        )
    cluster = config["REDIS_CLUSTER"]
    if cluster:
        return LazyClient(lambda: cluster_client(url, **bounds))
    # A Unix socket is never a Cluster node's address: no detection needed.
    if cluster is not None or url.startswith("unix:"):
        return LazyClient(lambda: redis_client(url, **bounds))

    def detect() -> Client:
        plain = redis_client(url, **bounds)
        if not is_cluster(plain):  # should this fail: a 503, and another try next time
            return plain
        plain.close()
        return cluster_client(url, **bounds)

    return LazyClient(detect)
