"""How a batch of the node's pipelined commands costs on one Redis and on a Redis
Cluster of three masters (issue 18, storage/pipelined.py on a cluster).

Runs the same batches (BATCH commands: a one-key Lua step storing a message under a
conversation's hash tag, as message_send does, and an HGET) through redis-py's
``Pipeline`` on one server, ``ClusterPipeline`` on three masters, and a plain
``Pipeline`` per master with our own routing by key slot, and reports the
client's CPU per command (the executor thread's cost) and the servers' CPU per
command (INFO cpu), best of ROUNDS.

    python bench/experiments/cluster_pipeline.py [--batches 400] [--batch 90]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage import EmbeddedRedis
from tests.redis_cluster import RedisCluster as TestCluster

STEP = """
local seq = redis.call('HINCRBY', KEYS[1] .. ':meta', 'seq', 1)
redis.call('HSET', KEYS[1] .. ':msgs', seq, ARGV[1])
redis.call('HSET', KEYS[1] .. ':cmid', ARGV[2], seq)
return seq
"""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def server_cpu(clients: list[redis.Redis]) -> float:
    total = 0.0
    for client in clients:
        info = client.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def run(
    client: redis.Redis | RedisCluster, servers: list[redis.Redis], batches: int, size: int
) -> tuple[float, float]:
    sha = client.script_load(STEP)
    payload = b"x" * 200
    start_client, start_server = cpu(), server_cpu(servers)
    n = 0
    for _b in range(batches):
        pipe = client.pipeline(transaction=False)
        for _i in range(size // 2):
            n += 1
            conv = f"bench:{{c:si_u{n % 500}_v{n % 500}}}"
            pipe.execute_command("EVALSHA", sha, 1, conv, payload, f"m{n}")
            pipe.hget(f"bench:{{u:u{n % 500}}}:account", "nickname")
        pipe.execute()
    commands = batches * (size // 2) * 2
    client_us = (cpu() - start_client) / commands * 1e6
    server_us = (server_cpu(servers) - start_server) / commands * 1e6
    return client_us, server_us


def run_routed(
    cluster: RedisCluster, servers: list[redis.Redis], batches: int, size: int
) -> tuple[float, float]:
    """Our own routing: the slot of each command's key (``key_slot``), a plain
    ``Pipeline`` per master, each master's pipeline sent and read in turn."""
    sha = cluster.script_load(STEP)
    by_port = {s.connection_pool.connection_kwargs["port"]: s for s in servers}
    owner: list[redis.Redis] = [None] * 16384  # type: ignore[list-item]
    for start, end, master, *_ in servers[0].cluster("SLOTS"):
        for slot in range(start, end + 1):
            owner[slot] = by_port[int(master[1])]
    payload = b"x" * 200
    start_client, start_server = cpu(), server_cpu(servers)
    n = 0
    for _batch in range(batches):
        pipes: dict[int, redis.client.Pipeline] = {}
        for _i in range(size // 2):
            n += 1
            conv = f"bench:{{c:si_u{n % 500}_v{n % 500}}}"
            user = f"bench:{{u:u{n % 500}}}:account"
            for key, args in (
                (conv, ("EVALSHA", sha, 1, conv, payload, f"m{n}")),
                (user, ("HGET", user, "nickname")),
            ):
                node = owner[key_slot(key.encode())]
                pipe = pipes.get(id(node))
                if pipe is None:
                    pipe = pipes[id(node)] = node.pipeline(transaction=False)
                pipe.execute_command(*args)  # type: ignore[no-untyped-call]
        for pipe in pipes.values():
            pipe.execute()
    commands = batches * (size // 2) * 2
    client_us = (cpu() - start_client) / commands * 1e6
    server_us = (server_cpu(servers) - start_server) / commands * 1e6
    return client_us, server_us


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        single = EmbeddedRedis(Path(tmp) / "single")
        single.start()
        cluster = TestCluster(Path(tmp) / "cluster", masters=3)
        cluster.start()
        try:
            one = redis.Redis.from_url(single.url)
            seeds = [ClusterNode("127.0.0.1", n.port) for n in cluster.nodes]  # type: ignore[no-untyped-call]
            many = RedisCluster(startup_nodes=seeds)
            masters = [n.client() for n in cluster.nodes]
            results: dict[str, list[tuple[float, float]]] = {
                "single": [],
                "cluster": [],
                "routed": [],
            }
            for _ in range(args.rounds):
                results["single"].append(run(one, [one], args.batches, args.batch))
                results["cluster"].append(run(many, masters, args.batches, args.batch))
                results["routed"].append(run_routed(many, masters, args.batches, args.batch))
            best = {k: (min(c for c, _ in v), min(s for _, s in v)) for k, v in results.items()}
            for name, (client_us, server_us) in best.items():
                print(f"{name:8} client {client_us:6.1f} us, servers {server_us:6.1f} us a command")
            c1, s1 = best["single"]
            for name in ("cluster", "routed"):
                c3, s3 = best[name]
                print(f"{name}/single: client {c3 / c1:.2f}x, servers {s3 / s1:.2f}x")
            print(f"({args.batch} commands a batch, {args.batches} batches, best of {args.rounds})")
        finally:
            cluster.stop()
            single.stop()


if __name__ == "__main__":
    main()
