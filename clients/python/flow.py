"""The whole session flow through a client generated from sessionsvc's served OpenAPI document.

openapi-python-client writes the package ``sessionsvc_client`` from the running service; this
script, with that package on its path, runs login, list, verify, refresh, the admin list and a
claims update, revoke one, an error answer parsed as ``Error``, and revoke all (docs/clients.md):

    openapi-python-client generate --url http://127.0.0.1:8000/api/openapi.json \\
        --meta none --output-path generated/sessionsvc_client
    SESSIONSVC_URL=http://127.0.0.1:8000 SESSIONSVC_SERVICE_KEY=... \\
        PYTHONPATH=generated python clients/python/flow.py

tests/test_clients.py does this against a real server, and type-checks this file with mypy.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, TypeVar

from sessionsvc_client import AuthenticatedClient
from sessionsvc_client.api.admin import (
    list_user_sessions,
    revoke_user_sessions,
    set_session_claims,
    set_user_claims,
)
from sessionsvc_client.api.gateway import verify_session_get
from sessionsvc_client.api.sessions import (
    create_session,
    list_sessions,
    refresh_session,
    revoke_all_sessions,
    revoke_session,
)
from sessionsvc_client.models import (
    Claims,
    ClaimsUpdate,
    ClaimsUpdated,
    Error,
    Login,
    LoginRequest,
    RevokeAllSessionsKeep,
    Session,
    SessionList,
    Tokens,
    Verified,
)
from sessionsvc_client.types import Response

T = TypeVar("T")
URL = os.environ.get("SESSIONSVC_URL", "http://127.0.0.1:8000")
SERVICE_KEY = os.environ["SESSIONSVC_SERVICE_KEY"]
USER = "py-client"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
# An answer the document does not list raises errors.UnexpectedStatus.
service = AuthenticatedClient(
    base_url=URL,
    token=SERVICE_KEY,
    prefix="",
    auth_header_name="X-Service-Key",
    raise_on_unexpected_status=True,
)


def bearer(token: str) -> AuthenticatedClient:
    """Return a client that sends token as its Bearer credential."""
    return AuthenticatedClient(base_url=URL, token=token, raise_on_unexpected_status=True)


def parsed(response: Response[Any], status: int, kind: type[T]) -> T:
    """Return the answer's body, parsed by the generated client as kind, with this status."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


def step(name: str) -> None:
    print(f"ok - {name}", flush=True)


def check(session: Session) -> None:
    """Check a session's fields have the types the document gives them."""
    assert isinstance(session.ip, str)
    assert isinstance(session.created_at, datetime) and session.created_at.tzinfo is not None
    assert session.expire_at > session.created_at
    assert isinstance(session.current, bool) and isinstance(session.device.is_dev, bool)


def login(ip: str, claims: dict[str, Any] | None = None) -> Login:
    body = LoginRequest(user_id=USER, user_agent=USER_AGENT, ip=ip)
    if claims is not None:
        body.claims = Claims.from_dict(claims)
    answer = parsed(create_session.sync_detailed(client=service, body=body), 201, Login)
    check(answer.session)
    assert answer.session.ip == ip
    return answer


def main() -> None:
    # A clean slate: the admin revokes whatever sessions the user has.
    parsed(revoke_user_sessions.sync_detailed(USER, client=service), 200, Error)

    # Login, twice: an IPv4 device with claims, and an IPv6 one.
    phone = login("203.0.113.7", {"role": "admin", "tenants": ["a", "b"]})
    laptop = login("2001:db8::7")
    step("login")

    # List, as the phone: both, newest first, the phone's own marked.
    mine = parsed(list_sessions.sync_detailed(client=bearer(phone.access_token)), 200, SessionList)
    for session in mine.sessions:
        check(session)
    assert [s.field_id for s in mine.sessions] == [laptop.session.field_id, phone.session.field_id]
    assert [s.current for s in mine.sessions] == [False, True]
    step("list")

    # Verify, as a gateway would: the ids and the claims.
    verified = parsed(
        verify_session_get.sync_detailed(client=bearer(phone.access_token)), 200, Verified
    )
    assert (verified.user_id, verified.session_id) == (USER, phone.session.field_id)
    assert isinstance(verified.claims, Claims)
    assert verified.claims.to_dict() == {"role": "admin", "tenants": ["a", "b"]}
    step("verify")

    # Refresh: a new pair, the old refresh token rotated out.
    tokens = parsed(refresh_session.sync_detailed(client=bearer(phone.refresh_token)), 200, Tokens)
    assert tokens.refresh_token != phone.refresh_token
    caller = bearer(tokens.access_token)
    step("refresh")

    # The admin list and a claims update, with the service key.
    listed = parsed(list_user_sessions.sync_detailed(USER, client=service), 200, SessionList)
    for session in listed.sessions:
        check(session)
    assert len(listed.sessions) == 2 and not any(s.current for s in listed.sessions)
    step("admin list")

    viewer = ClaimsUpdate(claims=Claims.from_dict({"role": "viewer"}))
    changed = parsed(
        set_session_claims.sync_detailed(USER, phone.session.field_id, client=service, body=viewer),
        200,
        ClaimsUpdated,
    )
    assert changed.session_ids == [phone.session.field_id]
    tiered = ClaimsUpdate(claims=Claims.from_dict({"tier": 2}))
    everyone = parsed(
        set_user_claims.sync_detailed(USER, client=service, body=tiered), 200, ClaimsUpdated
    )
    assert sorted(everyone.session_ids) == sorted(s.field_id for s in listed.sessions)
    reverified = parsed(verify_session_get.sync_detailed(client=caller), 200, Verified)
    assert isinstance(reverified.claims, Claims) and reverified.claims.to_dict() == {"tier": 2}
    step("claims update")

    # Revoke one: the phone signs the laptop out.
    revoked = parsed(
        revoke_session.sync_detailed(laptop.session.field_id, client=caller), 200, Error
    )
    assert revoked.code == "SESSION_REVOKED"
    step("revoke one")

    # An error answer, parsed as the error type: the laptop's session is gone.
    gone = parsed(revoke_session.sync_detailed(laptop.session.field_id, client=caller), 404, Error)
    assert gone.code == "SESSION_NOT_FOUND" and gone.error
    stale = parsed(list_sessions.sync_detailed(client=bearer(laptop.access_token)), 401, Error)
    assert stale.code == "TOKEN_REVOKED"
    step("error")

    # Revoke all: the others first (keep=current), then every one, this one too.
    third = login("198.51.100.9")
    others = parsed(
        revoke_all_sessions.sync_detailed(client=caller, keep=RevokeAllSessionsKeep.CURRENT),
        200,
        Error,
    )
    assert others.code == "ALL_SESSIONS_REVOKE"
    third_gone = verify_session_get.sync_detailed(client=bearer(third.access_token))
    assert parsed(third_gone, 401, Error).code == "TOKEN_REVOKED"
    everything = parsed(revoke_all_sessions.sync_detailed(client=caller), 200, Error)
    assert everything.code == "ALL_SESSIONS_REVOKE"
    left = parsed(list_user_sessions.sync_detailed(USER, client=service), 200, SessionList)
    assert left.sessions == []
    step("revoke all")


if __name__ == "__main__":
    main()
    print("the Python client's flow passed")
