"""Follow-ups (storage/followups.py) against a real Redis: an outbox entry recorded by
a Lua step with ``followups_record``, applied to its targets with every op, applied
once however often it is sent, replayed from the outbox and from a node's pending
set, and refused whole when malformed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trio

from storage import Storage
from storage.followups import MalformedEntry, parse_entry

_LIB = Path(__file__).parent.parent / "storage" / "lua" / "lib" / "followups.lua"

# A primary step for the tests: records the follow-ups given as ARGV (target, then
# its ops' tokens up to a '|') under KEYS[1], and returns the pending entries then
# its own.
_RECORD = (
    _LIB.read_text()
    + """
local list, current = {}, nil
for _, token in ipairs(ARGV) do
  if current == nil then
    current = {token, {}}
  elseif token == '|' then
    table.insert(list, current)
    current = nil
  else
    table.insert(current[2], token)
  end
end
local pending = followups_pending(KEYS[1])
table.insert(pending, followups_record(KEYS[1], list))
return pending
"""
)


@pytest.fixture
async def storage(nursery: trio.Nursery, redis_url: str, prefix: str) -> AsyncIterator[Storage]:
    storage = Storage(redis_url, prefix, "node-f")
    await nursery.start(storage.run)
    yield storage
    storage.close()


def _record(client: redis.Redis, source: str, *follow_ups: tuple[str, list[Any]]) -> list[bytes]:
    args: list[Any] = []
    for target, tokens in follow_ups:
        args += [target, *tokens, "|"]
    return list(client.eval(_RECORD, 1, source, *args))


async def test_an_entry_applies_every_op_to_its_targets(
    storage: Storage, redis_client: redis.Redis
) -> None:
    keys = storage.keys
    source, bob, carol = keys.user_tag("alice"), keys.user_tag("bob"), keys.user_tag("carol")
    redis_client.hset(f"{bob}:friends", "gone", "x")
    redis_client.hset(f"{bob}:reads", "c1", 7)
    [entry] = _record(
        redis_client,
        source,
        (
            bob,
            [
                "hsetnx",
                ":friends",
                "alice",
                "entry-1",
                ":vlog:friends",
                "hdel",
                ":friends",
                "gone",
                ":vlog:friends",
                "hmax",
                ":reads",
                "c1",
                "5",
                "hmax",
                ":reads",
                "c2",
                "3",
                "sadd",
                ":friend_of",
                "alice",
                "zadd",
                ":friends:order",
                "12",
                "alice",
                "notify",
                b"\x00\xffpayload",
            ],
        ),
        (carol, ["hset", ":conv", "c1", "e", ":vlog:convs", "srem", ":x", "y", "zrem", ":z", "a"]),
    )
    assert parse_entry(entry).revision == 1
    [[bob_results, carol_results]] = await storage.followups.apply(source, [entry])
    assert bob_results == [1, 1, 0, 1, 1, 1, 1]
    assert carol_results == [1, 0, 0]
    assert redis_client.hgetall(f"{bob}:friends") == {b"alice": b"entry-1"}
    assert redis_client.hgetall(f"{bob}:reads") == {b"c1": b"7", b"c2": b"3"}
    assert redis_client.smembers(f"{bob}:friend_of") == {b"alice"}
    assert redis_client.zscore(f"{bob}:friends:order", "alice") == 12
    assert redis_client.hget(f"{bob}:ntf", 1) == b"\x00\xffpayload"
    assert redis_client.hgetall(f"{bob}:vlog:friends:ops") == {
        b"alice": b"insert:1",
        b"gone": b"delete",
    }
    assert redis_client.hget(f"{carol}:conv", "c1") == b"e"
    with trio.fail_after(5):
        while redis_client.exists(f"{source}:outbox"):  # deleted by a detached command
            await trio.sleep(0.01)


async def test_an_entry_is_applied_once_and_never_after_a_newer_one(
    storage: Storage, redis_client: redis.Redis
) -> None:
    keys = storage.keys
    source, bob = keys.user_tag("alice"), keys.user_tag("bob")
    [first] = _record(redis_client, source, (bob, ["hset", ":friends", "alice", "old", ""]))
    [_, second] = _record(redis_client, source, (bob, ["hset", ":friends", "alice", "new", ""]))
    # the second step returned the first's entry too, still pending, oldest first
    assert parse_entry(_).revision == 1 and parse_entry(second).revision == 2
    assert await storage.followups.apply(source, [second]) == [[[1]]]
    assert await storage.followups.apply(source, [first]) == [[[]]]
    assert await storage.followups.apply(source, [second]) == [[[]]]
    assert redis_client.hget(f"{bob}:friends", "alice") == b"new"
    assert redis_client.hgetall(f"{bob}:applied") == {source.encode(): b"2"}


async def test_replay_applies_what_a_dead_node_left_in_order(
    storage: Storage, redis_client: redis.Redis
) -> None:
    keys = storage.keys
    source, bob = keys.group_tag("g1"), keys.user_tag("bob")
    _record(redis_client, source, (bob, ["hset", ":groups", "g1", "r1", ":vlog:groups"]))
    _record(redis_client, source, (bob, ["hset", ":groups", "g1", "r2", ":vlog:groups"]))
    redis_client.sadd(keys.node_pending("dead-node"), source)
    assert await storage.followups.replay_node("dead-node") == 2
    assert redis_client.hget(f"{bob}:groups", "g1") == b"r2"
    assert redis_client.hget(f"{bob}:vlog:groups:ops", "g1") == b"insert:1"
    assert not redis_client.exists(keys.node_pending("dead-node"))
    with trio.fail_after(5):
        while redis_client.hlen(f"{source}:outbox"):
            await trio.sleep(0.01)
    assert await storage.followups.replay_source(source) == 0


async def test_a_noted_step_clears_its_note_once_applied(
    storage: Storage, redis_client: redis.Redis
) -> None:
    keys = storage.keys
    source, bob = keys.user_tag("alice"), keys.user_tag("bob")
    group = storage.pipelined.pipeline(transaction=False)
    storage.followups.note_pending(group, source)
    await group.execute()
    assert redis_client.sismember(keys.node_pending("node-f"), source)
    [entry] = _record(redis_client, source, (bob, ["sadd", ":s", "m"]))
    await storage.followups.apply(source, [entry], noted=True)
    with trio.fail_after(5):
        while redis_client.sismember(keys.node_pending("node-f"), source):
            await trio.sleep(0.01)


async def test_a_malformed_follow_up_changes_nothing(
    storage: Storage, redis_client: redis.Redis
) -> None:
    keys = storage.keys
    source, bob = keys.user_tag("alice"), keys.user_tag("bob")
    [entry] = _record(redis_client, source, (bob, ["sadd", ":s", "m", "frobnicate", ":s", "x"]))
    with pytest.raises(redis.ResponseError, match="malformed follow-up"):
        await storage.followups.apply(source, [entry])
    assert not redis_client.exists(f"{bob}:s", f"{bob}:applied")
    assert redis_client.hlen(f"{source}:outbox") == 1  # kept, for a fixed node to apply
    with pytest.raises(MalformedEntry):
        parse_entry(b"1:1" + b"9:short")


async def test_follow_ups_run_on_a_cluster_slot_by_slot(
    nursery: trio.Nursery, slot_checking_redis: Any, prefix: str
) -> None:
    client = redis.Redis.from_url(slot_checking_redis.plain_url)
    storage = Storage(slot_checking_redis.plain_url, prefix, "node-f")
    await nursery.start(storage.run)
    keys = storage.keys
    source, bob, carol = keys.user_tag("alice"), keys.user_tag("bob"), keys.user_tag("carol")
    with pytest.raises(redis.ResponseError, match="same slot"):
        client.eval("return 1", 2, bob, carol)  # the check the cluster makes
    [entry] = _record(client, source, (bob, ["sadd", ":s", "m"]), (carol, ["notify", "hello"]))
    assert await storage.followups.apply(source, [entry]) == [[[1], [1]]]
    assert client.smembers(f"{bob}:s") == {b"m"}
    storage.close()
    client.close()


async def test_hsetif_and_when_set_only_what_the_step_expected(
    storage: Storage, redis_client: redis.Redis
) -> None:
    keys = storage.keys
    source, bob = keys.user_tag("alice"), keys.user_tag("bob")
    redis_client.hset(f"{bob}:out", mapping={"a": "read", "b": "renewed"})
    redis_client.hset(f"{bob}:friends", "old", "x")
    [entry] = _record(
        redis_client,
        source,
        (
            bob,
            [
                # compare-and-set: 'a' still holds what was read, 'b' changed meanwhile
                *("hsetif", ":out", "a", "read", "handled", ":vlog:out"),
                *("hsetif", ":out", "b", "read", "handled", ":vlog:out"),
                # the ops after a 'when' run only if the op before it changed something
                *("hsetnx", ":friends", "old", "y", ":vlog:friends", "when", "2"),
                *("zadd", ":friends:order", "1", "old", "notify", "old added"),
                *("hsetnx", ":friends", "new", "y", ":vlog:friends", "when", "2"),
                *("zadd", ":friends:order", "2", "new", "notify", "new added"),
            ],
        ),
    )
    [[results]] = await storage.followups.apply(source, [entry])
    assert results == [1, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert redis_client.hgetall(f"{bob}:out") == {b"a": b"handled", b"b": b"renewed"}
    assert redis_client.hgetall(f"{bob}:vlog:out:ops") == {b"a": b"update"}
    assert redis_client.zrange(f"{bob}:friends:order", 0, -1) == [b"new"]
    assert redis_client.hgetall(f"{bob}:ntf") == {b"1": b"new added"}
