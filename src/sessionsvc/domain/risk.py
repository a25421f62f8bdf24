"""Judging a login against the user's history: its signals, and the risk level they make."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

SIGNALS = ("first_login", "new_device", "new_country", "impossible_travel")
LEVELS = ("low", "medium", "high")
# What each signal weighs unless RISK_LEVELS says otherwise; a login's level is
# its heaviest signal's (low without one).
DEFAULT_LEVELS = {
    "first_login": "low",
    "new_device": "low",
    "new_country": "medium",
    "impossible_travel": "high",
}
AIRLINER_KMH = 1000.0  # faster than this between two logins is impossible travel
# GeoIP places a city within tens (sometimes hundreds) of kilometres: shorter
# hops than this are never taken for travel, however quick.
MIN_TRAVEL_KM = 500.0
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Spot:
    """Where and when a login happened (what the next one is compared with)."""

    at: int  # ms since the epoch
    country: str = ""
    latitude: float | None = None
    longitude: float | None = None

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """Return (latitude, longitude), None when either is unknown."""
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)


@dataclass(frozen=True)
class History:
    """What the store knew of the user before this login."""

    known_device: bool = False  # the device token named one of the user's devices
    any_device: bool = False  # the user had any device (or login) before
    countries: frozenset[str] = field(default_factory=frozenset)
    last: Spot | None = None  # the previous login


@dataclass(frozen=True)
class Risk:
    level: str
    signals: tuple[str, ...]

    def json(self) -> dict[str, object]:
        """Return the API's ``risk`` object."""
        return {"level": self.level, "signals": list(self.signals)}


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the great-circle distance between two (latitude, longitude) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def impossible_travel(previous: Spot, now: Spot) -> bool:
    """Tell whether getting from ``previous`` to ``now`` would take more than an airliner."""
    a, b = previous.coordinates, now.coordinates
    if a is None or b is None:
        return False
    distance = distance_km(a, b)
    if distance < MIN_TRAVEL_KM:
        return False
    hours = max(now.at - previous.at, 1000) / 3_600_000  # at least a second apart
    return distance / hours > AIRLINER_KMH


def signals(history: History, now: Spot) -> tuple[str, ...]:
    """Return the signals a login at ``now`` raises against the user's ``history``."""
    if not history.any_device and history.last is None:
        return ("first_login",)  # a first login is on a new device, from a new country
    found = []
    if not history.known_device:
        found.append("new_device")
    if now.country and history.countries and now.country not in history.countries:
        found.append("new_country")
    if history.last is not None and impossible_travel(history.last, now):
        found.append("impossible_travel")
    return tuple(found)


def judge(found: tuple[str, ...], levels: Mapping[str, str]) -> Risk:
    """Return the risk of a login raising ``found``: the heaviest signal's level."""
    weights = [LEVELS.index(levels.get(signal, DEFAULT_LEVELS[signal])) for signal in found]
    return Risk(LEVELS[max(weights, default=0)], found)


def parse_levels(value: object) -> dict[str, str]:
    """Return RISK_LEVELS as a full mapping (defaults filled in); ValueError when not one."""
    if not isinstance(value, dict):
        raise ValueError("a JSON object of signal: level")
    for signal, level in value.items():
        if signal not in SIGNALS or level not in LEVELS:
            raise ValueError(f"signals are {', '.join(SIGNALS)}; levels {', '.join(LEVELS)}")
    return DEFAULT_LEVELS | value
