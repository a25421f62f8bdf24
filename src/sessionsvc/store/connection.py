"""The Redis client for the configured deployment: one server, Sentinel, or Cluster."""

from __future__ import annotations

import copy
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias, TypeVar

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

T = TypeVar("T")

# What RedisCluster raises besides RedisError (no node reachable, no slot table).
ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
# A server that accepts connections and answers nothing (paused, overloaded, a
# dead host) shows only as a timeout; asking it again costs another one.
HANG = (redis.TimeoutError, socket.timeout)


def hung(error: BaseException) -> bool:
    """Tell whether an error is, or was caused by, a server that answered nothing in time.

    A Cluster client raises a timeout of a topology refresh as the cause of its own error.
    """
    return isinstance(error, HANG) or isinstance(error.__cause__, HANG)


class CircuitOpen(redis.ConnectionError):
    """Redis timed out lately and another request is finding out whether it is back."""

    def __init__(self) -> None:
        super().__init__("Redis timed out lately; failing fast while one request probes it")


class CircuitBreaker:
    """Fail fast once Redis has timed out, while one call at a time probes it.

    One per client, so per worker process: every connection of the client (each
    with its own copy of the BreakerRetry) shares it. Closed, every
    call goes through. After a timeout it opens: one call at a time still goes
    to Redis (the probe), every other call fails at once with CircuitOpen. The
    probe's answer closes it again, so the service is back on Redis's first
    answer, and at most one thread per worker ever waits on a hung server.
    """

    def __init__(self) -> None:
        self.is_open = False
        self._probe: int | None = None  # the thread of the call let through while open
        self._lock = threading.Lock()
        self._calls = threading.local()  # this thread's call in progress, if any

    @contextmanager
    def call(self) -> Iterator[None]:
        """Run one call to Redis through the breaker: fail at once, or go and record how it went.

        Calls nested in this thread's call (a reconnect inside a command) only run:
        the outer call's outcome is what counts.
        """
        if getattr(self._calls, "active", False):
            yield
            return
        if self.is_open and not self._take_probe():
            raise CircuitOpen()
        self._calls.active = True
        try:
            yield
        except Exception as error:
            # Open after a timeout; any other error is an answer (a refused connection too).
            self.is_open = hung(error)
            raise
        else:
            self.is_open = False
        finally:
            self._calls.active = False
            if self._probe == threading.get_ident():
                self._probe = None

    def _take_probe(self) -> bool:
        with self._lock:
            if self._probe is None:
                self._probe = threading.get_ident()
            return self._probe == threading.get_ident()


class BreakerRetry(Retry):
    """redis-py's Retry, through a CircuitBreaker, and never again after a timeout.

    Retries still cover what a second try can fix (a reset connection, a
    failed-over primary); a hung server is left to the breaker.
    """

    def __init__(self, backoff: ExponentialBackoff, retries: int, breaker: CircuitBreaker) -> None:
        super().__init__(backoff, retries)
        self.breaker = breaker

    def __deepcopy__(self, memo: dict[int, Any]) -> BreakerRetry:
        """Copy the retry's own state (its backoff), but never its breaker.

        A client copies the Retry it is given for each of its connections, and
        those copies must guard the same calls with the one breaker.
        """
        memo[id(self.breaker)] = self.breaker
        copied = copy.copy(self)
        copied.__dict__ = copy.deepcopy(self.__dict__, memo)
        return copied

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def fail_then_stop_if_hung(error: Exception, *count: int) -> None:
            fail(error, *count)  # disconnects: a late reply is never read as the next one's
            if isinstance(error, HANG):
                raise error

        with self.breaker.call():
            return super().call_with_retry(
                do, fail_then_stop_if_hung, is_retryable, with_failure_count
            )


def _retry(retries: int, breaker: CircuitBreaker | None) -> Retry:
    backoff = ExponentialBackoff(cap=0.2, base=0.05)
    return BreakerRetry(backoff, retries, breaker or CircuitBreaker())


def _socket_options(timeout: float) -> dict[str, Any]:
    # No health_check_interval: its PING on connect would run inside connect's own
    # retry, nested in each command's retry, and triple the worst wait on a hung
    # server. A stale connection fails its command and is retried anyway.
    return {"decode_responses": True, "socket_timeout": timeout, "socket_connect_timeout": timeout}


def redis_client(
    url: str,
    *,
    timeout: float,
    retries: int,
    breaker: CircuitBreaker | None = None,
    **options: Any,
) -> redis.Redis:
    """Make a client that gives up on a dead or hung server within a bounded time."""
    return redis.Redis.from_url(
        url,
        retry=_retry(retries, breaker),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **_socket_options(timeout) | options,
    )


class BreakerCluster(RedisCluster):
    """RedisCluster through a CircuitBreaker, and never again after a timeout.

    RedisCluster retries whole commands in a loop of its own, after refreshing
    its slot table, so MOVED/ASK/TRYAGAIN and a failed-over primary are its job;
    it takes only the number of retries from its Retry and never calls it, so
    the breaker wraps each command (and script) here. Its node connections
    never retry. Its pipelines, which the service does not use on a Cluster,
    are not guarded.
    """

    # The loop's own list of errors worth another try, less a timeout: a hung
    # node would be asked again, for another timeout each time (docs/dependencies.md).
    ERRORS_ALLOW_RETRY = tuple(  # type: ignore[assignment]  # the base types it by length
        error for error in RedisCluster.ERRORS_ALLOW_RETRY if error is not redis.TimeoutError
    )

    def __init__(self, *args: Any, breaker: CircuitBreaker, **kwargs: Any) -> None:
        self.breaker = breaker  # before RedisCluster's own set-up, which may run commands
        super().__init__(*args, **kwargs)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run one command (every retry of it included) through the breaker."""
        with self.breaker.call():
            return super().execute_command(*args, **kwargs)


def cluster_client(
    url: str,
    *,
    timeout: float,
    retries: int,
    breaker: CircuitBreaker | None = None,
    **options: Any,
) -> RedisCluster:
    """Make a Cluster client from any node's URL, with the same bounds (connects at once)."""
    breaker = breaker or CircuitBreaker()
    return BreakerCluster.from_url(
        url,
        breaker=breaker,
        retry=_retry(retries, breaker),  # its number of retries, and its backoff
        **_socket_options(timeout) | options,
    )


def sentinel_client(
    sentinels: str | list[str],
    service: str,
    *,
    timeout: float,
    retries: int,
    breaker: CircuitBreaker | None = None,
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
        retry=_retry(retries, breaker),
        # A connection to a demoted primary fails with ConnectionError, so a
        # retry asks Sentinel again and reaches the new one.
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **credentials,
    )


def close(client: Client) -> None:
    """Close a client's connections: RedisCluster.close() leaves its nodes' pools open."""
    if isinstance(client, RedisCluster):
        client.disconnect_connection_pools()
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
    client: Client,
    script: Script,
    keys: list[str],
    args: list,
    replicas: int,
    timeout_ms: int,
    *,
    aof: bool = False,
) -> tuple[Any, int, int]:
    """Run a script and WAIT behind it on the same connection: a pipeline, one round trip.

    Return the script's result, whether the server has it in its append-only
    file on disk (1 or 0; always 0 without ``aof``) and how many replicas
    acknowledged it. With ``aof``, WAITAOF 1 ``replicas``: the server and the
    replicas must have fsynced it; else WAIT: the replicas must have received
    it. Both count this connection's writes, so neither can be a command of its own.
    """
    for _ in range(2):  # the second time with the script loaded
        pipe = client.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        if aof:
            pipe.waitaof(1, replicas, timeout_ms)
        else:
            pipe.wait(replicas, timeout_ms)
        result, acknowledged = pipe.execute(raise_on_error=False)
        if not isinstance(result, NoScriptError):
            break
        client.script_load(script.script)
    for outcome in (result, acknowledged):
        if isinstance(outcome, Exception):
            raise outcome
    if aof:
        local, on_replicas = acknowledged
        return result, int(local), int(on_replicas)
    return result, 0, int(acknowledged)


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
            # Made outside the lock: on a hung server, callers waiting for the lock
            # would each wait out one more timeout, one after the other.
            made = self._make()
            with self._lock:
                if self._client is None:
                    self._client = made
                elif made is not self._client:
                    close(made)  # another thread got there first
                client = self._client
        return client

    def close(self) -> None:
        """Close the client's connections, if it was ever made."""
        if self._client is not None:
            close(self._client)


def connector(config: Mapping[str, Any], default_url: str) -> LazyClient:
    """Return a function giving the configured client, made on first use."""
    url = config["REDIS_URL"] or default_url
    bounds = {
        "timeout": config["REDIS_SOCKET_TIMEOUT"],
        "retries": config["REDIS_RETRIES"],
        "breaker": CircuitBreaker(),  # one per app, so per worker, whatever the client
    }
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
