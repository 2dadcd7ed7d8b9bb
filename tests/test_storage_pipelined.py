"""The auto-pipelined Redis client against a real Redis server: commands from many
tasks share batches, each caller gets its own result or error, groups and
transactions keep their commands together, and a lost server fails the batch."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis
import trio
import trio.testing

from storage import EmbeddedRedis
from storage.pipelined import PipelinedRedis, start_executor


@asynccontextmanager
async def pipelined(url: str) -> AsyncIterator[PipelinedRedis]:
    client = redis.Redis.from_url(url)
    ref = start_executor(client, trio.lowlevel.current_trio_token())
    facade = PipelinedRedis(ref)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(facade.run)
            yield facade
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(ref.stop)
        client.close()


async def test_commands_of_many_tasks_share_batches(redis_url: str, prefix: str) -> None:
    async with pipelined(redis_url) as r:
        results: dict[int, int] = {}

        async def one(n: int) -> None:
            await r.set(f"{prefix}k{n}", n)
            value = await r.get(f"{prefix}k{n}")
            assert isinstance(value, bytes)
            results[n] = int(value)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for n in range(500):
                    nursery.start_soon(one, n)
        assert results == {n: n for n in range(500)}
        assert r.commands == 1000
        assert r.batches <= 100, "the commands were not batched"


async def test_a_refused_command_fails_alone(redis_url: str, prefix: str) -> None:
    async with pipelined(redis_url) as r:
        await r.set(f"{prefix}text", "x")
        outcomes: dict[str, object] = {}

        async def wrong_type() -> None:
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await r.hget(f"{prefix}text", "field")
            outcomes["wrong"] = "raised"

        async def fine() -> None:
            outcomes["fine"] = await r.incr(f"{prefix}counter")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wrong_type)
            nursery.start_soon(fine)
        assert outcomes == {"wrong": "raised", "fine": 1}


async def test_groups_and_transactions_keep_their_commands_together(
    redis_url: str, prefix: str
) -> None:
    async with pipelined(redis_url) as r:
        group = r.pipeline()
        group.hset(f"{prefix}h", mapping={"a": "1", "b": "2"})
        group.hgetall(f"{prefix}h")
        group.zadd(f"{prefix}z", {"m": 3})
        group.zrange(f"{prefix}z", 0, -1, withscores=True)
        assert await group.execute() == [2, {b"a": b"1", b"b": b"2"}, 1, [(b"m", 3.0)]]
        transaction = r.pipeline(transaction=True)
        transaction.incr(f"{prefix}n")
        transaction.incr(f"{prefix}n")
        assert await transaction.execute() == [1, 2]
        assert await r.pipeline().execute() == []
        failing = r.pipeline()
        failing.set(f"{prefix}s", "x")
        failing.incr(f"{prefix}s")
        with pytest.raises(redis.ResponseError):
            await failing.execute()
        assert await r.get(f"{prefix}s") == b"x"


async def test_a_cancelled_caller_leaves_the_others_their_results(
    redis_url: str, prefix: str
) -> None:
    async with pipelined(redis_url) as r:
        with trio.move_on_after(0) as scope:
            await r.set(f"{prefix}c", "1")
        assert scope.cancelled_caught
        assert await r.incr(f"{prefix}other") == 1
        with trio.fail_after(10):
            while await r.get(f"{prefix}c") is None:  # the cancelled command still ran
                await trio.sleep(0.01)


async def test_a_lost_server_fails_the_batch_and_a_restarted_one_serves(
    tmp_path: Path, prefix: str
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    await trio.to_thread.run_sync(server.start)
    try:
        async with pipelined(server.url) as r:
            assert await r.set(f"{prefix}kept", "1")
            await trio.to_thread.run_sync(server.stop)
            failures = 0

            async def during_outage() -> None:
                nonlocal failures
                with pytest.raises(redis.ConnectionError):
                    await r.get(f"{prefix}kept")
                failures += 1

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(during_outage)
            assert failures == 5
            await trio.to_thread.run_sync(server.start)
            with trio.fail_after(20):
                while True:
                    try:
                        assert await r.get(f"{prefix}kept") == b"1"
                        break
                    except redis.ConnectionError:
                        await trio.sleep(0.1)
    finally:
        await trio.to_thread.run_sync(server.stop)


SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


async def test_scripts_forgotten_by_redis_are_loaded_again(redis_url: str, prefix: str) -> None:
    """``SCRIPT FLUSH`` under a running node (a restarted Redis is covered by the
    connections, which load the scripts whenever they connect)."""
    client = redis.Redis.from_url(redis_url)
    ref = start_executor(client, trio.lowlevel.current_trio_token(), [SCRIPT])
    r = PipelinedRedis(ref)
    sha = hashlib.sha1(SCRIPT.encode()).hexdigest()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(r.run)
            await r.script_flush()
            key = f"{prefix}counted"
            # A command alone: the executor loads the scripts and runs it again, once.
            assert await r.evalsha(sha, 1, key, 2) == 2
            await r.script_flush()
            # In a group, running it again would reorder the group: it fails instead,
            # and the scripts are loaded for the next try.
            group = r.pipeline()
            group.evalsha(sha, 1, key, 100)
            group.incr(key)
            with pytest.raises(redis.exceptions.NoScriptError):
                await group.execute()
            assert await r.get(key) == b"3"
            group = r.pipeline()
            group.evalsha(sha, 1, key, 10)
            group.incr(key)
            assert await group.execute() == [13, 14]
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(ref.stop)
        client.close()


async def test_detached_commands_run_and_their_failures_are_counted(
    redis_url: str, prefix: str
) -> None:
    async with pipelined(redis_url) as r:
        await r.set(f"{prefix}text", "x")
        r.send_detached("SET", f"{prefix}detached", "1")
        r.send_detached("HSET", f"{prefix}text", "field", "v")  # WRONGTYPE
        with trio.fail_after(10):
            while await r.get(f"{prefix}detached") is None or r.detached_failures == 0:
                await trio.sleep(0.01)
        assert r.detached_failures == 1


async def test_a_command_just_after_the_flusher_was_cancelled_wakes_nothing(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    ref = start_executor(client, trio.lowlevel.current_trio_token())
    r = PipelinedRedis(ref)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(r.run)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()  # the parked flusher is rescheduled with Cancelled
            r.send_detached("PING")  # so this must not reschedule it a second time
    finally:
        await trio.to_thread.run_sync(ref.stop)
        client.close()
