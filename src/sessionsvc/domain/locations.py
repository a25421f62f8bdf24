"""Where a login came from: "City, Country", "Country" or "unknown", from its IP address."""

from __future__ import annotations

import functools
import ipaddress
import logging
from typing import Any, NamedTuple

import iptocc
import maxminddb
import pycountry

from .sessions import UNKNOWN

log = logging.getLogger(__name__)

MAX_LOCATION_BYTES = 64  # the store's field limit
LANGUAGE = "en"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Place(NamedTuple):
    """Where a login came from: its display text, country code and coordinates, where known."""

    location: str  # "City, Country", "Country" or "unknown", as locate() says
    country: str = ""  # ISO 3166-1 alpha-2, "" unknown
    latitude: float | None = None
    longitude: float | None = None


class Locator:
    """Resolve IP addresses to places: a MaxMind ``.mmdb`` when given, else ``iptocc``."""

    def __init__(self, database: str | None = None) -> None:
        self._reader: maxminddb.Reader | None = None
        self._ip_version = 6
        if database:  # config.validate() opened it once already
            # Opened once per app and memory-mapped: a lookup reads no file.
            self._reader = maxminddb.open_database(database, maxminddb.MODE_AUTO)
            self._ip_version = self._reader.metadata().ip_version

    @property
    def source(self) -> str:
        """Name what answers lookups: the database's type, or ``iptocc``."""
        return self._reader.metadata().database_type if self._reader else "iptocc"

    def locate(self, ip: str) -> str:
        """Return "City, Country", "Country", or "unknown" for an address no map places."""
        return self.place(ip).location

    def place(self, ip: str) -> Place:
        """Return where ``ip`` is: its location text, and its country and coordinates if known."""
        address = public_address(ip)
        if address is None or address.version > self._ip_version:
            return Place(UNKNOWN)
        if self._reader is None:
            code = iptocc.country_code(str(address)) or ""
            return Place(_fit(None, country_name(code)), code if country_name(code) else "")
        try:
            record = self._reader.get(address)
        except maxminddb.InvalidDatabaseError:
            # A login must not fail over its cosmetic location.
            log.warning("GeoIP lookup of %s failed", address, exc_info=True)
            return Place(UNKNOWN)
        if not isinstance(record, dict):
            return Place(UNKNOWN)
        return _located(record)

    def close(self) -> None:
        """Release the database (the app no longer answers lookups after this)."""
        if self._reader is not None:
            self._reader.close()


def public_address(ip: str) -> IPAddress | None:
    """Return the address if it is a routable unicast one (IPv4-mapped IPv6 unwrapped)."""
    try:
        address: IPAddress = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket; judge and look up the IPv4.
        address = address.ipv4_mapped or address
    # is_global is False for private, loopback, link-local, unspecified, shared (CGNAT)
    # and documentation ranges; multicast and some reserved ranges still count as global.
    if not address.is_global or address.is_multicast or address.is_reserved:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return None
    return address


@functools.cache
def country_name(code: str | None) -> str | None:
    """Return the common English name of an ISO 3166-1 alpha-2 code (``DE`` → Germany)."""
    if not code:
        return None
    # Registries also hand out pseudo-codes such as EU and AP: those have no name.
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return None
    return getattr(country, "common_name", None) or country.name


def _place(record: dict[str, Any]) -> tuple[str | None, str | None]:
    # GeoLite2: "country" is where the address is; "registered_country" (its registry's
    # country) stands in where MaxMind has no better idea, as on some anycast ranges.
    country = record.get("country") or record.get("registered_country") or {}
    name = _name(country) or country_name(country.get("iso_code"))
    return _name(record.get("city")), name


def _located(record: dict[str, Any]) -> Place:
    """Return the place a database record names: location text, country code, coordinates."""
    country = record.get("country") or record.get("registered_country") or {}
    code = country.get("iso_code") if isinstance(country, dict) else None
    spot: Any = record.get("location")
    spot = spot if isinstance(spot, dict) else {}
    latitude, longitude = spot.get("latitude"), spot.get("longitude")
    if not (_coordinate(latitude, 90) and _coordinate(longitude, 180)):
        latitude = longitude = None
    return Place(
        _fit(*_place(record)),
        code if isinstance(code, str) and len(code) == 2 else "",
        float(latitude) if latitude is not None else None,
        float(longitude) if longitude is not None else None,
    )


def _coordinate(value: Any, limit: float) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and -limit <= value <= limit
    )


def _name(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    name = (entry.get("names") or {}).get(LANGUAGE)
    return name if isinstance(name, str) and name else None


def _fit(city: str | None, country: str | None) -> str:
    if not country:
        return UNKNOWN
    if city:
        place = f"{city}, {country}"
        if len(place.encode()) <= MAX_LOCATION_BYTES:
            return place
    # Too long with its city: the country alone says more than a cut-off city.
    return country.encode()[:MAX_LOCATION_BYTES].decode(errors="ignore")
