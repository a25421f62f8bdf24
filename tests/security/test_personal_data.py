"""Issue 13 §5: answers carrying IP addresses and locations are never stored by a cache."""

from __future__ import annotations

from tests.support import SERVICE_KEY, auth, login


def test_session_lists_are_not_cached(client):
    token = login(client, ip="203.0.113.9")["accessToken"]

    own = client.get("/api/sessions", headers=auth(token))
    admin = client.get("/api/admin/users/alice/sessions", headers={"X-Service-Key": SERVICE_KEY})

    for response in (own, admin):
        assert response.status_code == 200
        assert response.json["sessions"][0]["ip"] == "203.0.113.9"
        assert response.headers["Cache-Control"] == "no-store"
