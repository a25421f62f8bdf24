"""Configuration: the table of settings, reading and checking them, development secrets.

SETTINGS is every setting the service reads, with its kind (type and bounds),
default, a good example and its meaning: the one source of the defaults (the
store's too), of the start-up checks and of docs/configuration.md's table
(``make config-doc`` writes it; tests/test_config.py fails when it differs).
One module a part: the kinds of value, the table, loading and checking, the docs.

No settings library: Flask's ``from_prefixed_env`` reads the environment
(JSON-decoding what it can) and test_config overrides it; pydantic-settings and
the like read the environment themselves and word their errors their own way,
where each line here names SESSIONSVC_<NAME>, the value's problem and a good
value. A table of small parse functions does that in a page. This module
imports neither Flask nor gunicorn, so the store can take its defaults here.
"""

from __future__ import annotations

from .docs import DOC_PATH, doc_table, with_doc_table, write_doc
from .kinds import PREFIX, Kind
from .loading import (
    EMBEDDED_SOCKET,
    ConfigError,
    deployment_signs,
    embedded_redis_url,
    ensure_secrets,
    from_environment,
    instance_path,
    is_loopback_host,
    is_production,
    read,
    validate,
    warn_if_deployed,
)
from .settings import (
    BY_NAME,
    DEFAULTS,
    LOG_FORMATS,
    MAKE_SECRET,
    MIN_IDLE_TIMEOUT,
    MIN_SECRET_LENGTH,
    SETTINGS,
    Setting,
)

__all__ = [
    "BY_NAME",
    "DEFAULTS",
    "DOC_PATH",
    "EMBEDDED_SOCKET",
    "LOG_FORMATS",
    "MAKE_SECRET",
    "MIN_IDLE_TIMEOUT",
    "MIN_SECRET_LENGTH",
    "PREFIX",
    "SETTINGS",
    "ConfigError",
    "Kind",
    "Setting",
    "deployment_signs",
    "doc_table",
    "embedded_redis_url",
    "ensure_secrets",
    "from_environment",
    "instance_path",
    "is_loopback_host",
    "is_production",
    "read",
    "validate",
    "warn_if_deployed",
    "with_doc_table",
    "write_doc",
]
