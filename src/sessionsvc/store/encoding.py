"""A session's Redis hash: the fields it is written as, and read back from.

The hash is kept small, since with one session per user the two keys' own
overhead is already most of the memory: a session's expiry is its key's TTL
and its index score, not a field too; lastActiveAt is stored only once it
differs from createdAt; the descriptive parts share one value. Fields:

    c  created at (ms)          a  last active at (ms), absent until the first touch
    h  the refresh secret's digest   g, t  the previous one's, and when it was rotated
    x  the packed description   b v p o l i d  its parts, when they cannot be packed
    k  the claims (JSON)        r, q  its secrets themselves, in a session stored by 0.1.0
    e  acr    m  amr (comma-joined)    w  authTime (ms), when not createdAt
       (each only when the login or a step-up gave it)
    I  the device id            R  its login's risk: ["level", "signal", ...] (compact JSON)
    n  "1" when not persistent  z  its own idle timeout (s), when not the setting's
    s  a support session's operator (actor) id    y  and the reason it gave

e, m, w, I, R, n, z, s and y are written only when present: a plain session's hash does not
grow. y (1-200 characters) can exceed a listpack value: such a support
session's hash is then a hashtable, a few hundred bytes more, kept for one
rare session rather than clipping the reason a user reads
(docs/support-sessions.md).

No secret is kept, only its digest (``secret_digest``): a copy of the store (a
backup, a replica, a MONITOR reader) refreshes no session. A session stored by
an earlier release still holds its secrets in r and q; its next refresh
compares them by their SHA-1 (as those releases did) and writes h and g in
their place, so an upgrade ends no session (docs/redis.md).

The Lua scripts (``scripts``) read and change c, a, h, g, t, r and q, and read
z (idleness), n and s (a refresh's cookie and token); a step-up changes e, m and w.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from ..domain.assurance import Assurance
from ..domain.history import Actor, EndedSession, EndReason
from ..domain.sessions import UNKNOWN, Device, Session

# Hash fields are one letter and values stay short so Redis keeps each session
# in its compact listpack encoding (values up to 64 bytes).
MAX_FIELD_LENGTH = 64
SEPARATOR = "\x1f"  # between the parts of the packed description, field x


def secret_digest(secret: str) -> str:
    """Return what the store keeps of a refresh secret: its SHA-256, 16 bytes in base64url.

    A refresh secret is 128 random bits (or an HMAC's, ``tokens.refresh``): no
    salt or slow hash is needed, and 128 bits of digest leave a preimage as
    hard to find as the secret itself. 22 characters, as long as the secret: a
    session takes no more memory than when it held the secret.
    """
    digest = hashlib.sha256(secret.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def legacy_digest(secret: str) -> str:
    """Return a secret's SHA-1 in hex, as ``redis.sha1hex`` gives it (for sessions of 0.1.0)."""
    return hashlib.sha1(secret.encode()).hexdigest()  # noqa: S324 (a comparison, not a hash kept)


def _clip(value: str) -> str:
    return value[:MAX_FIELD_LENGTH]


def encode_session(session: Session, refresh_secret: str) -> dict[str, str | int]:
    """Return the hash fields of a new session whose refresh secret is ``refresh_secret``."""
    device = session.device
    parts = [
        _clip(value)
        for value in (
            device.browser,
            device.version,
            device.platform,
            device.os,
            session.location,
            session.ip,
        )
    ]
    fields: dict[str, str | int] = {"c": session.created_at}
    if session.last_active_at != session.created_at:  # else a is left out until the first touch
        fields["a"] = session.last_active_at
    # One field for all of them saves six fields' overhead: x holds the parts
    # separated, "unknown" as an empty part, and isDev as "1" or "". When they
    # do not fit one listpack value, or would not read back the same (an empty
    # part, a part holding the separator), each keeps a field of its own.
    packed = SEPARATOR.join(
        [*("" if part == UNKNOWN else part for part in parts), "1" if device.is_dev else ""]
    )
    if (
        all(part and SEPARATOR not in part for part in parts)
        and len(packed.encode()) <= MAX_FIELD_LENGTH
    ):
        fields["x"] = packed
    else:
        fields |= dict(zip("bvpoli", parts, strict=True)) | {"d": int(device.is_dev)}
    fields["h"] = secret_digest(refresh_secret)
    if session.device_id:
        fields["I"] = session.device_id
    if session.risk:  # at most ["high","new_device","new_country","impossible_travel"]: 54 bytes
        fields["R"] = json.dumps(list(session.risk), separators=(",", ":"))
    if not session.persistent:
        fields["n"] = "1"
    if session.idle_timeout is not None:
        fields["z"] = session.idle_timeout
    if session.actor is not None:
        fields["s"] = session.actor
    if session.reason is not None:
        fields["y"] = session.reason
    return fields | encode_assurance(session.assurance, session.created_at)


def encode_assurance(assurance: Assurance, created_at: int) -> dict[str, str | int]:
    """Return the hash fields of how the user signed in: only those given (plain: none)."""
    fields: dict[str, str | int] = {}
    if assurance.acr:
        fields["e"] = assurance.acr
    if assurance.amr:
        fields["m"] = ",".join(assurance.amr)
    if assurance.auth_time is not None and assurance.auth_time != created_at:
        fields["w"] = assurance.auth_time
    return fields


def decode_assurance(acr: str | None, amr: str | None, auth_time: str | None) -> Assurance:
    """Return the assurance in fields e, m and w (None or '' where absent)."""
    return Assurance(
        acr=acr or "",
        amr=tuple(amr.split(",")) if amr else (),
        auth_time=int(auth_time) if auth_time else None,
    )


def _description(fields: Mapping[str, str]) -> tuple[Device, str, str]:
    """Return the device, location and ip that fields x (or b v p o l i d) hold."""
    if "x" in fields:
        *parts, is_dev = fields["x"].split(SEPARATOR)
        browser, version, platform, os_name, location, ip = (part or UNKNOWN for part in parts)
    else:
        browser, version, platform, os_name, location, ip = (fields[name] for name in "bvpoli")
        is_dev = fields["d"]
    device = Device(
        browser=browser,
        version=version,
        platform=platform,
        os=os_name,
        is_dev=is_dev == "1",
    )
    return device, location, ip


def decode_session(
    user_id: str, session_id: str, expire_at: int | str, fields: Mapping[str, str]
) -> Session:
    """Return the session stored in a hash with these fields (as HGETALL reads them)."""
    device, location, ip = _description(fields)
    return Session(
        id=session_id,
        user_id=user_id,
        created_at=int(fields["c"]),
        expire_at=int(expire_at),
        last_active_at=int(fields.get("a", fields["c"])),
        device=device,
        location=location,
        ip=ip,
        assurance=decode_assurance(fields.get("e"), fields.get("m"), fields.get("w")),
        device_id=fields.get("I", ""),
        risk=_risk(fields.get("R")),
        persistent=fields.get("n") != "1",
        idle_timeout=int(fields["z"]) if "z" in fields else None,
        actor=fields.get("s"),
        reason=fields.get("y"),
    )


def decode_ended(entry: str) -> EndedSession:
    """Return the ended session a history entry holds (compact JSON, ``scripts.record``).

    The entry is the session hash's kept fields (c, a, x or b v p o l i d, I)
    and id, why, by, end. A session found expired kept none of the hash's.
    """
    fields = json.loads(entry)
    has_description = "x" in fields or "b" in fields
    device, location, ip = _description(fields) if has_description else (None, None, None)
    created = fields.get("c")
    return EndedSession(
        id=fields["id"],
        reason=EndReason(fields["why"]),
        ended_by=Actor.from_stored(fields.get("by")),
        ended_at=int(fields["end"]),
        created_at=None if created is None else int(created),
        last_active_at=None if created is None else int(fields.get("a", created)),
        device=device,
        location=location,
        ip=ip,
        device_id=fields.get("I"),
    )


def _risk(value: str | None) -> tuple[str, ...]:
    """Return a stored risk (field R) as a tuple; () when absent or unreadable."""
    if not value:
        return ()
    try:
        parts = json.loads(value)
    except ValueError:
        return ()
    return tuple(str(part) for part in parts) if isinstance(parts, list) else ()
