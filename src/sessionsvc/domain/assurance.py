"""How a user signed in (acr, amr, auth time), and what a route demands of it (RFC 9470).

A login may say which assurance level it reached (``acr``, e.g. ``aal2``),
with which methods (``amr``, RFC 8176 names such as ``pwd`` and ``otp``) and
when (``authTime``). Verify takes a route's requirements from the gateway
(``acr_values``, ``max_age``, ``support``) and compares them with the session
as stored. Nothing here knows Redis or HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

# Printable ASCII but space, comma (the separators of acr_values), quote and
# backslash (an acr is quoted in WWW-Authenticate): aal2, urn:mace:incommon:iap:silver, 0, ...
ACR_PATTERN = re.compile(r"[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]{1,64}")
ACR_RULE = "1-64 printable ASCII characters, without spaces, commas, quotes or backslashes"
# RFC 8176 names are short lowercase tokens (pwd, otp, hwk, mfa, ...); others
# registered later or private ones look alike, so any such token is taken.
# At most 5 of at most 12 characters: comma-joined, 64 at most, so the session's
# hash keeps its compact encoding (RFC 8176's names have 2 to 6).
AMR_PATTERN = re.compile(r"[a-z0-9_-]{1,12}")
MAX_AMR = 5
AMR_RULE = (
    f"a list of 1-{MAX_AMR} distinct method names (RFC 8176: pwd, otp, hwk, mfa, ...), each"
    " 1-12 characters of a-z 0-9 _ -"
)
# The RFC 8176 registry's names, for people (the page's words, the docs).
REGISTERED_AMR = (
    *("face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd"),
    *("rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"),
)
AUTH_TIME_SKEW_MS = 60_000  # an authTime this far ahead of our clock is taken as now
DEFAULT_LEVELS = ("aal1", "aal2", "aal3")
MAX_AGE_PATTERN = re.compile(r"[0-9]{1,10}")
SUPPORT_VALUES = ("allow", "deny")


class InvalidAssurance(ValueError):
    """A login's or a gateway's assurance values are not valid; the message says which."""


@dataclass(frozen=True)
class Assurance:
    """How a session's user signed in: the level, the methods, when (ms; None: at creation)."""

    acr: str = ""
    amr: tuple[str, ...] = ()
    auth_time: int | None = None

    def at(self, created_at: int) -> Assurance:
        """Return this with its auth time set: ``created_at`` (ms) when the login gave none."""
        return self if self.auth_time is not None else Assurance(self.acr, self.amr, created_at)


NO_ASSURANCE = Assurance()


def parse_acr(value: object) -> str:
    """Return a valid acr, or raise InvalidAssurance."""
    if not isinstance(value, str) or not ACR_PATTERN.fullmatch(value):
        raise InvalidAssurance(f"acr must be {ACR_RULE}.")
    return value


def parse_amr(value: object) -> tuple[str, ...]:
    """Return a valid amr list as a tuple, or raise InvalidAssurance."""
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_AMR
        or not all(isinstance(name, str) and AMR_PATTERN.fullmatch(name) for name in value)
        or len(set(value)) < len(value)
    ):
        raise InvalidAssurance(f"amr must be {AMR_RULE}.")
    return tuple(value)


def parse_auth_time(value: object, now: int) -> int:
    """Return an ISO-8601 time with its offset, in ms, not after ``now`` (ms); else raise."""
    rule = "authTime must be an ISO-8601 time with its offset (e.g. 2026-01-31T12:00:00Z), not"
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        ms = int(moment.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise InvalidAssurance(f"{rule} in the future.") from None
    if ms > now + AUTH_TIME_SKEW_MS:
        raise InvalidAssurance(f"{rule} in the future.")
    if ms < 0:
        raise InvalidAssurance(f"{rule} before 1970.")
    return min(ms, now)  # a clock a little ahead of ours: taken as now


def parse_assurance(body: dict[str, object], now: int) -> Assurance:
    """Return a body's acr, amr and authTime (each optional), or raise InvalidAssurance."""
    return Assurance(
        acr=parse_acr(body["acr"]) if "acr" in body else "",
        amr=parse_amr(body["amr"]) if "amr" in body else (),
        auth_time=parse_auth_time(body["authTime"], now) if "authTime" in body else None,
    )


def parse_levels(value: object) -> list[str]:
    """Return ACR_LEVELS (a list, or names separated by commas), weakest first; else ValueError."""
    if isinstance(value, str):
        value = [name.strip() for name in value.split(",")]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("a list of acr names, weakest first")
    if not all(isinstance(name, str) and ACR_PATTERN.fullmatch(name) for name in value):
        raise ValueError(f"each name {ACR_RULE}")
    if len(set(value)) < len(value):
        raise ValueError("a name is given twice")
    return list(value)


def rank(acr: str, levels: Sequence[str]) -> int | None:
    """Return an acr's place among ``levels`` (weakest first), None for one not listed."""
    return levels.index(acr) if acr in levels else None


def satisfies(acr: str, acceptable: Sequence[str], levels: Sequence[str]) -> bool:
    """Tell whether a session at ``acr`` meets ``acceptable``: one of them, or above one."""
    if not acr:
        return False
    if acr in acceptable:
        return True
    mine = rank(acr, levels)
    return mine is not None and any(
        (theirs := rank(value, levels)) is not None and mine >= theirs for value in acceptable
    )


def step_up_refusal(current: str, new: str, levels: Sequence[str]) -> str:
    """Say why a session at ``current`` may not be set to ``new`` ('' when it may).

    A level is only raised: the same level again (a fresh authTime) or a
    higher one in ``levels``. A level outside them compares with nothing but itself.
    """
    if not current or current == new:
        return ""
    old, raised = rank(current, levels), rank(new, levels)
    if old is None or raised is None:
        return f"the session is at {current!r}, and {new!r} cannot be compared with it (ACR_LEVELS)"
    if raised < old:
        return f"the session is at {current!r}, above {new!r}: a level is only raised"
    return ""


@dataclass(frozen=True)
class Requirements:
    """What a route demands of a session, from verify's query string."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None  # seconds since authTime
    deny_support: bool = False

    def __bool__(self) -> bool:
        return bool(self.acr_values) or self.max_age is not None or self.deny_support


NO_REQUIREMENTS = Requirements()
PARAMETERS = ("acr_values", "max_age", "support")


def parse_requirements(query: str) -> Requirements:
    """Return the requirements in verify's query string; raise InvalidAssurance for bad ones.

    Other parameters are ignored; one of these given twice is refused, so a
    copy appended after the gateway's cannot replace it.
    """
    if not query:
        return NO_REQUIREMENTS
    given: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in PARAMETERS:
            if name in given:
                raise InvalidAssurance(f"{name} is given twice.")
            given[name] = value
    if not given:
        return NO_REQUIREMENTS
    acr_values: tuple[str, ...] = ()
    if "acr_values" in given:
        acr_values = tuple(v for v in re.split(r"[ ,]+", given["acr_values"]) if v)
        if not acr_values or not all(ACR_PATTERN.fullmatch(v) for v in acr_values):
            raise InvalidAssurance(
                f"acr_values must be acr names separated by spaces or commas, each {ACR_RULE}."
            )
    max_age = None
    if "max_age" in given:
        if not MAX_AGE_PATTERN.fullmatch(given["max_age"]):
            raise InvalidAssurance("max_age must be a whole number of seconds (0-9999999999).")
        max_age = int(given["max_age"])
    support = given.get("support", "allow")
    if support not in SUPPORT_VALUES:
        raise InvalidAssurance("support must be allow or deny.")
    return Requirements(acr_values, max_age, support == "deny")


@dataclass(frozen=True)
class Shortfall:
    """How a session falls short of a route's requirements (both False: it does not)."""

    acr: bool
    age: bool

    def __bool__(self) -> bool:
        return self.acr or self.age


def shortfall(
    requirements: Requirements, acr: str, auth_time: int, now: int, levels: Sequence[str]
) -> Shortfall:
    """Compare a session's acr and auth time (ms) with a route's requirements at ``now`` (ms)."""
    return Shortfall(
        acr=bool(requirements.acr_values) and not satisfies(acr, requirements.acr_values, levels),
        age=requirements.max_age is not None and now - auth_time > requirements.max_age * 1000,
    )


def challenge(requirements: Requirements, short: Shortfall) -> str:
    """Return RFC 9470's WWW-Authenticate challenge for a session that fell short."""
    reasons = []
    if short.acr:
        reasons.append("a stronger authentication")
    if short.age:
        reasons.append("a more recent authentication")
    description = " and ".join(reasons).capitalize() + " is required."
    parts = [
        'Bearer error="insufficient_user_authentication"',
        f'error_description="{description}"',
    ]
    # The route's requirements, both when both are set: the new sign-in must meet them all.
    if requirements.acr_values:
        parts.append(f'acr_values="{" ".join(requirements.acr_values)}"')
    if requirements.max_age is not None:
        parts.append(f"max_age={requirements.max_age}")
    return ", ".join(parts)
