"""The stores, awaited on the trio loop through ``Storage.run``, against a real Redis:
plain commands, Lua steps by SHA1, command groups, ``MULTI`` transactions and the
version-log reader, and the errors of a Redis that is gone or a storage that stopped.

Self-contained (its own Redis server and key prefixes), so it needs nothing of
``tests/conftest.py`` but pytest-trio's ``nursery`` fixture."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import trio

from storage import (
    AccountRecord,
    ConversationRecord,
    EmbeddedRedis,
    GroupRecord,
    GroupStep,
    MemberRecord,
    Storage,
)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("async-storage-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


async def _running(nursery: trio.Nursery, url: str, prefix: str) -> Storage:
    storage = Storage(url, prefix, "node-a")
    await nursery.start(storage.run)
    return storage


@pytest.fixture
async def storage(
    nursery: trio.Nursery, own_redis: EmbeddedRedis, key_prefix: str
) -> AsyncIterator[Storage]:
    storage = await _running(nursery, own_redis.url, key_prefix)
    yield storage
    storage.close()


def _account(user_id: str) -> AccountRecord:
    return AccountRecord(user_id, "hash", f"nick {user_id}", "", "", 1_000, 1)


async def test_accounts_are_created_once_and_loaded(storage: Storage) -> None:
    assert await storage.accounts.load("alice") is None
    assert await storage.accounts.create(_account("alice"))
    assert not await storage.accounts.create(_account("alice"))  # the Lua step refuses
    loaded = await storage.accounts.load("alice")
    assert loaded == _account("alice")
    assert await storage.accounts.exists("alice")
    assert await storage.accounts.update_profile("alice", {"nickname": "Al"}) == 2
    profiles = await storage.accounts.public_profiles(["alice", "nobody"])
    assert list(profiles) == ["alice"] and profiles["alice"].nickname == "Al"
    await storage.accounts.add_token("alice", "t1", 1, 2**40, 1_000)
    assert await storage.accounts.load_for_token("alice", "t1") is not None  # a group
    assert await storage.accounts.load_for_token("alice", "t2") is None


async def test_a_message_gets_the_next_seq_and_a_retry_the_first_one(storage: Storage) -> None:
    for user in ("alice", "bob"):
        await storage.accounts.create(_account(user))
    conversation = "si_alice_bob"

    async def send(client_msg_id: str) -> tuple[int, bool]:
        stored = await storage.messages.send(
            conversation, client_msg_id, b"payload " + client_msg_id.encode(), 1_000, True,
            "alice", {"alice": b"entry", "bob": b"entry"}, peer_checks="peer", peer="bob",
        )  # fmt: skip
        return stored.seq, stored.duplicate

    assert await send("m1") == (1, False)
    assert await send("m2") == (2, False)
    assert await send("m1") == (1, True)
    assert await storage.messages.max_seqs([conversation, "si_x_y"]) == [2, 0]
    assert await storage.messages.get(conversation, 2) == b"payload m2"
    assert await storage.messages.seq_of(conversation, "m2") == 2


async def test_commands_of_many_tasks_share_batches(storage: Storage) -> None:
    """Concurrent store calls, one of them a group with two Lua calls in it."""
    before = storage.pipelined.batches
    async with trio.open_nursery() as nursery:
        for n in range(50):
            nursery.start_soon(storage.accounts.create, _account(f"user{n}"))
    assert storage.pipelined.batches - before < 10
    found = await storage.accounts.public_profiles([f"user{n}" for n in range(50)])
    assert len(found) == 50
    for _ in range(3):
        await storage.accounts.count_login_failure("user1", "10.0.0.1", True, 60)
    await storage.accounts.count_login_failure("nobody", "10.0.0.1", False, 60)
    assert await storage.accounts.login_failures("user1", "10.0.0.1", True) == [3, 3]
    assert await storage.accounts.login_failures("other", "10.0.0.1", False) == [1]
    await storage.accounts.clear_login_failures("user1")
    assert await storage.accounts.login_failures("user1", "10.0.0.1", True) == [0, 3]
    assert 0 < await storage.accounts.login_failure_wait_ms("user1", "10.0.0.1", True) <= 60_000


async def test_heartbeats_and_sessions_use_transactions(storage: Storage) -> None:
    first = await storage.presence.heartbeat(30, 1_000)
    assert not first.was_known and first.listed == frozenset()
    displaced = await storage.presence.sign_in("alice", "s1", 1, "t1", [], None, 1_000, "node-a")
    assert displaced == []
    second = await storage.presence.heartbeat(30, 2_000)
    assert second.was_known and second.listed == {("alice", "s1")}
    assert await storage.presence.live_nodes() == ["node-a"]
    assert await storage.presence.online_platforms(["alice", "bob"]) == {"alice": [1], "bob": []}
    await storage.presence.session_offline("alice", "s1")
    assert await storage.presence.sessions("alice") == []
    assert (await storage.presence.heartbeat(30, 3_000)).listed == frozenset()


async def test_version_logs_are_read_by_the_sync_script(storage: Storage) -> None:
    record = ConversationRecord("si_alice_bob", 1, "bob", "")
    await storage.conversations.write("alice", [(None, record)])
    fresh = await storage.conversations.sync("alice", "", 0)  # from the empty list
    assert fresh.kind == "incremental" and fresh.inserted == {"si_alice_bob"}
    full = await storage.conversations.sync("alice", "unknown", 1)
    assert full.kind == "full" and set(full.upserts) == {"si_alice_bob"}
    assert (full.version_id, full.version) == (fresh.version_id, fresh.version)
    same = await storage.conversations.sync("alice", full.version_id, full.version)
    assert same.kind == "equal"
    entry = await storage.conversations.entry("alice", "si_alice_bob")
    assert entry is not None
    pinned = ConversationRecord("si_alice_bob", 1, "bob", "", pinned=True)
    await storage.conversations.write("alice", [(entry[0], pinned)])
    changes = await storage.conversations.sync("alice", full.version_id, full.version)
    assert changes.kind == "incremental" and list(changes.upserts) == ["si_alice_bob"]
    assert changes.inserted == frozenset()


async def test_a_group_step_and_the_membership_reads(storage: Storage) -> None:
    await storage.accounts.create(_account("owner"))
    step = GroupStep("g1", None)
    step.require_account("owner")
    step.put_info(
        GroupRecord("g1", "G", "", "", "", "", "owner", "owner", "open", "ok", False, 1, 0, "")
    )
    member = MemberRecord("owner", 100, "", "", "", 1, 0, "", 0, step.join_seq(1))
    step.put_member(member, insert=True)
    step.put_joined(member, insert=True)
    result = await storage.groups.run(step)
    assert result.rev == 1
    loaded = await storage.groups.load("g1")  # a MULTI
    assert loaded is not None and list(loaded.members) == ["owner"] and loaded.rev == 1
    assert await storage.is_group_member("g1", "owner")
    assert not await storage.is_group_member("g1", "other")
    assert await storage.joined_group_ids("owner") == ["g1"]
    assert await storage.left_group_seqs("owner", ["g1"]) == [None]
    ids, _, version = await storage.groups.joined_ids("owner")
    assert ids == ["g1"] and version >= 1


async def test_token_secret_ping_and_publish(storage: Storage) -> None:
    secret = await storage.token_secret()
    assert secret and await storage.token_secret() == secret
    await storage.ping()
    subscriptions = await trio.to_thread.run_sync(storage.subscribe, ["chan"])
    try:
        assert await storage.publish("chan", b"hello") == 1
        storage.publish_detached("chan", b"again")
        got: list[bytes] = []
        with trio.fail_after(10):
            while len(got) < 2:
                got += await trio.to_thread.run_sync(subscriptions.read, 10)
        assert got == [b"hello", b"again"]
    finally:
        subscriptions.close()


async def test_a_stopped_redis_fails_commands_and_a_restarted_one_serves(
    tmp_path: Path, key_prefix: str
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    await trio.to_thread.run_sync(server.start)
    try:
        async with trio.open_nursery() as nursery:
            storage = await _running(nursery, server.url, key_prefix)
            assert await storage.leases.claim("user", "alice", 10_000) == ("node-a", "")
            await trio.to_thread.run_sync(server.stop)
            with pytest.raises(redis.ConnectionError):
                await storage.accounts.load("alice")
            with pytest.raises(redis.ConnectionError):
                await storage.leases.claim("user", "alice", 10_000)
            await trio.to_thread.run_sync(server.start)
            with trio.fail_after(20):
                while True:
                    try:  # a Lua step by SHA1: the new connection loaded the scripts
                        assert await storage.leases.claim("user", "alice", 10_000) == ("node-a", "")
                        break
                    except redis.ConnectionError:
                        await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        storage.close()
    finally:
        await trio.to_thread.run_sync(server.stop)


async def test_commands_after_run_ended_fail_instead_of_waiting(
    own_redis: EmbeddedRedis, key_prefix: str
) -> None:
    async with trio.open_nursery() as nursery:
        storage = await _running(nursery, own_redis.url, key_prefix)
        await storage.ping()
        nursery.cancel_scope.cancel()
    with trio.fail_after(5), pytest.raises(redis.ConnectionError):
        await storage.accounts.load("alice")
    failures = storage.pipelined.detached_failures
    storage.publish_detached("chan", b"lost")
    assert storage.pipelined.detached_failures == failures + 1
    storage.close()
