"""Kinds of setting value: what each takes, in words, and its parser (``Kind``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import limits
from redis.connection import parse_url

PREFIX = "SESSIONSVC"  # of the environment variables (Flask's from_prefixed_env)

# --- Kinds of value --------------------------------------------------------------------------
#
# A kind says in words what a setting takes (``what``: in messages, "must be
# <what>", and in the docs) and converts a value as read (JSON-decoded where it
# could be: "14d" is a string, "0.5" a float) to its type, or raises ValueError,
# whose text, if any, says more about the problem.


@dataclass(frozen=True)
class Kind:
    """What values a setting takes, in words, and the function converting one."""

    what: str
    parse: Callable[[Any], Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def whole(low: int = 0, high: int | None = None) -> Kind:
    """Return the kind of a whole number from ``low`` (to ``high``)."""

    def parse(value: Any) -> int:
        if not (_is_number(value) and (isinstance(value, int) or value.is_integer())):
            raise ValueError
        number = int(value)
        if number < low or (high is not None and number > high):
            raise ValueError
        return number

    bounds = f">= {low}" if high is None else f"from {low} to {high}"
    return Kind(f"a whole number {bounds}", parse)


# Units an operator may write a duration in; plain numbers are seconds.
DURATION_UNITS = {"ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600)}
DURATION_UNITS["d"] = 24 * DURATION_UNITS["h"]
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?")
# Past this, a lifetime in milliseconds is more than Redis's expiry times take.
LONGEST_DURATION = 3650 * 86_400  # 10 years


def seconds(value: Any) -> Fraction:
    """Return a duration's seconds, exactly: a number, or ``90s``, ``30m``, ``2h``, ``14d``..."""
    if _is_number(value):
        if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
            raise ValueError
        return Fraction(value)
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip().lower())):
        return Fraction(match[1]) * DURATION_UNITS[match[2] or "s"]
    raise ValueError


def duration(*, whole_seconds: bool, above_zero: bool, what: str | None = None) -> Kind:
    """Return the kind of a duration in seconds: whole (an int) or not (a float)."""

    def parse(value: Any) -> int | float:
        amount = seconds(value)
        if (amount <= 0 if above_zero else amount < 0) or amount > LONGEST_DURATION:
            raise ValueError
        if whole_seconds:
            if amount.denominator != 1:
                raise ValueError("whole seconds only")
            return int(amount)
        return float(amount)

    bound = "> 0" if above_zero else ">= 0"
    if whole_seconds:
        default_what = f"a duration {bound} in whole seconds, such as 90s, 30m, 2h, 14d or 3600"
    else:
        default_what = f"a duration {bound} in seconds, such as 0.5, 500ms or 2s"
    return Kind(what or default_what, parse)


def choice(*options: str, any_case: bool = False) -> Kind:
    """Return the kind of one of ``options`` (in any case, with ``any_case``)."""

    def parse(value: Any) -> str:
        if isinstance(value, str) and any_case:
            value = value.lower()
        if value not in options:
            raise ValueError
        return value

    return Kind(f"one of {', '.join(options)}", parse)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError


FLAG = Kind("true or false", _flag)
# Unset (or empty): decided at run time.
OPTIONAL_FLAG = Kind("true, false, or unset", lambda v: None if v in (None, "") else _flag(v))


def text(
    what: str,
    *,
    pattern: str | None = None,
    optional: bool = False,
    empty: bool = True,
) -> Kind:
    """Return the kind of a string (matching ``pattern``); None too, if ``optional``."""

    def parse(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            # From the environment, 12345 or true is JSON: the string must be quoted.
            raise ValueError("quote it as JSON to keep it a string" if value is not None else "")
        if not value and not empty:
            raise ValueError
        if pattern is not None and not re.fullmatch(pattern, value):
            raise ValueError
        return value

    return Kind(what, parse)


def secret_text(what: str) -> Kind:
    """Return the kind of an optional secret string; empty is unset."""
    parse = text(what, optional=True).parse
    return Kind(what, lambda v: parse(v) or None)


def _redis_url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not (isinstance(value, str) and value.startswith(("redis://", "rediss://", "unix://"))):
        raise ValueError
    parse_url(value)  # a ValueError (a port that is no number) never quotes a password
    return value


def _jwk_set(value: Any) -> str | dict[str, Any] | None:
    # A JWK Set given in the environment arrives parsed (a dict); keyring.check_ring reads it.
    if value in (None, ""):
        return None
    if not isinstance(value, str | dict):
        raise ValueError
    return value


def _sentinels(value: Any) -> list[str] | None:
    if value in (None, ""):
        return None
    addresses = value.split(",") if isinstance(value, str) else value
    if not isinstance(addresses, list) or not addresses:
        raise ValueError
    parsed = []
    for address in addresses:
        if not isinstance(address, str):
            raise ValueError
        host, _, port = address.strip().rpartition(":")
        if not (host.strip("[]") and port.isdigit() and 0 < int(port) < 65_536):
            raise ValueError(f"{address.strip()!r} is not host:port")
        parsed.append(address.strip())
    return parsed


def _rate_limits(single: bool) -> Kind:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError
        items = limits.parse_many(value)  # a ValueError quotes the string
        if single and len(items) > 1:
            raise ValueError("one limit only")
        if any(item.amount < 1 for item in items):
            raise ValueError("an allowance of 0 refuses every request")
        return value

    what = "a rate limit such as '20 per minute'"
    return Kind(what if single else f"{what}, several with ';' between", parse)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: Any) -> str:
    if not (isinstance(value, str) and value.upper() in LOG_LEVELS):
        raise ValueError
    return value.upper()


# scheme://host[:port], as a browser's Origin header writes it: a DNS name or an
# IP literal, never a pattern (flask-cors reads some characters as a regex).
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)


def _origin(value: str) -> str:
    """Return an exact origin, ``scheme://host[:port]``; raise ValueError for anything else."""
    match = _ORIGIN.fullmatch(value)
    wrong = f"{value!r} is not exactly scheme://host[:port] (http or https; no path or pattern)"
    if not match:
        raise ValueError(wrong)
    if match["host"].startswith("["):
        try:
            ipaddress.IPv6Address(match["host"][1:-1])
        except ValueError:
            raise ValueError(wrong) from None
    if match["port"] is not None and not 0 < int(match["port"]) < 65_536:
        raise ValueError(wrong)
    return value


def _origins(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [origin for origin in value.split(",") if origin.strip()]
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        raise ValueError
    origins = [origin.strip() for origin in value]
    if "*" in origins:
        raise ValueError("credentials go to named origins only")
    return [_origin(origin) for origin in origins]


def _networks(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        # TRUSTED_PROXIES was a hop count: trusting the last entry whoever sent it.
        raise ValueError("a count of hops is no longer taken: name the proxies' addresses")
    if isinstance(value, str):
        value = [entry for entry in value.split(",") if entry.strip()]
    if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
        raise ValueError
    networks = []
    for entry in value:
        try:
            networks.append(str(ipaddress.ip_network(entry.strip())))
        except ValueError:
            raise ValueError(f"{entry.strip()!r} is not an address or a network") from None
    return networks
