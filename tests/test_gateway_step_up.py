"""deploy/nginx.conf's step-up route under a real nginx: aal2 within 10 minutes, no support."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support import SERVICE_KEY, auth
from tests.test_gateway import gateway, needs_nginx  # noqa: F401 (the fixture, for pytest)

pytestmark = needs_nginx
ROUTE = "/account/security/password"
CHALLENGE = (
    'Bearer error="insufficient_user_authentication",'
    ' error_description="{what} is required.", acr_values="aal2", max_age=600'
)


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def test_a_short_session_gets_the_challenge_through_nginx_and_passes_after_a_step_up(
    gateway,  # noqa: F811 (the fixture)
    app,
):
    gw = gateway(app)
    body = gw.login("alice", acr="aal1", amr=["pwd"])
    token = auth(body["accessToken"])

    status, headers, refused = gw.request("GET", ROUTE, token)

    assert status == 401
    assert refused["code"] == "INSUFFICIENT_AUTHENTICATION"
    assert headers["WWW-Authenticate"] == CHALLENGE.format(what="A stronger authentication")
    assert len(gw.upstream) == 0
    # The rest of the site does not ask for it.
    assert gw.request("GET", "/orders/7", token)[0] == 200

    stepped = app.test_client().post(
        f"/api/admin/users/alice/sessions/{body['session']['_id']}/step-up",
        json={"acr": "aal2", "amr": ["pwd", "otp"]},
        headers={"X-Service-Key": SERVICE_KEY},
    )
    assert stepped.status_code == 200

    status, _, _ = gw.request("GET", ROUTE, token)  # the same token
    assert status == 200
    reached = gw.upstream.last()
    assert (reached.headers["x-session-acr"], reached.headers["x-session-amr"]) == (
        "aal2",
        "pwd,otp",
    )
    assert "x-session-actor" not in reached.headers  # none: nginx sends no empty header


def test_an_old_sign_in_gets_the_max_age_challenge(gateway, app):  # noqa: F811 (the fixture)
    gw = gateway(app)
    token = auth(gw.login("alice", acr="aal2", authTime=ago(3600))["accessToken"])

    status, headers, _ = gw.request("GET", ROUTE, token)

    assert status == 401
    assert headers["WWW-Authenticate"] == CHALLENGE.format(what="A more recent authentication")


def test_forged_assurance_headers_never_reach_the_upstream(gateway, app):  # noqa: F811
    gw = gateway(app)
    token = auth(gw.login("alice")["accessToken"])
    forged = {"X-Session-Acr": "aal3", "X-Session-Amr": "hwk", "X-Session-Actor": "root"}

    status, _, _ = gw.request("GET", "/orders/7", {**token, **forged})

    assert status == 200
    reached = gw.upstream.last().headers
    # Verify sent them empty, so nginx replaced the client's with nothing.
    assert not {"x-session-acr", "x-session-amr", "x-session-actor"} & set(reached)
    # And a client's own requirements never reach verify on the sensitive route.
    status, _, _ = gw.request("GET", f"{ROUTE}?acr_values=aal1&max_age=99999", {**token, **forged})
    assert status == 401


def test_a_support_session_is_refused_on_the_sensitive_route(gateway, app):  # noqa: F811
    gw = gateway(app)
    # The support desk's tool opens it, and steps it up to the route's level: still refused.
    admin = app.test_client()
    key = {"X-Service-Key": SERVICE_KEY}
    opened = admin.post(
        "/api/admin/users/alice/sessions",
        json={"actor": "op-7", "reason": "Ticket #1: cannot sign in"},
        headers=key,
    )
    assert opened.status_code == 201, opened.json
    body = opened.json
    stepped = admin.post(
        f"/api/admin/users/alice/sessions/{body['session']['_id']}/step-up",
        json={"acr": "aal2", "amr": ["otp"]},
        headers=key,
    )
    assert stepped.status_code == 200, stepped.json
    token = auth(body["accessToken"])

    assert gw.request("GET", ROUTE, token)[0] == 403
    assert gw.request("GET", "/orders/7", token)[0] == 200
    assert gw.upstream.last().headers["x-session-actor"] == "op-7"
