"""Webhooks (issue 20): the events delivered over HTTP, signed, retried, replayed; and as SETs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from sessionsvc.extension import events_stream, sessionsvc
from sessionsvc.tokens.keyring import new_jwk
from sessionsvc.webhooks import process
from sessionsvc.webhooks.delivery import Worker
from sessionsvc.webhooks.payloads import CLAIMS_CHANGE, SESSION_REVOKED
from sessionsvc.webhooks.server import serve
from tests.receivers import OTHER_SECRET, SECRET, Receiver, endpoint, wait_for, webhooks
from tests.support import JWT_SECRET, SERVICE_KEY, auth, free_port, login

FAST = {  # retries and claims quick enough for a test
    "WEBHOOK_RETRY_MIN": "50ms",
    "WEBHOOK_RETRY_MAX": "200ms",
    "WEBHOOK_TIMEOUT": "2s",
    "WEBHOOK_CLAIM_IDLE": "3s",
}
ADMIN = {"X-Service-Key": SERVICE_KEY}


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**options: Any) -> Receiver:
        started.append(Receiver(**options).start())
        return started[-1]

    yield start
    for receiver in started:
        if receiver.hold is not None:
            receiver.hold.set()
        receiver.stop()


@pytest.fixture
def deliver(make_app) -> Iterator[Callable[..., tuple[Any, Worker]]]:
    """Return a starter of an app and its delivery worker (in threads), stopped after."""
    workers: list[Worker] = []
    clients: list[Any] = []

    def start(*entries: dict[str, Any], **overrides: Any) -> tuple[Any, Worker]:
        app = make_app(WEBHOOKS=webhooks(*entries), **FAST | overrides)
        redis = process.redis_client(app.config, app.instance_path)
        clients.append(redis)
        worker = process.worker_from_config(
            app.config, redis, sessionsvc(app).keys, events_stream(app.config)
        )
        worker.start()
        wait_for(worker.ready, what="the worker's groups")
        workers.append(worker)
        return app, worker

    yield start
    for worker in workers:
        worker.stop(timeout=10)
    for client in clients:
        client.close()


def es256_keys() -> str:
    return json.dumps({"keys": [new_jwk("ES256", "set-key", active=True)]})


# --- Delivery -------------------------------------------------------------------------------


def test_each_event_is_delivered_signed_to_the_standard_webhooks_spec(deliver, receivers):
    receiver = receivers()
    app, _worker = deliver(endpoint("app", receiver, ["*"]))
    client = app.test_client()

    body = login(client)
    client.delete(f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"]))

    wait_for(lambda: len(receiver.received) >= 2, what="two deliveries")
    created, revoked = sorted(receiver.received, key=lambda d: d["id"])
    session_id = body["session"]["_id"]
    assert created["body"]["type"] == "session.created"
    assert revoked["body"]["type"] == "session.revoked"
    assert revoked["body"]["data"]["sessionIds"] == [session_id]
    assert revoked["body"]["data"]["userId"] == "alice"
    assert isinstance(revoked["body"]["data"]["at"], int)
    assert revoked["body"]["timestamp"].endswith("Z")
    assert revoked["headers"]["webhook-signature"].startswith("v1,")
    assert receiver.failures == []


def test_with_two_secrets_both_sign_so_either_verifies(deliver, receivers):
    old, new = receivers(secret=SECRET), receivers(secret=OTHER_SECRET)
    entries = [
        endpoint(name, receiver, ["session.created"], secrets=[OTHER_SECRET, SECRET])
        for name, receiver in (("old", old), ("new", new))
    ]
    app, _worker = deliver(*entries)

    login(app.test_client())

    wait_for(lambda: old.received and new.received, what="both receivers")
    assert old.failures == new.failures == []
    assert len(old.received[0]["headers"]["webhook-signature"].split(" ")) == 2


def test_a_receiver_with_a_wrong_secret_fails_verification(deliver, receivers):
    receiver = receivers(secret=OTHER_SECRET)
    app, _worker = deliver(endpoint("app", receiver, ["*"], secret=SECRET))

    login(app.test_client())

    wait_for(lambda: receiver.failures, what="a verification failure")
    assert receiver.received == []


@pytest.mark.parametrize(
    ("patterns", "wanted"),
    [
        (["session.revoked"], ["session.revoked"]),
        (["session.*"], ["session.created", "session.revoked", "session.risky"]),
        (["sessions.*", "account.*"], ["account.compromise_reported"]),
        (
            ["*"],
            ["session.created", "session.revoked", "session.risky", "account.compromise_reported"],
        ),
    ],
)
def test_an_endpoint_gets_the_types_it_asked_for_new_types_included(
    deliver, receivers, redis, key_prefix, patterns, wanted
):
    receiver, everything = receivers(), receivers()
    app, _worker = deliver(
        endpoint("picky", receiver, patterns), endpoint("all", everything, ["*"])
    )
    client = app.test_client()
    body = login(client)
    client.delete(f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"]))
    # Types other parts of the service add, with fields of their own: passed on as they are.
    redis.xadd(
        f"{key_prefix}events",
        {
            "type": "session.risky",
            "userId": "alice",
            "sessionIds": body["session"]["_id"],
            "at": "1",
            "expireAt": "",
            "risk": "{}",
        },
    )
    redis.xadd(
        f"{key_prefix}events",
        {
            "type": "account.compromise_reported",
            "userId": "alice",
            "sessionIds": "",
            "at": "2",
            "expireAt": "",
        },
    )

    wait_for(lambda: len(everything.received) == 4, what="every event at the catch-all")
    time.sleep(0.3)  # room for a wrong delivery to arrive

    assert sorted(d["body"]["type"] for d in receiver.received) == sorted(wanted)
    risky = [d for d in everything.received if d["body"]["type"] == "session.risky"]
    assert risky[0]["body"]["data"]["risk"] == "{}"


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_a_failed_delivery_is_retried_with_the_same_webhook_id(deliver, receivers, status):
    receiver = receivers(status=status)
    app, _worker = deliver(endpoint("app", receiver, ["session.created"]))

    login(app.test_client())
    wait_for(lambda: len(receiver.received) >= 2, what="a retry")
    receiver.status = 200
    wait_for(
        lambda: (
            app.test_client()
            .get("/api/admin/webhooks/deliveries", headers=ADMIN)
            .json["deliveries"][0]["outcome"]
            == "delivered"
        ),
        what="the delivery",
    )

    assert len(receiver.ids) == 1  # every attempt carried the one event's id
    listed = app.test_client().get("/api/admin/webhooks/deliveries", headers=ADMIN).json
    outcomes = [(d["outcome"], d["status"]) for d in reversed(listed["deliveries"])]
    assert outcomes[0] == ("retry", status)
    assert outcomes[-1] == ("delivered", 200)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_4xx_other_than_408_and_429_is_not_retried_but_dead_lettered(deliver, receivers, status):
    receiver = receivers(status=status)
    app, _worker = deliver(endpoint("app", receiver, ["session.created"]))
    client = app.test_client()

    login(client)
    dead = wait_for(
        lambda: client.get("/api/admin/webhooks/dead-letters", headers=ADMIN).json["deadLetters"],
        what="a dead letter",
    )
    time.sleep(0.5)  # a retry, if there were one, would be due by now

    assert receiver.requests == 1
    assert dead[0]["status"] == status
    assert dead[0]["attempts"] == 1
    assert dead[0]["event"]["type"] == "session.created"


def test_a_delivery_failing_past_the_horizon_is_dead_lettered(deliver, receivers):
    receiver = receivers(status=500)
    app, _worker = deliver(endpoint("app", receiver, ["session.created"]), WEBHOOK_RETRY_HORIZON=1)
    client = app.test_client()

    login(client)
    dead = wait_for(
        lambda: client.get("/api/admin/webhooks/dead-letters", headers=ADMIN).json["deadLetters"],
        what="a dead letter",
    )

    assert dead[0]["attempts"] >= 2  # retried within the horizon, then given up
    assert receiver.requests == dead[0]["attempts"]


def test_a_redirect_is_not_followed(deliver, receivers):
    elsewhere = receivers()
    receiver = receivers(status=307, headers={"Location": elsewhere.url})
    app, _worker = deliver(endpoint("app", receiver, ["session.created"]))

    login(app.test_client())
    wait_for(lambda: receiver.requests >= 2, what="a retry")

    assert elsewhere.requests == 0


def test_a_slow_endpoint_delays_no_other(deliver, receivers):
    hold = threading.Event()
    slow, fast = receivers(hold=hold), receivers()
    app, _worker = deliver(
        endpoint("slow", slow, ["session.created"]), endpoint("fast", fast, ["session.created"])
    )

    login(app.test_client())
    slow.arrived.wait(10)  # the slow receiver holds its first request...

    wait_for(
        lambda: fast.received, what="the fast endpoint's delivery"
    )  # ...the fast one is served
    assert slow.received == []
    hold.set()
    wait_for(lambda: slow.received, what="the slow endpoint's delivery")


def test_a_slow_batch_stays_with_its_process(deliver, receivers, redis, key_prefix):
    stream, group = f"{key_prefix}events", "webhooks:app"
    redis.xgroup_create(stream, group, id="0", mkstream=True)  # the worker reads from the start
    for number in range(8):  # one batch of 4 s: past WEBHOOK_CLAIM_IDLE (3 s)
        redis.xadd(stream, {"type": "session.created", "userId": f"u{number}", "at": "1"})
    receiver = receivers(delay=0.5)
    deliver(endpoint("app", receiver, ["session.created"]))
    claimed = []  # what another process would have claimed meanwhile, as idle for 3 s

    while len(receiver.ids) < 8:
        claimed += redis.xautoclaim(stream, group, "another", 3000, justid=True)
        time.sleep(0.1)

    assert claimed == [], claimed
    assert len(receiver.received) == 8


# --- The admin API ------------------------------------------------------------------------------


def test_dead_letters_are_replayed_one_or_all_since_a_time(deliver, receivers):
    receiver = receivers(status=410)
    app, _worker = deliver(endpoint("app", receiver, ["session.created"]))
    client = app.test_client()
    start = int(time.time() * 1000)
    login(client), login(client), login(client)
    dead = wait_for(
        lambda: (
            len(
                found := client.get(
                    "/api/admin/webhooks/dead-letters?endpoint=app", headers=ADMIN
                ).json["deadLetters"]
            )
            == 3
            and found
        ),
        what="three dead letters",
    )
    receiver.status = 200

    one = client.post(
        "/api/admin/webhooks/dead-letters/replay", json={"id": dead[0]["id"]}, headers=ADMIN
    )
    assert one.status_code == 200, one.json
    # The receiver saw each event once already (and answered 410).
    wait_for(lambda: len(receiver.received) == 3 + 1, what="the replayed one")
    rest = client.post("/api/admin/webhooks/replay", json={"since": start}, headers=ADMIN)
    wait_for(lambda: len(receiver.received) == 3 + 3, what="the rest")

    assert one.status_code == 200 and one.json == {"replayed": 1}
    assert rest.status_code == 200 and rest.json == {"replayed": 2}
    assert receiver.ids == {d["webhookId"] for d in dead}  # the same webhook-ids
    assert client.get("/api/admin/webhooks/dead-letters", headers=ADMIN).json == {"deadLetters": []}
    again = client.post(
        "/api/admin/webhooks/dead-letters/replay", json={"id": dead[0]["id"]}, headers=ADMIN
    )
    assert again.status_code == 404 and again.json["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/admin/webhooks/deliveries?limit=0", None),
        ("get", "/api/admin/webhooks/dead-letters?limit=many", None),
        ("post", "/api/admin/webhooks/dead-letters/replay", {"id": "not-an-id"}),
        ("post", "/api/admin/webhooks/dead-letters/replay", None),
        ("post", "/api/admin/webhooks/replay", {"since": "yesterday"}),
        ("post", "/api/admin/webhooks/replay", {"since": -1}),
        ("post", "/api/admin/webhooks/replay", {"since": 0, "endpoint": 7}),
        ("post", "/api/admin/webhooks/replay", ["since"]),
    ],
)
def test_the_admin_api_refuses_bad_input_as_json(make_app, method, path, body):
    client = make_app(WEBHOOKS=webhooks(endpoint("app", Receiver(), ["*"]))).test_client()

    response = getattr(client, method)(path, json=body, headers=ADMIN)

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/api/admin/webhooks/deliveries", "admin:read"),
        ("get", "/api/admin/webhooks/dead-letters", "admin:read"),
        ("post", "/api/admin/webhooks/replay", "admin:write"),
        ("post", "/api/admin/webhooks/dead-letters/replay", "admin:write"),
    ],
)
def test_the_admin_api_needs_a_service_key_with_its_scope(make_app, method, path, scope):
    other = "admin:write" if scope == "admin:read" else "admin:read"
    keys = json.dumps([{"name": "narrow", "key": "n" * 32, "scopes": [other]}])
    client = make_app(SERVICE_KEYS=keys).test_client()

    anonymous = getattr(client, method)(path, json={"since": 0})
    narrow = getattr(client, method)(path, json={"since": 0}, headers={"X-Service-Key": "n" * 32})

    assert anonymous.status_code == 401
    assert narrow.status_code == 403 and narrow.json["code"] == "FORBIDDEN"


# --- Security Event Tokens ---------------------------------------------------------------------


def test_revocations_and_claims_changes_go_out_as_caep_sets_verified_from_the_jwks(
    deliver, receivers
):
    receiver = receivers(status=202)
    app, _worker = deliver(
        endpoint("siem", receiver, ["*"], format="set", audience="https://siem.example"),
        JWT_KEYS=es256_keys(),
        JWT_SECRET_KEY=None,
    )
    client = app.test_client()
    first, second = login(client), login(client)
    ids = [first["session"]["_id"], second["session"]["_id"]]
    client.put("/api/admin/users/alice/claims", json={"claims": {"role": "viewer"}}, headers=ADMIN)
    # A claims change's SET carries the claims the session holds when it is sent:
    # they are sent before the revoke, or a revoked session would have none left.
    wait_for(lambda: len(receiver.tokens) == 2, what="two SETs (2 claims changes)")
    client.delete("/api/admin/users/alice/sessions", headers=ADMIN)

    wait_for(lambda: len(receiver.tokens) == 4, what="four SETs (2 claims changes, 2 revokes)")
    time.sleep(0.3)  # a session.created would be a fifth: none comes
    jwks = KeySet.import_key_set(client.get("/api/.well-known/jwks.json").json)
    seen = []
    for headers, token in receiver.tokens:
        assert headers["content-type"] == "application/secevent+jwt"
        decoded = jose_jwt.decode(token.decode(), jwks, algorithms=["ES256"])  # the JWKS alone
        assert decoded.header["typ"] == "secevent+jwt"
        claims = decoded.claims
        assert claims["iss"] == "sessionsvc" and claims["aud"] == "https://siem.example"
        assert claims["sub_id"]["format"] == "complex"
        assert claims["sub_id"]["user"] == {"format": "opaque", "id": "alice"}
        [(event_type, detail)] = claims["events"].items()
        seen.append((event_type, claims["sub_id"]["session"]["id"]))
        assert isinstance(detail["event_timestamp"], int)
        if event_type == CLAIMS_CHANGE:
            assert detail["claims"] == {"role": "viewer"}
    assert sorted(seen) == sorted(
        [(SESSION_REVOKED, i) for i in ids] + [(CLAIMS_CHANGE, i) for i in ids]
    )
    assert len({token for _headers, token in receiver.tokens}) == 4


def test_set_endpoints_need_a_key_the_jwks_publishes(make_app):
    app = make_app(WEBHOOKS=webhooks(endpoint("siem", Receiver(), ["*"], format="set")))

    with pytest.raises(ValueError, match="HMAC"):
        process.worker_from_config(
            app.config, sessionsvc(app).connect, sessionsvc(app).keys, "events"
        )


# --- The delivery process's own probes -----------------------------------------------------------


def test_the_process_serves_readyz_and_metrics(deliver, receivers):
    receiver = receivers()
    app, worker = deliver(endpoint("app", receiver, ["session.created"]))
    server = serve("127.0.0.1", 0, worker.ready, worker.metrics.registry)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        login(app.test_client())
        delivered = 'sessionsvc_webhook_deliveries_total{endpoint="app",outcome="delivered"} 1.0'
        # The receiver has the request before the worker has its answer and counts it.
        wait_for(
            lambda: delivered in urllib.request.urlopen(f"{base}/metrics").read().decode(),
            what="the delivery counted",
        )
        ready = urllib.request.urlopen(f"{base}/readyz")
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
    finally:
        server.shutdown()
        server.server_close()

    assert ready.status == 200
    assert receiver.received
    assert delivered in metrics
    assert 'sessionsvc_webhook_attempts_total{endpoint="app",status="2xx"} 1.0' in metrics
    assert "sessionsvc_webhook_oldest_undelivered_seconds" in metrics


def test_readyz_is_503_when_redis_is_unreachable(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_RETRIES=0)
    worker = process.worker_from_config(
        app.config, sessionsvc(app).connect, sessionsvc(app).keys, "events"
    )
    server = serve("127.0.0.1", 0, worker.ready, worker.metrics.registry)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/readyz")
    finally:
        server.shutdown()
        server.server_close()
        worker.stop()

    assert refused.value.code == 503
    assert json.loads(refused.value.read())["code"] == "STORE_UNAVAILABLE"


# --- Nothing is lost: a receiver down for a while, a delivery process killed ------------------


class DeliveryProcess:
    """``sessionsvc webhooks`` as a process of its own, as run beside gunicorn."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = int(env["SESSIONSVC_WEBHOOK_LISTEN"].rpartition(":")[2])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DeliveryProcess:
        command = [str(Path(sys.executable).parent / "sessionsvc"), "webhooks"]
        log = Path(self.env["SESSIONSVC_INSTANCE_PATH"]) / "webhooks.log"
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command, env=os.environ | self.env, stdout=output, stderr=subprocess.STDOUT
            )
        wait_for(self.ready, timeout=30, what="the delivery process's /readyz")
        return self

    def ready(self) -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz").status == 200
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.mark.slow
def test_nothing_is_lost_across_a_receiver_outage_and_a_killed_process(
    make_app, redis, redis_url, key_prefix, tmp_path, receivers
):
    receiver = receivers()
    hooks = webhooks(endpoint("app", receiver, ["*"]))
    env = {
        "SESSIONSVC_ENV": "development",
        "SESSIONSVC_INSTANCE_PATH": str(tmp_path),
        "SESSIONSVC_JWT_SECRET_KEY": JWT_SECRET,
        "SESSIONSVC_SERVICE_KEY": SERVICE_KEY,
        "SESSIONSVC_REDIS_URL": redis_url,
        "SESSIONSVC_REDIS_KEY_PREFIX": key_prefix,
        "SESSIONSVC_WEBHOOKS": hooks,
        "SESSIONSVC_WEBHOOK_LISTEN": f"127.0.0.1:{free_port()}",
        **{f"SESSIONSVC_{name}": value for name, value in FAST.items()},
    }
    client = make_app(WEBHOOKS=hooks).test_client()
    first = DeliveryProcess(env).start()
    second = DeliveryProcess(env)

    def events(count: int) -> None:
        for _ in range(count // 2):
            body = login(client, user_id=f"user-{time.monotonic_ns()}")
            client.delete(
                f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"])
            )

    try:
        events(20)
        wait_for(lambda: len(receiver.ids) >= 20, what="the first events")
        receiver.stop()  # down: every delivery fails, and is retried
        events(20)
        wait_for(lambda: redis.zcard(f"{key_prefix}webhooks:retries:app") >= 10, what="retries")
        receiver.start()  # back
        receiver.delay = 0.05  # slow enough for a kill to land in the middle of a batch
        events(40)
        wait_for(lambda: len(receiver.ids) >= 45, what="the batch under way")
        first.kill()  # mid-batch: its read entries and leased retries are held by a dead consumer
        second.start()  # claims them once WEBHOOK_CLAIM_IDLE has passed
        sent = {entry_id for entry_id, _fields in redis.xrange(f"{key_prefix}events")}
        wait_for(lambda: sent <= receiver.ids, timeout=60, what="every event at the receiver")
    finally:
        first.stop()
        second.stop()

    assert len(sent) == 80
    log = (tmp_path / "webhooks.log").read_text()
    assert "claimed" in log  # the kill left entries that the second process claimed
    assert receiver.failures == []  # every signature verified
