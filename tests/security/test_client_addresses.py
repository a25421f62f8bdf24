"""Issue 13 §4: rate limits keyed by the real client, one bucket per client.

Attacks: a login without ``ip`` escaped the per-IP limit; ``::ffff:a.b.c.d``
and ``a.b.c.d`` (or two addresses of one IPv6 /64) had separate allowances;
behind the shipped nginx every client shared the gateway's one bucket.
"""

from __future__ import annotations

import http.client
import json
import logging
from contextlib import ExitStack

import pytest

from tests.support import SERVICE_KEY, free_port
from tests.test_gateway import needs_nginx, start_nginx


@pytest.fixture
def client(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATE_LIMIT_PER_IP="2 per minute")
    return app.test_client()


def create(client, user_id, *, remote_addr="192.0.2.1", **body):
    return client.post(
        "/api/sessions",
        json={"userId": user_id, **body},
        headers={"X-Service-Key": SERVICE_KEY},
        environ_base={"REMOTE_ADDR": remote_addr},
    )


def test_a_login_without_ip_counts_against_the_callers_address(client, caplog):
    with caplog.at_level(logging.ERROR):
        statuses = [create(client, f"user{i}").status_code for i in range(3)]

    assert statuses == [201, 201, 429]
    assert create(client, "user9", remote_addr="192.0.2.2").status_code == 201
    assert "Skipping limit" not in caplog.text


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("203.0.113.99", "::ffff:203.0.113.99"),
        ("2001:db8:1:2::1", "2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
    ],
)
def test_one_host_has_one_allowance_however_its_address_is_written(client, first, second):
    statuses = [create(client, f"user{i}", ip=ip).status_code for i, ip in enumerate([first] * 2)]
    statuses.append(create(client, "user8", ip=second).status_code)

    assert statuses == [201, 201, 429]


def test_another_ipv6_network_has_its_own_allowance(client):
    for i in range(2):
        assert create(client, f"user{i}", ip="2001:db8:1:2::1").status_code == 201

    assert create(client, "user9", ip="2001:db8:1:3::1").status_code == 201


# --- Behind the shipped nginx, under the shipped gunicorn.conf.py ----------------------


def login_from(port: int, source: str, user_id: str, headers: dict[str, str] | None = None) -> int:
    """Log in through nginx from a loopback address of the client's own; return the status."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(
            "POST",
            "/api/sessions",
            body=json.dumps({"userId": user_id}),
            headers={"X-Service-Key": SERVICE_KEY, "Content-Type": "application/json"}
            | (headers or {}),
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@needs_nginx
def test_behind_the_shipped_nginx_each_client_has_its_own_bucket(gunicorn, tmp_path):
    server = gunicorn(
        SESSIONSVC_RATELIMIT_ENABLED="true",
        SESSIONSVC_RATE_LIMIT_PER_IP='"2 per minute"',
        WEB_CONCURRENCY="1",
    )
    with ExitStack() as stack:
        port = start_nginx(stack, tmp_path, sessionsvc=server.port, protected=free_port())

        first = [login_from(port, "127.0.0.2", f"a{i}") for i in range(3)]
        second = [login_from(port, "127.0.0.3", f"b{i}") for i in range(2)]
        # A client naming another in X-Forwarded-For still spends its own allowance.
        spoofed = [
            login_from(port, "127.0.0.4", f"c{i}", {"X-Forwarded-For": f"127.0.0.{10 + i}"})
            for i in range(3)
        ]
        blamed = login_from(port, "127.0.0.5", "d0", {"X-Forwarded-For": "127.0.0.2"})

    assert first == [201, 201, 429]
    assert second == [201, 201]
    assert spoofed == [201, 201, 429]
    assert blamed == 201  # not 127.0.0.2's spent bucket
