"""Issue 17: X-Forwarded-For trusted by who sent it, not by a count of hops.

Attack: with ``TRUSTED_PROXIES=1`` (a hop count, werkzeug's ProxyFix), the last
``X-Forwarded-For`` entry was the client whoever sent it. Straight to gunicorn,
25 wrong service keys with 25 invented addresses were never throttled, and the
log named the invented address. Defence: ``TRUSTED_PROXIES`` lists the proxies'
addresses or networks; the header counts only from a peer in the list, walked
from its right end past every trusted hop; a bare number is refused at start.
"""

from __future__ import annotations

import http.client
import json

import pytest

from sessionsvc.config import ConfigError
from tests.support import SERVICE_KEY

WRONG_KEY = "not-the-service-key-" + "w" * 16


def wrong_key_attempts(send, count: int = 25) -> list[int]:
    """Send ``count`` wrong service keys, each naming a new invented client; return statuses."""
    return [send(f"198.51.100.{i + 1}") for i in range(count)]


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        # No proxy trusted: the header is the caller's word.
        ([], "192.0.2.7", "203.0.113.9", "192.0.2.7"),
        # A peer that is not a trusted proxy: its header is ignored.
        (["127.0.0.1"], "192.0.2.7", "203.0.113.9", "192.0.2.7"),
        (["10.0.0.0/8"], "192.0.2.7", "10.0.0.1, 203.0.113.9", "192.0.2.7"),
        # The trusted gateway: the entry it appended.
        (["127.0.0.1"], "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["127.0.0.1"], "127.0.0.1", "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (["::1"], "::1", "2001:db8::5", "2001:db8::5"),
        (["127.0.0.1"], "::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),
        # A CDN then the gateway, both trusted: walked past both.
        (
            ["127.0.0.1", "10.0.0.0/8"],
            "127.0.0.1",
            "198.51.100.1, 203.0.113.9, 10.1.2.3",
            "203.0.113.9",
        ),
        # What is not an address ends the walk at the hop that passed it on.
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "nonsense, 10.1.2.3", "10.1.2.3"),
    ],
)
def test_the_client_address_is_what_trusted_proxies_say(
    make_app, caplog, trusted, peer, forwarded_for, client
):
    app = make_app(TRUSTED_PROXIES=trusted)

    response = app.test_client().post(
        "/api/sessions",
        json={"userId": "alice"},
        headers={"X-Service-Key": SERVICE_KEY, "X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": peer},
    )

    assert response.status_code == 201, response.json
    assert response.json["session"]["ip"] == client


def test_wrong_keys_from_an_untrusted_peer_are_throttled_by_its_own_address(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=True, TRUSTED_PROXIES=["127.0.0.1", "::1"])
    client = app.test_client()

    def send(invented: str) -> int:
        return client.get(
            "/api/admin/users/alice/sessions",
            headers={"X-Service-Key": WRONG_KEY, "X-Forwarded-For": invented},
            environ_base={"REMOTE_ADDR": "192.0.2.66"},
        ).status_code

    statuses = wrong_key_attempts(send)

    assert statuses == [401] * 20 + [429] * 5
    assert "192.0.2.66" in caplog.text
    assert "198.51.100." not in caplog.text


@pytest.mark.parametrize("hops", [1, 2, "1", 0])
def test_a_hop_count_is_refused_with_what_to_write(make_app, hops):
    with pytest.raises(ConfigError) as refused:
        make_app(TRUSTED_PROXIES=hops)

    message = str(refused.value)
    assert "SESSIONSVC_TRUSTED_PROXIES" in message
    assert "e.g. SESSIONSVC_TRUSTED_PROXIES=127.0.0.1,::1" in message


def admin_call(port: int, source: str, forwarded_for: str) -> int:
    """Call the admin API straight at gunicorn from a loopback address of our own."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(
            "GET",
            "/api/admin/users/alice/sessions",
            headers={"X-Service-Key": WRONG_KEY, "X-Forwarded-For": forwarded_for},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_straight_to_gunicorn_invented_addresses_are_throttled_and_not_logged(gunicorn):
    # The shipped gunicorn.conf.py's default: the gateway on this host (127.0.0.1, ::1).
    server = gunicorn(SESSIONSVC_RATELIMIT_ENABLED="true", WEB_CONCURRENCY="1")

    statuses = wrong_key_attempts(lambda invented: admin_call(server.port, "127.0.0.9", invented))

    assert statuses == [401] * 20 + [429] * 5
    warnings = [
        json.loads(line)["message"]
        for line in server.log_text().splitlines()
        if "wrong X-Service-Key" in line
    ]
    assert warnings
    assert all("127.0.0.9" in warning for warning in warnings)
    assert "198.51.100." not in server.log_text()
