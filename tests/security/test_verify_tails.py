"""Issue 17: verify answers for any path below it, newlines and all.

Attack: ``verify/{path}`` with a newline (``%0A``) in the tail was a 404 outside
the OpenAPI document (werkzeug's ``path`` converter stops at a newline): a
gateway appending the original path (Envoy's ext_authz) got an answer verify
does not give. Defence: verify's tail converter matches any character.
"""

from __future__ import annotations

import pytest

from tests.support import auth, login

TAILS = ["a%0Ab", "a%0A", "%0A", "x/y%0D%0Az", "%0A/%0A", "a%09b%0B%0C"]


@pytest.mark.parametrize("tail", TAILS)
def test_a_tail_with_a_newline_is_verified(client, tail):
    token = login(client)["accessToken"]

    passed = client.get(f"/api/sessions/verify/{tail}", headers=auth(token))
    missing = client.get(f"/api/sessions/verify/{tail}")
    forged = client.get(f"/api/sessions/verify/{tail}", headers=auth(token[:-4] + "AAAA"))

    assert passed.status_code == 200, passed.json
    assert passed.headers["X-User-Id"] == "alice"
    assert (missing.status_code, missing.json["code"]) == (401, "MISSING_TOKEN")
    assert (forged.status_code, forged.json["code"]) == (401, "INVALID_TOKEN")


@pytest.mark.parametrize("tail", TAILS)
def test_a_revoked_session_is_refused_whatever_the_tail(client, tail):
    body = login(client)
    client.delete(f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"]))

    response = client.get(f"/api/sessions/verify/{tail}", headers=auth(body["accessToken"]))

    assert (response.status_code, response.json["code"]) == (401, "TOKEN_REVOKED")
