"""A session's Redis hash: the fields it is written as, and read back from.

The hash is kept small, since with one session per user the two keys' own
overhead is already most of the memory: a session's expiry is its key's TTL
and its index score, not a field too; lastActiveAt is stored only once it
differs from createdAt; the descriptive parts share one value. Fields:

    c  created at (ms)          a  last active at (ms), absent until the first touch
    r  the refresh secret       q, t  the previous one, and when it was rotated
    x  the packed description   b v p o l i d  its parts, when they cannot be packed

The Lua scripts (``scripts``) read and change c, a, r, q and t.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..domain.sessions import UNKNOWN, Device, Session

# Hash fields are one letter and values stay short so Redis keeps each session
# in its compact listpack encoding (values up to 64 bytes).
MAX_FIELD_LENGTH = 64
SEPARATOR = "\x1f"  # between the parts of the packed description, field x


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
    fields["r"] = refresh_secret
    return fields


def decode_session(
    user_id: str, session_id: str, expire_at: int | str, fields: Mapping[str, str]
) -> Session:
    """Return the session stored in a hash with these fields (as HGETALL reads them)."""
    if "x" in fields:
        *parts, is_dev = fields["x"].split(SEPARATOR)
        browser, version, platform, os_name, location, ip = (part or UNKNOWN for part in parts)
    else:
        browser, version, platform, os_name, location, ip = (fields[name] for name in "bvpoli")
        is_dev = fields["d"]
    return Session(
        id=session_id,
        user_id=user_id,
        created_at=int(fields["c"]),
        expire_at=int(expire_at),
        last_active_at=int(fields.get("a", fields["c"])),
        device=Device(
            browser=browser,
            version=version,
            platform=platform,
            os=os_name,
            is_dev=is_dev == "1",
        ),
        location=location,
        ip=ip,
    )
