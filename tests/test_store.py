"""The store's invariants, against a real Redis-protocol server."""

from __future__ import annotations

import threading
import time

import pytest
import redis as redis_py
from redis.connection import Connection

from sessionsvc.domain.sessions import Device, Rotation, is_valid_session_id, now_ms
from sessionsvc.store import SessionStore, StoreUnavailable
from sessionsvc.store.connection import close, cluster_client, redis_client
from tests.conftest import CLUSTER, assert_store_invariants

DEVICE = Device(browser="Chrome", version="87", os="Linux")


def create(store: SessionStore, user_id: str = "alice", **kwargs):
    session, _evicted = store.create(
        user_id, device=DEVICE, ip="127.0.0.1", location="unknown", refresh_secret="r0", **kwargs
    )
    return session


def live_hashes(redis, store: SessionStore, user_id: str) -> set[str]:
    prefix = store.session_key(user_id, "")
    return {key[len(prefix) :] for key in redis.scan_iter(match=f"{prefix}*", count=1000)}


def indexed(redis, store: SessionStore, user_id: str) -> set[str]:
    return set(redis.zrange(store.index_key(user_id), 0, -1))


class RoundTrips:
    """Count round trips on a real client: every request the client sends is one."""

    def __init__(self, url: str) -> None:
        self.count = 0
        counter = self

        def counting(base: type[Connection]) -> type[Connection]:
            class CountingConnection(base):
                def send_packed_command(self, command, check_health=True):
                    counter.count += 1
                    return super().send_packed_command(command, check_health)

            return CountingConnection

        if CLUSTER:  # one pool per node, made as the client meets the nodes
            self.client = cluster_client(
                url, timeout=1.0, retries=0, connection_class=counting(Connection)
            )
        else:
            self.client = redis_client(url, timeout=1.0, retries=0)
            pool = self.client.connection_pool
            pool.connection_class = counting(pool.connection_class)


@pytest.fixture(params=[False, True], ids=["no-events", "events"])
def counted(request, redis_url, key_prefix):
    trips = RoundTrips(redis_url)
    events = f"{key_prefix}events" if request.param else None
    trips.store = SessionStore(trips.client, prefix=key_prefix, events_stream=events)
    trips.events = request.param
    yield trips
    close(trips.client)


def test_session_ids_are_opaque_and_distinct(store):
    ids = {create(store).id for _ in range(50)}

    assert len(ids) == 50
    assert all(is_valid_session_id(sid) and len(sid) == 22 for sid in ids)


def test_create_writes_hash_and_index_together_with_expiry(store, redis):
    session = create(store)

    key = store.session_key("alice", session.id)
    assert redis.hget(key, "c") == str(session.created_at)
    assert redis.pexpiretime(key) == session.expire_at
    assert redis.zscore(store.index_key("alice"), session.id) == session.expire_at
    assert redis.pexpiretime(store.index_key("alice")) == session.expire_at


def test_keys_carry_the_user_hash_tag(store):
    assert "{alice@example.com}" in store.session_key("alice@example.com", "x")
    assert "{alice@example.com}" in store.index_key("alice@example.com")


def test_keys_parse_back_to_their_ids(store):
    key = store.session_key("alice@example.com", "x2wM1y8y0dO8rR3n5ZJ8ZQ")

    assert store.parse_session_key(key) == ("alice@example.com", "x2wM1y8y0dO8rR3n5ZJ8ZQ")
    assert store.parse_index_key(store.index_key("alice:1")) == "alice:1"
    assert store.parse_session_key(store.index_key("alice")) is None
    assert store.parse_index_key(key) is None
    elsewhere = SessionStore(store.redis, prefix=f"{store.prefix}other:")
    assert store.parse_session_key(elsewhere.session_key("alice", "x")) is None
    assert store.parse_index_key(elsewhere.index_key("alice")) is None


@pytest.mark.parametrize(
    ("damage", "complaint"),
    [
        (
            lambda redis, store, id: redis.zrem(store.index_key("alice"), id),
            "missing from the index",
        ),
        (lambda redis, store, id: redis.delete(store.session_key("alice", id)), "indexed but gone"),
        (lambda redis, store, id: redis.persist(store.session_key("alice", id)), "has no TTL"),
    ],
    ids=["unindexed", "indexed-but-gone", "no-ttl"],
)
def test_the_invariant_check_sees_a_damaged_store(store, redis, damage, complaint):
    create(store)
    damaged = create(store)
    assert assert_store_invariants(redis, store.prefix) == 2

    damage(redis, store, damaged.id)

    with pytest.raises(AssertionError, match=complaint):
        assert_store_invariants(redis, store.prefix)


def test_session_fields_stay_compact(store, redis):
    long_device = Device(browser="B" * 300, version="1" * 300, os="O" * 300, platform="P" * 300)
    session, _ = store.create(
        "alice", device=long_device, ip="::1", location="L" * 300, refresh_secret="r"
    )

    assert redis.object("encoding", store.session_key("alice", session.id)) == "listpack"


def test_a_new_session_is_stored_compactly(store, redis):
    session = create(store)
    key = store.session_key("alice", session.id)

    assert redis.object("encoding", key) == "listpack"
    # No expiry field (the key's TTL and the index score hold it), no lastActiveAt
    # until the first touch, the descriptive parts packed into one field.
    assert set(redis.hkeys(key)) == {"c", "x", "h"}
    assert store.list_sessions("alice")[0].expire_at == redis.pexpiretime(key) == session.expire_at
    refreshed = store.rotate_refresh("alice", session.id, "r0", "r1")
    assert refreshed.expire_at == redis.pexpiretime(key)


@pytest.mark.parametrize(
    ("device", "location", "ip", "packed"),
    [
        (DEVICE, "unknown", "127.0.0.1", True),
        (
            Device("Chrome Mobile", "120.0.6099.109", "Pixel 8", "Android", True),
            "Berlin, Germany",
            "2001:db8::1",
            False,
        ),  # over 64 bytes together
        (Device(browser="", version="1"), "", "::1", False),  # "" would read back as unknown
        (Device(browser="a\x1fb"), "unknown", "::1", False),  # holds the separator
    ],
    ids=["packed", "too-long", "empty-parts", "separator"],
)
def test_a_session_reads_back_as_it_was_created(store, redis, device, location, ip, packed):
    session, _ = store.create("alice", device=device, ip=ip, location=location, refresh_secret="r")
    key = store.session_key("alice", session.id)

    assert store.list_sessions("alice") == [session]
    assert redis.hexists(key, "x") is packed
    assert redis.object("encoding", key) == "listpack"


def test_list_is_newest_first(store):
    ids = [create(store, now=1_900_000_000_000 + i).id for i in range(5)]

    assert [s.id for s in store.list_sessions("alice")] == ids[::-1]


def test_expired_sessions_vanish_and_the_index_empties(redis, key_prefix):
    store = SessionStore(redis, prefix=key_prefix, lifetime=1)
    first = create(store)
    assert [s.id for s in store.list_sessions("alice")] == [first.id]

    time.sleep(1.1)

    assert store.list_sessions("alice") == []
    assert not store.is_live("alice", first.id)
    assert redis.exists(store.index_key("alice")) == 0


def test_index_entries_of_expired_sessions_are_pruned(store, redis):
    now = int(time.time() * 1000)
    old = create(store, now=now - store.lifetime_ms - 5)  # already expired on arrival
    fresh = create(store)

    assert indexed(redis, store, "alice") == {fresh.id}
    assert old.id not in live_hashes(redis, store, "alice")


def test_list_prunes_an_index_entry_whose_hash_is_gone(store, redis):
    kept, lost = create(store), create(store)
    redis.delete(store.session_key("alice", lost.id))  # as if evicted by Redis itself

    assert [s.id for s in store.list_sessions("alice")] == [kept.id]
    assert indexed(redis, store, "alice") == {kept.id}


def test_revoke_removes_hash_and_index_entry(store, redis):
    session = create(store)

    assert store.revoke("alice", session.id) is True
    assert store.revoke("alice", session.id) is False
    assert live_hashes(redis, store, "alice") == set()
    assert indexed(redis, store, "alice") == set()


def test_revoke_all_keeps_other_users(store, redis):
    for _ in range(3):
        create(store)
    bob = create(store, "bob")

    assert len(store.revoke_all("alice")) == 3
    assert live_hashes(redis, store, "alice") == set()
    assert [s.id for s in store.list_sessions("bob")] == [bob.id]


def test_the_cap_never_evicts_the_session_it_makes(redis, key_prefix):
    # Sessions of one millisecond share a score in the index: whatever its id
    # sorts like, the new one survives and the older one goes.
    store = SessionStore(redis, prefix=key_prefix, max_sessions=1)
    now = now_ms()
    previous = create(store, now=now)
    for _ in range(20):
        session, evicted = store.create(
            "alice", device=DEVICE, ip="127.0.0.1", location="unknown", refresh_secret="r", now=now
        )
        assert evicted == [previous.id]
        assert store.is_live("alice", session.id)
        previous = session


def test_idle_sessions_die(redis, key_prefix):
    store = SessionStore(redis, prefix=key_prefix, idle_timeout=1)
    idle, used = create(store), create(store)
    time.sleep(0.6)
    assert store.is_live("alice", used.id)
    store.redis.hset(store.session_key("alice", used.id), "a", int(time.time() * 1000))
    time.sleep(0.6)

    assert not store.is_live("alice", idle.id)
    assert [s.id for s in store.list_sessions("alice")] == [used.id]


def test_list_prunes_idle_sessions_itself(redis, key_prefix):
    store = SessionStore(redis, prefix=key_prefix, idle_timeout=1)
    idle, used = create(store), create(store)  # neither touched yet: no field a
    time.sleep(0.6)
    store.redis.hset(store.session_key("alice", used.id), "a", int(time.time() * 1000))
    time.sleep(0.6)

    assert [s.id for s in store.list_sessions("alice")] == [used.id]
    assert redis.exists(store.session_key("alice", idle.id)) == 0
    assert redis.zrange(store.index_key("alice"), 0, -1) == [used.id]


def test_check_never_recreates_a_dead_session(store, redis):
    session = create(store)
    store.revoke("alice", session.id)

    assert store.is_live("alice", session.id) is False
    assert redis.exists(store.session_key("alice", session.id)) == 0


def test_rotation_outcomes(redis, key_prefix):
    store = SessionStore(redis, prefix=key_prefix, refresh_grace=0)
    session = create(store)

    first = store.rotate_refresh("alice", session.id, "r0", "r1")
    assert (first.rotation, first.refresh_secret, first.expire_at) == (
        Rotation.ROTATED,
        "r1",
        session.expire_at,
    )
    time.sleep(0.01)
    assert store.rotate_refresh("alice", session.id, "r0", "r1").rotation is Rotation.REUSED
    assert store.rotate_refresh("alice", session.id, "r1", "r2").rotation is Rotation.GONE
    assert store.list_sessions("alice") == []


def test_the_previous_secret_within_the_grace_gets_its_successor_again(store):
    session = create(store)
    store.rotate_refresh("alice", session.id, "r0", "r1")

    again = store.rotate_refresh("alice", session.id, "r0", "r1")
    other = store.rotate_refresh("alice", session.id, "r0", "not-r1", issued=True)

    assert (again.rotation, again.refresh_secret) == (Rotation.GRACE, "r1")
    # Not the successor the session holds (another SERVICE_KEY derived it): refused, not theft.
    assert other.rotation is Rotation.UNKNOWN
    assert store.rotate_refresh("alice", session.id, "r1", "r2").rotation is Rotation.ROTATED


def test_a_session_stored_with_its_secret_by_0_1_0_refreshes_once_into_digests(store, redis):
    session = create(store)
    key = store.session_key("alice", session.id)
    redis.hdel(key, "h")
    redis.hset(key, mapping={"r": "old1", "q": "old0", "t": now_ms()})  # as 0.1.0 wrote it

    grace = store.rotate_refresh("alice", session.id, "old0", "derived")
    rotated = store.rotate_refresh("alice", session.id, "old1", "new1")

    assert (grace.rotation, grace.refresh_secret) == (Rotation.GRACE, "old1")  # its own
    assert (rotated.rotation, rotated.refresh_secret) == (Rotation.ROTATED, "new1")
    assert not {"r", "q"} & set(redis.hkeys(key))
    assert store.rotate_refresh("alice", session.id, "new1", "new2").rotation is Rotation.ROTATED


def test_no_grace_means_none_even_in_the_same_millisecond(redis, key_prefix):
    store = SessionStore(redis, prefix=key_prefix, refresh_grace=0)
    for _ in range(20):
        session = create(store)
        store.rotate_refresh("alice", session.id, "r0", "r1")
        assert store.rotate_refresh("alice", session.id, "r0", "r1").rotation is Rotation.REUSED


def test_revoke_all_racing_with_logins_never_hides_a_session(store, redis):
    stop = threading.Event()
    logins = []  # list.append is atomic

    def keep_logging_in() -> None:
        while not stop.is_set():
            logins.append(create(store).id)

    threads = [threading.Thread(target=keep_logging_in) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(200):
            store.revoke_all("alice")
        # More logins than threads after the last revoke: one of them started
        # after it, so some sessions must remain.
        after_last = len(logins)
        deadline = time.monotonic() + 5
        while len(logins) <= after_last + len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert len(logins) >= 20, "logins should have raced with the revokes"
    # A session hidden by the race would be a hash missing from the index: the
    # revokes cannot reach it, so it would still be here.
    hashes = live_hashes(redis, store, "alice")
    assert hashes <= indexed(redis, store, "alice")
    assert {s.id for s in store.list_sessions("alice")} == hashes


def test_a_failed_create_writes_nothing(store, redis):
    # A wrong-type index makes the script fail after its first command; a
    # script is atomic only for what it ran, so the hash must come after it.
    redis.set(store.index_key("alice"), "not a sorted set")

    with pytest.raises(StoreUnavailable):
        create(store)

    assert live_hashes(redis, store, "alice") == set()


@pytest.mark.parametrize(
    ("operation", "emits"),
    [
        (lambda store, sid: create(store), True),
        (lambda store, sid: store.is_live("alice", sid), False),
        (lambda store, sid: store.list_sessions("alice"), False),
        (lambda store, sid: store.revoke("alice", sid), True),
        (lambda store, sid: store.revoke_all("alice"), True),
        (lambda store, sid: store.rotate_refresh("alice", sid, "r0", "r1"), True),
    ],
)
def test_each_operation_is_one_round_trip(counted, operation, emits):
    for _ in range(3):  # the first call of each script loads it: count the last
        sessions = [create(counted.store) for _ in range(10)]
        counted.count = 0
        operation(counted.store, sessions[0].id)

    # In a Cluster the events stream is in another slot: its XADD is a second trip.
    assert counted.count == (2 if CLUSTER and counted.events and emits else 1)


def test_unreachable_redis_raises_store_unavailable():
    client = redis_client("redis://127.0.0.1:1", timeout=0.2, retries=0)
    store = SessionStore(client)

    with pytest.raises(StoreUnavailable) as raised:
        store.is_live("alice", "A" * 22)

    assert isinstance(raised.value.__cause__, redis_py.ConnectionError)
