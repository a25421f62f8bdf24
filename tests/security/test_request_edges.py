"""Issue 13 §5: odd requests get the JSON error shape, and no redirect built from Host.

Attacks: JSON nested 1,000 deep (a RecursionError and a 500); ``//`` in a path
(a 308 to ``http://<Host>/...`` with an HTML body, which a cache may keep).
"""

from __future__ import annotations

import pytest

from tests.support import SERVICE_KEY, auth, login


def test_json_nested_too_deeply_is_a_400(make_app, caplog):
    client = make_app(RATELIMIT_ENABLED=True).test_client()  # the limiter parses the body too
    deep = "[" * 1000 + "]" * 1000

    response = client.post(
        "/api/sessions",
        data=f'{{"userId": "alice", "userAgent": {deep}}}',
        headers={"X-Service-Key": SERVICE_KEY, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert "RecursionError" not in caplog.text


@pytest.mark.parametrize(
    "path", ["/api//sessions", "//api/sessions", "/api/sessions//verify", "/api/sessions/verify//x"]
)
def test_a_repeated_slash_is_a_json_404_never_a_redirect_to_the_host(client, path):
    token = login(client)["accessToken"]

    response = client.get(path, headers={**auth(token), "Host": "evil.example"})

    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"
    assert "Location" not in response.headers
