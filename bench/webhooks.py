"""What delivering webhooks takes: throughput to one endpoint, and revoke-to-receipt latency.

One Valkey of its own, an app called in process (its WSGI app), the delivery
worker in threads (``sessionsvc webhooks``'s own ``Worker``), and a receiver on
loopback that verifies every signature with the ``standardwebhooks`` package
(tests/receivers.py). Throughput: a burst of events appended to the stream at
once, timed until the receiver has verified the last. Latency: revokes one
after another, each timed from before the ``DELETE`` to its verified receipt.
``python -m bench.webhooks`` prints the table; ``make bench`` puts it in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.receivers import Receiver, wait_for

from bench.servers import SERVICE_KEY, bench_app, start_valkey
from sessionsvc.extension import events_stream, sessionsvc
from sessionsvc.webhooks import process

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(redis_url: str, *, burst: int, revokes: int) -> dict[str, float]:
    """Return the burst's events per second and the revokes' latencies (ms, median and p99)."""
    receiver = Receiver().start()
    hooks = [{"name": "bench", "url": receiver.url, "secret": receiver.secret, "events": ["*"]}]
    app = bench_app(
        redis_url,
        ENV="development",  # http to a receiver on loopback
        REDIS_KEY_PREFIX="bench-webhooks:",
        WEBHOOKS=json.dumps(hooks),
        RATELIMIT_ENABLED=False,
        LOG_LEVEL="CRITICAL",
    )
    redis = process.redis_client(app.config, app.instance_path)
    worker = process.worker_from_config(
        app.config, redis, sessionsvc(app).keys, events_stream(app.config) or ""
    )
    worker.start()
    try:
        wait_for(worker.ready, what="the worker")
        stream = events_stream(app.config) or ""
        fields = {"type": "session.revoked", "userId": "bench", "sessionIds": "x", "at": "0"}
        started = time.perf_counter()
        pipe = redis().pipeline(transaction=False)
        for _ in range(burst):
            pipe.xadd(stream, fields)
        pipe.execute()
        wait_for(lambda: len(receiver.received) >= burst, timeout=600, what="the burst")
        throughput = burst / (time.perf_counter() - started)

        def arrived(count: int) -> Callable[[], bool]:
            return lambda: len(receiver.received) >= count

        client = app.test_client()
        latencies = []
        for i in range(revokes):
            body = {"userId": f"bench-hooks-{i}", "userAgent": UA, "ip": "203.0.113.7"}
            login = client.post("/api/sessions", json=body, headers={"X-Service-Key": SERVICE_KEY})
            wait_for(arrived(burst + 2 * i + 1), what="the login")
            headers = {"Authorization": f"Bearer {login.json['accessToken']}"}
            before = time.perf_counter()
            client.delete(f"/api/sessions/{login.json['session']['_id']}", headers=headers)
            wait_for(arrived(burst + 2 * i + 2), what="the revoke")
            latencies.append((receiver.received[-1]["arrived"] - before) * 1e3)
    finally:
        worker.stop(timeout=10)
        redis.close()
        sessionsvc(app).close()
        receiver.stop()
    assert not receiver.failures
    return {
        "throughput": throughput,
        "median": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
    }


def section(tmp: Path, *, burst: int = 2000, revokes: int = 100) -> list[str]:
    """Return make bench's section: the figures, and how they were measured."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    valkey = start_valkey(tmp, "valkey-webhooks")
    try:
        figures = measure(valkey.connection_url, burst=burst, revokes=revokes)
    finally:
        valkey.stop()
    return [
        "### Webhooks: delivery throughput, and revoke to receipt",
        "",
        "The delivery worker (`sessionsvc webhooks`'s, in threads) on a Valkey of its own, "
        "one endpoint, a receiver on loopback verifying every signature with the "
        f"`standardwebhooks` package (bench/webhooks.py). Throughput: {burst} events "
        "appended at once, until the last is verified (one endpoint's requests are "
        f"sent one after another). Latency: {revokes} revokes (`DELETE /sessions/:id`, "
        "in process) one after another, from before the call to the receiver's verified "
        f"receipt. Load average before: {load}.",
        "",
        "| delivery to one endpoint | revoke to receipt: median, p99 |",
        "|---:|---:|",
        f"| {figures['throughput']:.0f} events/s | {figures['median']:.1f} ms,"
        f" {figures['p99']:.1f} ms |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=2000, help="events for the throughput")
    parser.add_argument("--revokes", type=int, default=100, help="revokes for the latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sessionsvc-bench-webhooks-") as tmp:
        print("\n".join(section(Path(tmp), burst=args.burst, revokes=args.revokes)))


if __name__ == "__main__":
    main()
