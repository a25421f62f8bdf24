"""Session claims: the login's claims in every access token, at verify, changed by the admin."""

from __future__ import annotations

import pytest

from sessionsvc.claims import MAX_BYTES, encode, parse_claims
from sessionsvc.errors import InvalidRequest

# --- The rules: small, flat, typed, and never a registered name -------------------------


def test_claims_of_every_allowed_type_are_taken_as_given():
    claims = {"role": "admin", "tenant": 42, "aal": 2.5, "mfa": True, "groups": ["a", "b"]}

    assert parse_claims(claims) == claims


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (["role"], "must be a JSON object"),
        ({"sub": "bob"}, "'sub' is a registered or reserved claim name"),
        ({"sid": "x"}, "'sid' is a registered or reserved claim name"),
        ({"claims": {}}, "'claims' is a registered or reserved claim name"),
        ({"": 1}, "must be 1-64 characters"),
        ({"a b": 1}, "must be 1-64 characters"),
        ({"x" * 65: 1}, "must be 1-64 characters"),
        ({"nested": {"a": 1}}, "'nested' must be a string, a number, a boolean or a list"),
        ({"nothing": None}, "'nothing' must be"),
        ({"mixed": ["a", 1]}, "'mixed' must be"),
        ({"nan": float("nan")}, "'nan' must be"),
        ({"big": "x" * MAX_BYTES}, f"at most {MAX_BYTES} bytes"),
    ],
)
def test_bad_claims_are_refused_with_a_clear_message(claims, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_claims(claims)


def test_encoded_claims_are_one_ascii_line_for_a_header():
    text = encode({"name": "Zoë\r\nX-Injected: 1"})

    assert text.isascii() and "\r" not in text and "\n" not in text
