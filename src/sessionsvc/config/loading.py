"""Reading the settings, converting and checking them at start-up, development secrets."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import maxminddb

from ..instance import write_once
from ..tokens import keyring
from .kinds import PREFIX
from .service_keys import DEFAULT_NAME
from .settings import (
    BY_NAME,
    DEFAULTS,
    MAKE_SECRET,
    MIN_IDLE_TIMEOUT,
    MIN_SECRET_LENGTH,
    SECRET_KEYS,
    SETTINGS,
)
from .webhooks import is_address, is_public_address

if TYPE_CHECKING:
    from flask import Config

log = logging.getLogger(__name__)

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


# Unset, SESSIONSVC_ENV is production: a developer who just ran the service
# without it is told how to ask for development.
FOR_DEVELOPMENT = (
    "SESSIONSVC_ENV is unset, so this is production; on your own machine, for development"
    " (generated secrets, an embedded Valkey, the development sign-in), set"
    " SESSIONSVC_ENV=development (`make run` does)"
)


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
        if is_production(config) and f"{PREFIX}_ENV" not in os.environ:
            problems.append(FOR_DEVELOPMENT)
        raise ConfigError(
            "the configuration cannot run the service:\n" + "\n".join(f"- {p}" for p in problems)
        )


@check("ENV", "JWT_KEYS", "JWT_SECRET_KEY", "SERVICE_KEY", "SERVICE_KEYS")
def _secrets(config: Mapping[str, Any]) -> Iterator[str]:
    if not is_production(config):
        return  # development generates strong ones (ensure_secrets)
    missing = []
    if not (config.get("SERVICE_KEY") or config.get("SERVICE_KEYS")):
        missing.append("SESSIONSVC_SERVICE_KEY (or SESSIONSVC_SERVICE_KEYS)")
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
    for service_key in config.get("SERVICE_KEYS") or ():
        if len(service_key.key.encode()) < MIN_SECRET_LENGTH:  # named, never quoted
            yield (
                f"SESSIONSVC_SERVICE_KEYS: the key of {service_key.name!r} must be at least"
                f" {MIN_SECRET_LENGTH} bytes long when SESSIONSVC_ENV=production; make one with:"
                f" {MAKE_SECRET}"
            )


@check("SERVICE_KEY", "SERVICE_KEYS")
def _service_keys(config: Mapping[str, Any]) -> Iterator[str]:
    if (single := config.get("SERVICE_KEY")) and single in {
        key.key for key in config.get("SERVICE_KEYS") or ()
    }:
        # Which name would a request log? And rotating one would keep the other.
        yield (
            "SESSIONSVC_SERVICE_KEYS must not list SESSIONSVC_SERVICE_KEY's key again (it is"
            f" {DEFAULT_NAME!r}, with every scope); e.g. give that entry a new key: {MAKE_SECRET}"
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


@check("REDIS_WAIT_REPLICAS", "REDIS_WAIT_AOF", "REDIS_WAIT_TIMEOUT", "REDIS_SOCKET_TIMEOUT")
def _wait(config: Mapping[str, Any]) -> Iterator[str]:
    wait, read_timeout = config["REDIS_WAIT_TIMEOUT"], config["REDIS_SOCKET_TIMEOUT"]
    waits = [
        f"SESSIONSVC_REDIS_{name}"
        for name in ("WAIT_REPLICAS", "WAIT_AOF")
        if config[f"REDIS_{name}"]
    ]
    if waits and wait >= read_timeout:
        # Else the read would time out first and be retried: the revoke would run twice.
        yield (
            f"SESSIONSVC_REDIS_WAIT_TIMEOUT must be below SESSIONSVC_REDIS_SOCKET_TIMEOUT"
            f" ({read_timeout}) when {' or '.join(waits)} is set, not {wait};"
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


@check("ENV", "WEBHOOKS", "WEBHOOK_ALLOW_PRIVATE")
def _webhook_urls(config: Mapping[str, Any]) -> Iterator[str]:
    production = is_production(config)
    for endpoint in config["WEBHOOKS"]:
        where = f"SESSIONSVC_WEBHOOKS: endpoint {endpoint.name!r}"
        scheme, host = endpoint.url.partition(":")[0], endpoint.host
        if production and scheme != "https":
            yield f"{where} must use https when SESSIONSVC_ENV=production, not {scheme}"
        elif not production and scheme == "http" and not is_loopback_host(host):
            yield (
                f"{where} may use http on loopback only (localhost, 127.0.0.1, ::1), not"
                f" {host}: use https"
            )
        if production and not config["WEBHOOK_ALLOW_PRIVATE"]:
            private = is_loopback_host(host) or (is_address(host) and not is_public_address(host))
            if private:
                # A server-side request forgery guard: the URL must not reach inside.
                yield (
                    f"{where} names a private or loopback address ({host}); set"
                    " SESSIONSVC_WEBHOOK_ALLOW_PRIVATE=true if that is meant"
                )


@check("WEBHOOK_CLAIM_IDLE", "WEBHOOK_TIMEOUT", "WEBHOOK_RETRY_MIN", "WEBHOOK_RETRY_MAX")
def _webhook_times(config: Mapping[str, Any]) -> Iterator[str]:
    if config["WEBHOOK_CLAIM_IDLE"] <= config["WEBHOOK_TIMEOUT"]:
        # Else a live process's slow delivery would be claimed and sent twice.
        yield (
            "SESSIONSVC_WEBHOOK_CLAIM_IDLE must be longer than SESSIONSVC_WEBHOOK_TIMEOUT"
            f" ({config['WEBHOOK_TIMEOUT']}), not {config['WEBHOOK_CLAIM_IDLE']};"
            f" e.g. SESSIONSVC_WEBHOOK_CLAIM_IDLE={config['WEBHOOK_TIMEOUT'] * 6:g}"
        )
    if config["WEBHOOK_RETRY_MIN"] > config["WEBHOOK_RETRY_MAX"]:
        yield (
            "SESSIONSVC_WEBHOOK_RETRY_MIN must not exceed SESSIONSVC_WEBHOOK_RETRY_MAX"
            f" ({config['WEBHOOK_RETRY_MAX']}), not {config['WEBHOOK_RETRY_MIN']};"
            " e.g. SESSIONSVC_WEBHOOK_RETRY_MIN=5s"
        )


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name or address is loopback: ``localhost``, 127.0.0.0/8, ::1."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may be anywhere


def deployment_signs(config: Mapping[str, Any], binds: Iterable[str] = ()) -> list[str]:
    """Name the settings that look like a real deployment's, for a development start to warn of.

    ``binds`` are the addresses the server listens on (gunicorn's ``bind``), where known.
    """
    signs = []
    if config.get("JWT_KEYS"):
        signs.append("SESSIONSVC_JWT_KEYS is set (a signing key ring)")
    if url := config.get("REDIS_URL"):
        host = "" if url.startswith("unix:") else (urlsplit(url).hostname or "")
        if host and not is_loopback_host(host):
            signs.append(f"SESSIONSVC_REDIS_URL names {host}, not this host")
    for sentinel in config.get("REDIS_SENTINELS") or ():
        host = sentinel.rpartition(":")[0]
        if not is_loopback_host(host):
            signs.append(f"SESSIONSVC_REDIS_SENTINELS names {host}, not this host")
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        host = bind.rpartition(":")[0] if ":" in bind else bind
        if not is_loopback_host(host):
            signs.append(f"the server listens on {bind}, not only on this host")
    return signs


def warn_if_deployed(
    config: Mapping[str, Any], binds: Iterable[str] = (), logger: Any = log
) -> list[str]:
    """Log a warning when a development start looks like a real deployment; return its signs.

    ``logger``: gunicorn's master passes its own (the app's logging is set up in workers).
    """
    if is_production(config):
        return []
    signs = deployment_signs(config, binds)
    if signs:
        logger.warning(
            "SESSIONSVC_ENV=development, but this looks like a real deployment: %s."
            " Development serves an unauthenticated sign-in (to loopback clients) and generates"
            " its secrets: unset SESSIONSVC_ENV (or set it to production) to serve for real",
            "; ".join(signs),
        )
    return signs


def ensure_secrets(config: dict[str, Any], instance_path: str) -> None:
    """Fill missing secrets from the instance folder (development only: validate() ran).

    SERVICE_KEY is not made when SERVICE_KEYS is set: it would be one more key,
    with every scope.
    """
    missing = [key for key in SECRET_KEYS if not config.get(key)]
    if config.get("SERVICE_KEYS") and "SERVICE_KEY" in missing:
        missing.remove("SERVICE_KEY")
    if not missing:
        return
    path = Path(instance_path) / "secrets.json"
    write_once(path, lambda: {key: secrets.token_urlsafe(32) for key in SECRET_KEYS})
    stored = json.loads(path.read_text())
    for key in missing:
        config[key] = stored[key]
    log.warning("development secrets %s taken from %s", ", ".join(missing), path)
