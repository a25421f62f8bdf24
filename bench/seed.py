"""The benchmark's sessions: logins through the store's own scripts, and bulk loads into Valkey."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from sessionsvc.domain.assurance import NO_ASSURANCE, Assurance
from sessionsvc.domain.devices import parse_device
from sessionsvc.domain.sessions import Device, Session, SessionRef, now_ms
from sessionsvc.extension import get_locator, get_store
from sessionsvc.store import SessionStore
from sessionsvc.store.encoding import encode_session
from sessionsvc.store.keyspace import KeyLayout
from sessionsvc.tokens.refresh import new_refresh_secret
from sessionsvc.web.logins import issue_tokens

if TYPE_CHECKING:
    from bench.load import Bench

PREFIX = "sessionsvc:"

# The login bodies' User-Agents: common browsers with their build numbers
# varied, so ua-parser sees thousands of distinct strings (its cache rarely hits).
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{c} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{c} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{c} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{a}.0) Gecko/20100101 Firefox/{a}.{c}",
    "PostmanRuntime/7.{c}.{b}",
]
IPS = ["81.2.69.160", "203.0.113.7", "2a02:8108:1:2::7", "89.160.20.112", "216.160.83.56"]

STEPPED_UP = Assurance("aal2", ("pwd", "otp"))


def user_agent(i: int) -> str:
    template = USER_AGENTS[i % len(USER_AGENTS)]
    return template.format(a=100 + i % 31, b=4000 + i % 997, c=i % 89)


@dataclass(frozen=True)
class Seeded:
    user_id: str
    session_id: str
    access: str
    refresh: str


def seed(
    app, users: list[str], *, events: bool = True, assurance: Assurance = NO_ASSURANCE
) -> list[Seeded]:
    """Log each user in once through the store's own create script, pipelined."""
    out: list[Seeded] = []
    config = app.config
    with app.app_context():
        base = get_store()
        locate = get_locator().locate
        for start in range(0, len(users), 1000):
            pipe = base.redis.pipeline(transaction=False)
            # A store on the pipeline: its scripts queue instead of running one by one.
            store = SessionStore(
                pipe,
                prefix=base.prefix,
                lifetime=config["SESSION_LIFETIME"],
                max_sessions=config["MAX_SESSIONS_PER_USER"],
                events_stream=base.events_stream if events else None,
            )
            pending = []
            for i, user_id in enumerate(users[start : start + 1000], start):
                secret = new_refresh_secret()
                ip = IPS[i % len(IPS)]
                session, _ = store.create(
                    user_id,
                    device=parse_device(user_agent(i)),
                    ip=ip,
                    location=locate(ip),
                    refresh_secret=secret,
                    assurance=assurance,
                )
                pending.append((user_id, session, secret))
            pipe.execute()
            for user_id, session, secret in pending:
                tokens = issue_tokens(
                    SessionRef(user_id, session.id),
                    session.expire_at,
                    secret,
                    assurance=assurance.at(session.created_at),
                )
                out.append(
                    Seeded(user_id, session.id, tokens["accessToken"], tokens["refreshToken"])
                )
    return out


# The store's own key functions and hash encoding, for sessions written in bulk.
KEYS = KeyLayout(PREFIX)
session_key, index_key = KEYS.session_key, KEYS.index_key


def write_lines(path: Path, rows: list[tuple[str, ...]]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows))
    return path


# The sessions loaded in bulk: a Chrome on Windows in Germany.
DEVICE = Device(browser="Chrome", version="120.0.6099.109", os="Windows")

# Sessions written straight into the server, knowing nothing of the layout:
# KEYS = hash, index, hash, index, ...; ARGV per session = id, expireAt (ms),
# field count, then the fields and values the store's encoding gave.
WRITE_SESSIONS = """
local a = 1
for k = 1, #KEYS, 2 do
  local id, exp, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  redis.call('HSET', KEYS[k], unpack(ARGV, a + 3, a + 2 + 2 * n))
  redis.call('PEXPIREAT', KEYS[k], exp)
  redis.call('ZADD', KEYS[k + 1], exp, id)
  redis.call('PEXPIREAT', KEYS[k + 1], exp)
  a = a + 3 + 2 * n
end
return #KEYS / 2
"""


def write_sessions(client: redis.Redis, sessions: list[tuple[str, str]], now: int) -> int:
    """Write (user id, session id) pairs as sessions made ``now``, in batches; return the expiry."""
    expire_at = now + 1_209_600_000
    write = client.register_script(WRITE_SESSIONS)
    for start in range(0, len(sessions), 10_000):
        keys: list[str] = []
        args: list[str | int] = []
        for user_id, session_id in sessions[start : start + 10_000]:
            session = Session(
                id=session_id,
                user_id=user_id,
                created_at=now,
                expire_at=expire_at,
                last_active_at=now,
                device=DEVICE,
                location="Germany",
                ip="89.160.20.112",
            )
            fields = encode_session(session, refresh_secret=session_id)
            keys += [session_key(user_id, session_id), index_key(user_id)]
            args += [session_id, expire_at, len(fields)]
            args += [item for pair in fields.items() for item in pair]
        write(keys=keys, args=args)
    return expire_at


def load_others(client: redis.Redis, count: int) -> float:
    """Write ``count`` other users' sessions (one each) into the server; return seconds."""
    started = time.monotonic()
    write_sessions(client, [(f"other-{n}", f"{n:022d}") for n in range(count)], now_ms())
    return time.monotonic() - started


def seed_all(bench: Bench, *, single_use: bool = True) -> dict[str, list[Seeded]]:
    """Log in the users of every load; ``single_use``: enough single-use tokens for a run."""
    app = bench.app
    # Single-use tokens, enough for a run: verify of new tokens answered over
    # 4,000 requests a second on this 2-core machine when nothing else ran.
    per_run = bench.args.duration * bench.args.rounds * 6000 + 2000 if single_use else 100
    r = bench.run_id
    return {
        # A gateway checks each token many times (every request of its user for
        # up to 30 minutes): 200 users' tokens, each seen again and again.
        "verify": seed(app, [f"verify-{r}-{i}" for i in range(200)]),
        # The same, signed in with a second factor, for verify with a route's requirements.
        "verify-aal2": seed(
            app, [f"verify-aal2-{r}-{i}" for i in range(200)], assurance=STEPPED_UP
        ),
        # 200 users with 10 sessions each; one token per user.
        "list": seed(app, [f"list-{r}-{i % 200}" for i in range(2000)])[-200:],
        "refresh": seed(app, [f"refresh-{r}-{i}" for i in range(per_run)]),
        "delete": seed(app, [f"delete-{r}-{i}" for i in range(per_run)]),
        "count": seed(app, [f"count-{r}-{i}" for i in range(600)]),
    }
