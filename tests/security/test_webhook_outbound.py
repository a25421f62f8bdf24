"""Server-side request forgery through webhooks (issue 20 §3).

The attack: whoever can set (or influence) an endpoint's URL, or the DNS of
its host, makes the delivery process post to the inside: the cloud metadata
address, a loopback admin port, a private service. A name that resolves to a
public address when checked and to 127.0.0.1 when connected (DNS rebinding)
slips past a check made on the name alone. A hung receiver would hold a
delivery thread for ever, and a redirect would lead it elsewhere.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from sessionsvc.webhooks import outbound
from sessionsvc.webhooks.outbound import Sender
from tests.receivers import SECRET, Receiver
from tests.support import JWT_SECRET, SERVICE_KEY

PRODUCTION = {
    "ENV": "production",
    "JWT_SECRET_KEY": JWT_SECRET,
    "SERVICE_KEY": SERVICE_KEY,
    "REDIS_URL": "redis://unused.example:6379/0",
}


def hooks(url: str) -> str:
    return json.dumps([{"name": "app", "url": url, "secret": SECRET, "events": ["*"]}])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    if started.hold is not None:
        started.hold.set()
    started.stop()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/in", "must use https"),
        ("https://127.0.0.1/in", "private or loopback address"),
        ("https://localhost:8443/in", "private or loopback address"),
        ("https://169.254.169.254/latest/meta-data", "private or loopback address"),
        ("https://10.0.0.7/in", "private or loopback address"),
        ("https://[::1]/in", "private or loopback address"),
        ("https://[::ffff:127.0.0.1]/in", "private or loopback address"),
    ],
)
def test_production_refuses_plain_http_and_inside_addresses_at_start(url, problem):
    with pytest.raises(ConfigError, match=problem):
        create_app(PRODUCTION | {"WEBHOOKS": hooks(url)})


def test_an_inside_address_is_taken_when_explicitly_allowed():
    create_app(
        PRODUCTION | {"WEBHOOKS": hooks("https://10.0.0.7/in"), "WEBHOOK_ALLOW_PRIVATE": True}
    )


def test_development_takes_http_on_loopback_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))
    development = {"ENV": "development", "JWT_SECRET_KEY": JWT_SECRET, "SERVICE_KEY": SERVICE_KEY}
    create_app(development | {"WEBHOOKS": hooks("http://127.0.0.1:9000/in")})

    with pytest.raises(ConfigError, match="http on loopback only"):
        create_app(development | {"WEBHOOKS": hooks("http://hooks.example.com/in")})


def test_the_guard_refuses_a_name_that_resolves_inside(receiver):
    sender = Sender(timeout=2, guard=True)
    try:
        # localhost is a name: only resolving it shows where it leads.
        answer = sender.post(receiver.url.replace("127.0.0.1", "localhost"), {}, b"{}")
    finally:
        sender.close()

    assert answer.error == "address refused" and not answer.retryable
    assert receiver.requests == 0


def test_the_guard_refuses_a_name_with_any_inside_address(receiver, monkeypatch):
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["93.184.215.14", "127.0.0.1"])
    sender = Sender(timeout=2, guard=True)
    try:
        answer = sender.post(f"http://rebind.example:{receiver.port}/hooks", {}, b"{}")
    finally:
        sender.close()

    assert answer.error == "address refused"
    assert receiver.requests == 0


def test_the_guard_connects_to_the_address_it_checked_not_a_fresh_lookup(receiver, monkeypatch):
    # The check passes for the address resolve() gave (made "public" here); a second
    # lookup of the name, as a rebinding attack needs, would fail: the name does not exist.
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["127.0.0.1"])
    monkeypatch.setattr(outbound, "is_public_address", lambda address: True)
    receiver.secret = None  # a bare request: only where it arrived matters
    sender = Sender(timeout=2, guard=True)
    try:
        answer = sender.post(f"http://rebind.invalid:{receiver.port}/hooks", {}, b"{}")
    finally:
        sender.close()

    assert answer.ok
    assert receiver.requests == 1


def test_a_hung_receiver_is_given_up_after_the_timeout(receiver):
    receiver.hold = threading.Event()  # answers nothing until the end of the test
    sender = Sender(timeout=0.3, guard=False)
    try:
        answer = sender.post(receiver.url, {}, b"{}")
    finally:
        sender.close()

    assert answer.error == "timeout" and answer.retryable
