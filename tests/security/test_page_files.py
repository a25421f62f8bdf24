"""Issue 17: the page's files are served only with the page's headers.

Attack: Flask's app-wide static route answered ``/static/...`` at the root,
outside the page's blueprint: the page's files (or any put there) without its
Content-Security-Policy, ``nosniff`` and ``Referrer-Policy``. Defence: the app
has no static route of its own; the page serves its files under ``/ui/``, with
its headers.
"""

from __future__ import annotations

import pytest

from sessionsvc.web.browser import SECURITY_HEADERS

FILES = ["devices.js", "devices.css", "sessionsvc-client.js", "favicon.svg"]


@pytest.mark.parametrize("name", FILES)
def test_no_file_is_served_at_the_root(client, name):
    response = client.get(f"/static/{name}")

    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"


@pytest.mark.parametrize("name", FILES)
def test_the_pages_files_carry_its_headers(client, name):
    with client.get(f"/api/ui/{name}") as response:
        assert response.status_code == 200
        for header, value in SECURITY_HEADERS.items():
            assert response.headers[header] == value


def test_every_route_serving_files_is_the_pages(app):
    static = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.endswith("static")]

    assert static == ["/api/ui/<path:filename>"]
