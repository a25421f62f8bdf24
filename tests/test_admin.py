"""The support staff's API, behind the service key."""

from __future__ import annotations

import pytest

from tests.support import SERVICE_KEY, auth, login

ADMIN = {"X-Service-Key": SERVICE_KEY}


def test_admin_lists_a_users_sessions(client):
    first, second = login(client), login(client)
    login(client, "bob")

    response = client.get("/api/admin/users/alice/sessions", headers=ADMIN)

    assert response.status_code == 200
    listed = response.json["sessions"]
    assert [s["_id"] for s in listed] == [second["session"]["_id"], first["session"]["_id"]]
    assert not any(s["current"] for s in listed)


def test_admin_revokes_one_session(client):
    first, second = login(client), login(client)

    response = client.delete(
        f"/api/admin/users/alice/sessions/{first['session']['_id']}", headers=ADMIN
    )

    assert response.json == {"code": "SESSION_REVOKED", "error": "Session has been revoked."}
    assert client.get("/api/sessions", headers=auth(first["accessToken"])).status_code == 401
    assert client.get("/api/sessions", headers=auth(second["accessToken"])).status_code == 200


def test_admin_revoke_of_another_users_session_is_not_found(client):
    bob = login(client, "bob")

    response = client.delete(
        f"/api/admin/users/alice/sessions/{bob['session']['_id']}", headers=ADMIN
    )

    assert response.status_code == 404
    assert response.json["code"] == "SESSION_NOT_FOUND"
    assert client.get("/api/sessions", headers=auth(bob["accessToken"])).status_code == 200


def test_admin_revokes_all_of_a_users_sessions(client):
    sessions = [login(client) for _ in range(3)]
    bob = login(client, "bob")

    response = client.delete("/api/admin/users/alice/sessions", headers=ADMIN)

    assert response.status_code == 200
    assert response.json == {
        "code": "ALL_SESSIONS_REVOKE",
        "error": "All Sessions has been revoked.",
    }
    for body in sessions:
        assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 401
    assert client.get("/api/sessions", headers=auth(bob["accessToken"])).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/admin/users/alice/sessions"),
        ("delete", "/api/admin/users/alice/sessions"),
        ("delete", "/api/admin/users/alice/sessions/AAAAAAAAAAAAAAAAAAAAAA"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"X-Service-Key": "wrong"}])
def test_admin_requires_the_service_key(client, snapshot, method, path, headers):
    body = login(client)
    before = snapshot()

    response = getattr(client, method)(path, headers=headers)

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_SERVICE_KEY"
    assert snapshot() == before
    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200


def test_a_user_token_is_no_admin_credential(client):
    body = login(client)

    response = client.get("/api/admin/users/alice/sessions", headers=auth(body["accessToken"]))

    assert response.status_code == 401


@pytest.mark.parametrize("user_id", ["al*ce", "a" * 129, "al%7Bice%7D"])
def test_admin_rejects_a_bad_user_id(client, user_id):
    response = client.get(f"/api/admin/users/{user_id}/sessions", headers=ADMIN)

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
