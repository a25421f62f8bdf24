"""Issue 13 §5: odd requests get the JSON error shape, and no redirect built from Host.

Attacks: JSON nested 1,000 deep (a RecursionError and a 500); ``//`` in a path
(a 308 to ``http://<Host>/...`` with an HTML body, which a cache may keep).
Issue 17: ``GET /api/docs`` with ``Host: evil.example`` answered ``308 Location:
http://evil.example/api/docs/`` in HTML: werkzeug's slash redirect, which Flask
answers outside the error handlers. Defence: every routing redirect of the app
names the path alone, with no body.
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


@pytest.mark.parametrize(
    ("path", "location"),
    [("/api/docs", "/api/docs/"), ("/api/docs?x=1", "/api/docs/?x=1")],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_slash_redirect_names_no_host(client, method, path, location):
    response = client.open(path, method=method, headers={"Host": "evil.example"})

    assert response.status_code == 308
    assert response.headers["Location"] == location
    assert "evil.example" not in response.get_data(as_text=True)
    assert "html" not in response.headers.get("Content-Type", "")
    assert response.get_data() == b""


def test_no_route_of_the_app_redirects_to_the_host(app):
    client = app.test_client()
    # Every rule, with its variables filled: only the slash redirects may redirect, to a path.
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<path:filename>", "x").replace("<path:path>", "x")
        path = path.replace("<tail:original_path>", "x")
        path = path.replace("<user_id>", "u").replace("<session_id>", "s")
        response = client.get(path.rstrip("/") or "/", headers={"Host": "evil.example"})
        assert "evil.example" not in response.headers.get("Location", ""), rule.rule
