"""Property test of the incremental-sync engine against a real Redis, and against a
Redis Cluster of three masters: after any sequence of friend-list changes, a client
that applies each sync answer to its copy holds exactly the server's list."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import hypothesis.strategies as st
import redis
import trio
from hypothesis import HealthCheck, given, settings

from actors.user.relations import friend_sync_reply
from client import FriendListCopy
from storage import (
    AccountRecord,
    ApplicationRecord,
    FriendRecord,
    StepRefused,
    Storage,
)
from tests.support import both_stores

pytestmark = both_stores

OWNER = "owner"
PEERS = [f"peer{n}" for n in range(5)]

peer = st.sampled_from(PEERS)
operation = st.one_of(
    st.tuples(st.just("befriend"), peer),
    st.tuples(st.just("delete"), peer),
    st.tuples(st.just("dropped_by"), peer),
    st.tuples(st.just("remark"), peer, st.text(max_size=8)),
    st.tuples(st.just("sync"), st.integers(0, 2)),
)


async def befriend(storage: Storage, peer_id: str, clock: list[int]) -> None:
    clock[0] += 1
    now = clock[0]
    relations = storage.relations
    try:
        await relations.apply(ApplicationRecord(peer_id, OWNER, "", 0, "", now, 0), b"n")
    except StepRefused:
        return
    found = await relations.received_application(OWNER, peer_id)
    assert found is not None
    read, application = found
    handled = ApplicationRecord(peer_id, OWNER, "", 1, "", now, now)
    await relations.respond(
        read,
        handled,
        now,
        FriendRecord(peer_id, "", "", now),
        FriendRecord(OWNER, "", "", now),
        b"r",
        b"a",
        b"b",
    )
    assert application.to_user_id == OWNER


async def server_list(storage: Storage) -> dict[str, Any]:
    records, _ = await storage.relations.friends(OWNER, 0, 1000)
    return {r.user_id: (r.remark, r.ex, r.created_at) for r in records}


def copy_list(copy: FriendListCopy) -> dict[str, Any]:
    return {f.user_id: (f.remark, f.ex, f.created_at) for f in copy.friends.values()}


@settings(
    max_examples=100,  # per store: 200 sequences a run
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, max_size=40), log_length=st.integers(1, 6))
async def test_client_copy_always_equals_server_list(
    redis_url: str, redis_client: redis.Redis, ops: list[tuple[Any, ...]], log_length: int
) -> None:
    prefix = f"prop-{uuid.uuid4().hex[:10]}:"
    storage = Storage(redis_url, prefix, "node-test", version_log_length=log_length)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(storage.run)
            await _run(storage, ops)
            nursery.cancel_scope.cancel()
    finally:
        for key in redis_client.scan_iter(f"{prefix}*"):
            redis_client.delete(key)
        storage.close()


async def _run(storage: Storage, ops: list[tuple[Any, ...]]) -> None:
    relations = storage.relations
    for user_id in [OWNER, *PEERS]:
        await storage.accounts.create(AccountRecord(user_id, "x", user_id, "", "", 1, 1))
    copies = [FriendListCopy() for _ in range(3)]
    clock = [1_000]
    for op in ops:
        kind = op[0]
        if kind == "befriend":
            await befriend(storage, op[1], clock)
        elif kind == "delete":
            with contextlib.suppress(StepRefused):
                await relations.delete_friend(OWNER, op[1], False, b"x", b"y")
        elif kind == "dropped_by":
            with contextlib.suppress(StepRefused):
                await relations.delete_friend(op[1], OWNER, True, b"x", b"y")
        elif kind == "remark":
            found = await relations.friend_entry(OWNER, op[1])
            if found is not None:
                read, entry = found
                updated = FriendRecord(entry.user_id, op[2], entry.ex, entry.created_at)
                await relations.update_friend(OWNER, read, updated, b"n")
        else:
            copy = copies[op[1]]
            changes = await relations.sync_friends(OWNER, copy.version_id, copy.version)
            copy.apply(friend_sync_reply(0, changes))
            assert copy_list(copy) == await server_list(storage)
    # Every copy, synced once more at the end, matches too.
    for copy in copies:
        changes = await relations.sync_friends(OWNER, copy.version_id, copy.version)
        copy.apply(friend_sync_reply(0, changes))
        assert copy_list(copy) == await server_list(storage)
        again = await relations.sync_friends(OWNER, copy.version_id, copy.version)
        assert again.kind == "equal"
