"""Every change appends an event to the stream, in the same round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLUSTER
from tests.support import auth, login, logins_in_order

EXAMPLE = Path(__file__).parent.parent / "examples" / "consume_events.py"


DEVICE_EVENTS = ("session.new_device", "session.risky")  # every login here is a new device


def events(redis, key_prefix):
    return [fields for _id, fields in redis.xrange(f"{key_prefix}events")]


def test_each_change_appends_its_event(make_app, redis, key_prefix):
    client = make_app(MAX_SESSIONS_PER_USER=2, REFRESH_REUSE_GRACE=0).test_client()
    first, second, third = logins_in_order(client, 3)  # the cap evicts the first
    client.post("/api/sessions/refresh", headers=auth(second["refreshToken"]))
    client.post("/api/sessions/refresh", headers=auth(second["refreshToken"]))  # reuse: theft
    client.delete(f"/api/sessions/{third['session']['_id']}", headers=auth(third["accessToken"]))
    fourth, fifth = login(client), login(client)
    client.delete("/api/sessions", headers=auth(fifth["accessToken"]))

    first, second, third, fourth, fifth = (
        body["session"]["_id"] for body in (first, second, third, fourth, fifth)
    )
    got = [
        (e["type"], set(e["sessionIds"].split(",")))
        for e in events(redis, key_prefix)
        if e["type"] not in DEVICE_EVENTS  # tests/test_signals.py's
    ]
    assert got == [
        ("session.created", {first}),
        ("session.created", {second}),
        ("session.created", {third}),
        ("session.evicted", {first}),
        ("session.refreshed", {second}),
        ("session.theft_detected", {second}),
        ("session.revoked", {third}),
        ("session.created", {fourth}),
        ("session.created", {fifth}),
        ("sessions.revoked_all", {fourth, fifth}),
    ]
    for event in events(redis, key_prefix):
        assert event["userId"] == "alice"
        assert event["at"].isdigit()
    assert events(redis, key_prefix)[0]["expireAt"].isdigit()


def test_no_event_for_a_change_that_did_not_happen(client, redis, key_prefix):
    body = login(client)

    client.delete("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", headers=auth(body["accessToken"]))
    client.delete("/api/sessions?keep=current", headers=auth(body["accessToken"]))

    assert [e["type"] for e in events(redis, key_prefix)] == ["session.created"]


def test_events_can_be_turned_off(make_app, redis, key_prefix):
    client = make_app(EVENTS_STREAM="").test_client()

    login(client)

    assert redis.exists(f"{key_prefix}events") == 0


def test_the_example_consumer_reads_the_events(client, redis_url, key_prefix):
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    args = ["--url", redis_url, "--stream", f"{key_prefix}events", "--count", "2"]
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args, *(["--cluster"] if CLUSTER else [])],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in printed] == ["session.created", "sessions.revoked_all"]
    assert printed[1]["sessionIds"] == [body["session"]["_id"]]
