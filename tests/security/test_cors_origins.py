"""Issue 17: CORS origins are exact origins, never regular expressions.

Attack: flask-cors reads an origin holding ``*``, ``?``, ``[``, ``(`` and the like as
a regular expression: ``CORS_ORIGINS`` could hold a pattern (``https://.+``,
``https://?.example.com``, which matches ``https://aexample.com``), and even the
exact origin ``http://[::1]:8080`` matched ``http://1:8080``, each allowed with
credentials. Defence: each entry must be ``scheme://host[:port]`` (http or https,
a DNS name or an IP literal) or the service refuses to start, and each is
matched exactly.
"""

from __future__ import annotations

import pytest

from sessionsvc.config import ConfigError

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "x-requested-with",
}


@pytest.mark.parametrize(
    "origin",
    [
        ".*",
        "https://*.example.com",
        "https://?.example.com",
        "https://.+",
        "https://app.example.com|https://evil.example",
        "https://(app|admin).example.com",
        "https://app.example.com$",
        "https://app\\.example\\.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com:port",
        "ftp://app.example.com",
        "http://[not-ipv6]:8080",
        "app.example.com",
    ],
)
def test_an_origin_that_is_not_exact_is_refused_at_start(make_app, origin):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        make_app(CORS_ORIGINS=[origin])


@pytest.mark.parametrize(
    ("listed", "asking"),
    [
        ("http://[::1]:8080", "http://1:8080"),
        ("http://[::1]:8080", "http://:8080"),
        ("https://www.example.com", "https://wwwaexample.com"),
        ("https://www.example.com", "https://www.example.com.evil.example"),
        ("https://example.com", "https://aexample.com"),
    ],
)
def test_a_preflight_from_an_origin_not_listed_gets_no_cors(make_app, listed, asking):
    client = make_app(CORS_ORIGINS=[listed]).test_client()

    refused = client.options("/api/sessions/refresh", headers={"Origin": asking, **PREFLIGHT})
    allowed = client.options("/api/sessions/refresh", headers={"Origin": listed, **PREFLIGHT})

    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Credentials" not in refused.headers
    assert allowed.headers["Access-Control-Allow-Origin"] == listed
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"


def test_an_origin_matches_in_any_case(make_app):
    client = make_app(CORS_ORIGINS=["https://App.Example.com"]).test_client()

    response = client.options(
        "/api/sessions/refresh", headers={"Origin": "https://app.example.com", **PREFLIGHT}
    )

    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
