"""Issue 13 §2: slow clients cost nginx, not gunicorn.

Attack: connections that send a header line every few seconds and never end
their request. A gthread worker gives each one a thread until it is complete,
so a few of them take every thread of gunicorn. Decision (docs/security.md):
gunicorn must not face clients; the documented deployment puts the shipped
deploy/nginx.conf in front, which reads whole requests before passing them on.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from contextlib import ExitStack

import pytest

from tests.support import auth, free_port
from tests.test_gateway import needs_nginx, start_nginx

pytestmark = [pytest.mark.slow, needs_nginx]

LINE_EVERY = 4.0  # seconds between two header lines of an attacker


def slow_header_attack(port: int, connections: int, seconds: float) -> threading.Thread:
    """Hold ``connections`` requests open for ``seconds``, each sending a header line now and then.

    A connection the server closes is opened again, so the pressure stays on.
    """

    def attack() -> None:
        deadline = time.monotonic() + seconds
        sockets: list[socket.socket | None] = [None] * connections
        try:
            while time.monotonic() < deadline:
                for i, sock in enumerate(sockets):
                    try:
                        if sock is None:
                            sock = sockets[i] = socket.create_connection(("127.0.0.1", port), 2)
                            sock.sendall(b"GET /api/sessions HTTP/1.1\r\nHost: victim\r\n")
                        sock.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        if sock is not None:
                            sock.close()
                        sockets[i] = None
                time.sleep(min(LINE_EVERY, max(0.0, deadline - time.monotonic())))
        finally:
            for sock in sockets:
                if sock is not None:
                    sock.close()

    thread = threading.Thread(target=attack, daemon=True)
    thread.start()
    return thread


def answer_times(port: int, path: str, headers: dict[str, str], until: threading.Thread) -> list:
    """Ask ``path`` every 0.25 s while ``until`` runs; return each answer's seconds (or None)."""
    times: list[float | None] = []
    while until.is_alive():
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            times.append(time.monotonic() - started if response.status == 200 else None)
        except OSError:
            times.append(None)
        finally:
            connection.close()
        time.sleep(0.25)
    return times


def test_slow_header_attack_on_the_documented_deployment(gunicorn, tmp_path):
    server = gunicorn()
    token = server.login()["accessToken"]

    # The attack is real: on gunicorn alone it starves every thread.
    attack = slow_header_attack(server.port, connections=20, seconds=6)
    time.sleep(1)
    alone = answer_times(server.port, "/healthz", {}, until=attack)
    assert any(took is None or took > 1.0 for took in alone), (
        "gunicorn alone now survives slow clients: revisit docs/security.md",
        alone,
    )
    attack.join()

    with ExitStack() as stack:
        port = start_nginx(stack, tmp_path, sessionsvc=server.port, protected=free_port())
        attack = slow_header_attack(port, connections=50, seconds=20)
        time.sleep(1)
        behind_nginx = answer_times(port, "/api/sessions", auth(token), until=attack)
        attack.join()

    assert len(behind_nginx) > 20
    assert all(took is not None and took < 1.0 for took in behind_nginx), behind_nginx
