"""The pipelined client on a real Redis Cluster (storage/cluster.py): one batch spread
over the masters by key slot, each caller with its own result, Lua steps on their
slot's master, MULTI groups within a slot, a slot that moved followed by MOVED, one
being migrated followed by ASK, and a master that failed over reached again through
its promoted replica."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis
import trio
from redis.crc import key_slot

from storage.cluster import ClusterRouter, first_key, is_cluster_url, seed_urls
from storage.durability import DurabilityWait, NotDurable
from storage.pipelined import PipelinedRedis, start_executor
from tests.redis_cluster import RedisCluster

STEP = """
local seq = redis.call('HINCRBY', KEYS[1] .. ':meta', 'seq', 1)
redis.call('HSET', KEYS[1] .. ':msgs', seq, ARGV[1])
return seq
"""


@asynccontextmanager
async def pipelined(
    url: str, wait: DurabilityWait | None = None
) -> AsyncIterator[tuple[PipelinedRedis, ClusterRouter]]:
    router = ClusterRouter(url, lambda node_url: redis.Redis.from_url(node_url, socket_timeout=5))
    # The executor needs only pipeline() and close() of its client.
    ref = start_executor(router, trio.lowlevel.current_trio_token(), [STEP], wait)
    facade = PipelinedRedis(ref)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(facade.run)
            yield facade, router
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(ref.stop)
        router.close()


def masters_used(cluster: RedisCluster, keys: list[str]) -> set[int]:
    return {cluster.master_of_slot(key_slot(k.encode())).port for k in keys}


def test_cluster_urls() -> None:
    assert is_cluster_url("redis+cluster://a:1,b:2")
    assert not is_cluster_url("redis://a:1")
    assert seed_urls("redis+cluster://:pw@a:1, b:2/") == ["redis://:pw@a:1", "redis://:pw@b:2"]
    assert seed_urls("rediss+cluster://a:1") == ["rediss://a:1"]
    for wrong in ("redis+cluster://", "redis+cluster://a:1,,b:2", "redis+cluster://a:1/0"):
        with pytest.raises(ValueError, match="redis\\+cluster"):
            seed_urls(wrong)
    assert seed_urls("rediss+cluster://a:1,b:2?ssl_ca_certs=/ca.pem") == [
        "rediss://a:1?ssl_ca_certs=/ca.pem",
        "rediss://b:2?ssl_ca_certs=/ca.pem",
    ]
    with pytest.raises(ValueError, match="takes no option 'db'") as refused:
        seed_urls("rediss+cluster://:s3cret@a:1?db=2")
    assert "s3cret" not in str(refused.value)
    assert "'rediss+cluster://a:1?db=2'" in str(refused.value)  # shown as in the logs
    with pytest.raises(ValueError, match="use rediss\\+cluster://"):
        seed_urls("redis+cluster://a:1?ssl_ca_certs=/ca.pem")
    assert first_key(("EVALSHA", "sha", 2, "k1", "k2", "arg")) == "k1"
    assert first_key(("EVALSHA", "sha", 0, "arg")) is None
    assert first_key(("HGET", "k", "f")) == "k"
    assert first_key(("SPUBLISH", "chan", b"payload")) == "chan"
    assert first_key(("WAIT", 1, 100)) is None
    assert first_key(("CLUSTER", "INFO")) is None


async def test_one_batch_over_every_master(redis_cluster: RedisCluster, prefix: str) -> None:
    async with pipelined(redis_cluster.url) as (r, _):
        keys = [f"{prefix}{{u:user{n}}}:account" for n in range(300)]
        assert masters_used(redis_cluster, keys) == {n.port for n in redis_cluster.nodes}
        results: dict[str, bytes] = {}

        async def one(key: str) -> None:
            await r.set(key, key)
            value = await r.get(key)
            assert isinstance(value, bytes)
            results[key] = value

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for key in keys:
                    nursery.start_soon(one, key)
        assert results == {k: k.encode() for k in keys}
        assert r.batches <= 60, "the commands were not batched"
        # A refused command fails alone, on whichever master.
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await r.hget(keys[0], "field")


async def test_lua_steps_and_groups_on_their_slot(redis_cluster: RedisCluster, prefix: str) -> None:
    digest = hashlib.sha1(STEP.encode()).hexdigest()
    async with pipelined(redis_cluster.url) as (r, _):
        conversations = [f"{prefix}{{c:si_a{n}_b{n}}}" for n in range(30)]
        seqs = await trio_gather([r.evalsha(digest, 1, c, "hello") for c in conversations])
        assert seqs == [1] * 30
        again = await r.evalsha(digest, 1, conversations[0], "again")
        assert again == 2
        # A MULTI group stays on its slot's master.
        group = r.pipeline(transaction=True)
        group.hset(f"{conversations[0]}:meta", "x", "1")
        group.hget(f"{conversations[0]}:meta", "seq")
        assert await group.execute() == [1, b"2"]
        # A plain group may span slots.
        spread = r.pipeline()
        for c in conversations[:5]:
            spread.hget(f"{c}:meta", "seq")
        assert await spread.execute() == [b"2"] + [b"1"] * 4


async def trio_gather(awaitables: list[object]) -> list[object]:
    results: list[object] = [None] * len(awaitables)

    async def one(i: int, awaitable: object) -> None:
        results[i] = await awaitable  # type: ignore[misc]

    async with trio.open_nursery() as nursery:
        for i, awaitable in enumerate(awaitables):
            nursery.start_soon(one, i, awaitable)
    return results


async def test_a_moved_slot_is_followed(redis_cluster: RedisCluster, prefix: str) -> None:
    async with pipelined(redis_cluster.url) as (r, router):
        key = f"{prefix}{{u:moving}}:account"
        slot = key_slot(key.encode())
        await r.set(f"{prefix}{{u:warm-up}}", 1)  # the router has read the slot map
        source = redis_cluster.master_of_slot(slot)
        target = next(n for n in redis_cluster.nodes if n.port != source.port)
        target_id = target.client().cluster("MYID")
        # An empty slot is given to another master at once: every node is told.
        for node in [target, source, *redis_cluster.nodes]:
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)  # type: ignore[no-untyped-call]
        redis_cluster.await_healthy()
        before = router.refreshes
        await r.set(key, "moved")
        assert await r.get(key) == b"moved"
        assert router.refreshes == before + 1  # MOVED made it read the map again
        direct = target.client()
        assert direct.get(key) == b"moved"
        direct.close()


async def test_a_slot_being_migrated_is_followed_by_ask(
    redis_cluster: RedisCluster, prefix: str
) -> None:
    """While a slot migrates, its keys already moved (and new ones) are answered
    ``ASK`` by the old master: the router sends them to the new one after ``ASKING``,
    without reading the slot map, except a Lua step, which fails with TRYAGAIN; once
    the migration ends, ``MOVED`` takes over."""
    async with pipelined(redis_cluster.url) as (r, router):
        moved, staying, new = (f"{prefix}{{u:asking}}:{name}" for name in ("a", "b", "c"))
        slot = key_slot(moved.encode())
        await r.set(moved, "moved early")
        await r.set(staying, "not moved yet")
        source = redis_cluster.master_of_slot(slot)
        target = next(n for n in redis_cluster.nodes if n.port != source.port)
        on_source, on_target = source.client(), target.client()
        source_id, target_id = on_source.cluster("MYID"), on_target.cluster("MYID")
        try:
            on_target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)  # type: ignore[no-untyped-call]
            on_source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)  # type: ignore[no-untyped-call]
            on_source.execute_command(  # type: ignore[no-untyped-call]
                "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", moved
            )
            before = router.refreshes
            # One batch: a key still on the old master, one moved, one new.
            async with trio.open_nursery() as nursery:
                results: dict[str, object] = {}

                async def get(key: str) -> None:
                    results[key] = await r.get(key)

                async def set_new() -> None:
                    results[new] = await r.set(new, "written while migrating")

                nursery.start_soon(get, staying)
                nursery.start_soon(get, moved)
                nursery.start_soon(set_new)
            assert results == {staying: b"not moved yet", moved: b"moved early", new: True}
            assert router.refreshes == before  # ASK changes no slot map
            # A Lua step on the moving slot is refused, not sent on: it names only
            # its base, so Redis cannot tell it the entity is half moved.
            digest = hashlib.sha1(STEP.encode()).hexdigest()
            with pytest.raises(redis.exceptions.TryAgainError, match="being migrated"):
                await r.evalsha(digest, 1, f"{prefix}{{u:asking}}", "refused")
            assert on_target.execute_command("ASKING") and on_target.get(new) is not None  # type: ignore[no-untyped-call]
            count = on_source.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)  # type: ignore[no-untyped-call]
            assert count == 1  # only the key not moved yet
            on_source.execute_command(  # type: ignore[no-untyped-call]
                "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", staying
            )
        finally:
            for node in [target, source, *redis_cluster.nodes]:
                with node.client() as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            on_source.close()
            on_target.close()
        redis_cluster.await_healthy()
        assert await r.get(staying) == b"not moved yet"  # MOVED, then the new master
        assert router.refreshes == before + 1


async def test_a_failed_over_master_is_reached_again(
    failover_cluster: RedisCluster, prefix: str
) -> None:
    async with pipelined(failover_cluster.url) as (r, _):
        key = f"{prefix}{{c:si_x_y}}:meta"
        await r.hset(key, "seq", 7)
        master = failover_cluster.master_of_slot(key_slot(key.encode()))
        direct = master.client()
        assert direct.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
        direct.close()
        failover_cluster.kill(master)
        with pytest.raises(redis.ConnectionError):
            await r.hget(key, "seq")
        await trio.to_thread.run_sync(lambda: failover_cluster.await_failover(master))
        with trio.fail_after(30):
            while True:
                try:
                    value = await r.hincrby(key, "seq", 1)
                    break
                except redis.RedisError:
                    await trio.sleep(0.2)
        assert value == 8


def waits_by_master(cluster: RedisCluster) -> dict[int, int]:
    """``WAIT`` calls so far, by master port."""
    counts = {}
    for node in cluster.nodes:
        client = node.client()
        stats = client.info("commandstats")
        counts[node.port] = int(stats.get("cmdstat_wait", {}).get("calls", 0))
        client.close()
    return counts


async def test_a_durability_wait_ends_the_batch_on_every_master_written_to(
    failover_cluster: RedisCluster, prefix: str
) -> None:
    masters = {failover_cluster.master_of_slot(s).port for s in (0, 8000, 16383)}
    async with pipelined(failover_cluster.url, DurabilityWait(0, 1, 2.0)) as (r, _):
        await r.ping()  # the router has read the slot map
        before = waits_by_master(failover_cluster)
        keys = [f"{prefix}{{u:user{n}}}:account" for n in range(30)]
        assert masters_used(failover_cluster, keys) == masters
        spread = r.pipeline()
        for key in keys:
            spread.set(key, "v")
        assert await spread.execute() == [True] * 30
        after = waits_by_master(failover_cluster)
        assert {p for p in masters if after[p] == before[p] + 1} == masters
        # One key: the next batch waits on its master only.
        one = keys[0]
        await r.set(one, "again")
        last = waits_by_master(failover_cluster)
        owner = failover_cluster.master_of_slot(key_slot(one.encode())).port
        assert {p: last[p] - after[p] for p in masters} == {
            p: 1 if p == owner else 0 for p in masters
        }
    # Asking for more replicas than there are: every write fails NotDurable.
    async with pipelined(failover_cluster.url, DurabilityWait(0, 2, 0.2)) as (r, _):
        with pytest.raises(NotDurable, match="1 of 2 replicas"):
            await r.set(keys[1], "unconfirmed")


async def test_a_master_without_its_replica_fails_only_its_own_commands(
    failover_cluster: RedisCluster, prefix: str
) -> None:
    keys = [f"{prefix}{{u:user{n}}}:account" for n in range(30)]
    lonely = failover_cluster.master_of_slot(key_slot(keys[0].encode()))
    elsewhere = next(
        k for k in keys if failover_cluster.master_of_slot(key_slot(k.encode())) != lonely
    )
    outcomes: dict[str, object] = {}
    async with pipelined(failover_cluster.url, DurabilityWait(0, 1, 0.5)) as (r, _):
        await r.ping()  # the router has read the slot map (a keyless command: any master)
        for node in failover_cluster.live_nodes():
            with node.client() as client:
                replication = client.info("replication")
            if replication["role"] == "slave" and int(replication["master_port"]) == lonely.port:
                failover_cluster.kill(node)

        async def write(key: str) -> None:
            try:
                outcomes[key] = await r.set(key, "v")
            except NotDurable as exc:
                outcomes[key] = exc

        batches = r.batches
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write, keys[0])
            nursery.start_soon(write, elsewhere)
        assert r.batches == batches + 1  # both in one batch
    assert isinstance(outcomes[keys[0]], NotDurable)
    assert outcomes[elsewhere] is True
