"""Device tokens and "Was this you?" answer tokens: opaque, signed by the service.

Both are HMACs keyed by keys derived from the refresh-tag secret (``SERVICE_KEY``,
else the first of ``SERVICE_KEYS``; ``tokens.refresh``), each under a label of
its own, so neither can stand for the other or for a refresh token's tag. A
new tag secret makes every device a new one at its next login and the answer
tokens still unanswered refused: nothing worse.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass

from ..domain.devices import DEVICE_ID_PATTERN
from ..domain.sessions import SESSION_ID_PATTERN, SessionRef, is_valid_user_id

ANSWER_LIFETIME_S = 7 * 86_400  # "Was this you?" links work for 7 days
ANSWERS = {"me": "m", "not_me": "n"}  # the answer a token stands for, as its token writes it

_DEVICE_TOKEN = re.compile(rf"dv1\.({DEVICE_ID_PATTERN.pattern})\.([A-Za-z0-9_-]{{22}})")
# wa1.<base64url user>.<session id>.<device id>.<m|n>.<expiry, s>.<nonce>.<tag>
_ANSWER_TOKEN = re.compile(
    r"wa1\.([A-Za-z0-9_-]{1,171})"
    rf"\.({SESSION_ID_PATTERN.pattern})\.({DEVICE_ID_PATTERN.pattern})"
    r"\.([mn])\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})"
)


class InvalidAnswerToken(ValueError):
    """An answer token that is malformed or not the service's (forged)."""


class ExpiredAnswerToken(ValueError):
    """An answer token the service issued, past its 7 days."""


@dataclass(frozen=True)
class AnswerToken:
    """What a valid answer token says: whose session, which device, which answer, until when."""

    session: SessionRef
    device_id: str
    answer: str  # "me" or "not_me"
    expires: int  # seconds since the epoch
    nonce: str  # shared by the pair: answering with one uses both up


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(tag_secret: str, label: bytes, *parts: str) -> str:
    key = hmac.digest(tag_secret.encode(), label, "sha256")
    return _b64(hmac.digest(key, "\0".join(parts).encode(), "sha256")[:16])


def device_token(device_id: str, tag_secret: str) -> str:
    """Return the long-lived token that names a device (it identifies; it authenticates nothing)."""
    return f"dv1.{device_id}.{_mac(tag_secret, b'sessionsvc:device', device_id)}"


def read_device_token(token: object, tag_secret: str) -> str | None:
    """Return the device id a token names, or None when it is missing, malformed or forged."""
    if not isinstance(token, str):
        return None
    match = _DEVICE_TOKEN.fullmatch(token)
    if match is None:
        return None
    device_id, tag = match.groups()
    good = _mac(tag_secret, b"sessionsvc:device", device_id)
    return device_id if hmac.compare_digest(tag, good) else None


def answer_tokens(
    session: SessionRef, device_id: str, tag_secret: str, now_s: int
) -> dict[str, str]:
    """Return a login's "Was this you?" pair, ``{"me": ..., "notMe": ...}`` (one nonce)."""
    nonce = secrets.token_urlsafe(16)
    expires = str(now_s + ANSWER_LIFETIME_S)
    user = _b64(session.user_id.encode())
    pair = {}
    for name, letter in ANSWERS.items():
        parts = (session.user_id, session.session_id, device_id, letter, expires, nonce)
        tag = _mac(tag_secret, b"sessionsvc:answer", *parts)
        token = f"wa1.{user}.{session.session_id}.{device_id}.{letter}.{expires}.{nonce}.{tag}"
        pair["notMe" if name == "not_me" else "me"] = token
    return pair


def read_answer_token(token: object, tag_secret: str, now_s: int) -> AnswerToken:
    """Return what an answer token says; raise InvalidAnswerToken or ExpiredAnswerToken."""
    match = _ANSWER_TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise InvalidAnswerToken("The answer token is not valid.")
    user, session_id, device_id, letter, expires, nonce, tag = match.groups()
    try:
        user_id = base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        user_id = ""
    if not is_valid_user_id(user_id):
        raise InvalidAnswerToken("The answer token is not valid.")
    good = _mac(
        tag_secret, b"sessionsvc:answer", user_id, session_id, device_id, letter, expires, nonce
    )
    if not hmac.compare_digest(tag, good):
        raise InvalidAnswerToken("The answer token is not valid.")
    if int(expires) <= now_s:  # checked after the tag: only our own tokens are told expired
        raise ExpiredAnswerToken("The answer token has expired.")
    answer = "me" if letter == "m" else "not_me"
    return AnswerToken(SessionRef(user_id, session_id), device_id, answer, int(expires), nonce)
