"""Issue 13 §5: an active session never dies of idleness.

Attack (by accident): with a 3 s idle timeout, a session used every second
died at 3 s, because its last activity was written at most once a minute.
"""

from __future__ import annotations

import time

import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from sessionsvc.domain.devices import parse_device
from sessionsvc.store import SessionStore
from tests.conftest import app_config


def test_a_session_used_well_within_the_idle_timeout_stays_live(redis, key_prefix):
    # Below the configurable minimum, so the test is short: the store takes any timeout.
    store = SessionStore(redis, prefix=key_prefix, idle_timeout=1)
    session, _ = store.create(
        "alice", device=parse_device(""), ip="unknown", location="unknown", refresh_secret="j"
    )

    alive = []
    for _ in range(6):  # 1.5 s of use every 0.25 s: past the 1 s timeout
        time.sleep(0.25)
        alive.append(store.is_live("alice", session.id))

    assert alive == [True] * 6
    time.sleep(1.1)
    assert not store.is_live("alice", session.id)  # and left alone, it does die


@pytest.mark.parametrize("timeout", [1, 3, 59])
def test_production_refuses_an_idle_timeout_too_short_to_mean_anything(timeout):
    settings = app_config(ENV="production", SERVICE_KEY="k" * 32, SESSION_IDLE_TIMEOUT=timeout)

    with pytest.raises(ConfigError, match=r"SESSION_IDLE_TIMEOUT must be 0 \(off\) or at least 60"):
        create_app(settings)


@pytest.mark.parametrize("timeout", [0.5, -1, "2.5s", True])
def test_an_idle_timeout_is_whole_seconds(timeout):
    with pytest.raises(ConfigError, match="SESSION_IDLE_TIMEOUT must be 0"):
        create_app(app_config(SESSION_IDLE_TIMEOUT=timeout))
