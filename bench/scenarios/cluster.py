"""cluster: the pairs scenario with every pair split across server nodes on one store.

The bench starts the store (``--store``, ``bench.stores``): one Redis of its own
(``redis``, the default: ``storage.EmbeddedRedis``, Unix socket, AOF as a node
would run it) or a Redis Cluster (``cluster``: ``--masters`` masters, default 3,
and ``--replicas`` replicas each, from the system's redis-server 7 on loopback
ports), and ``--nodes`` (default 2) ``server.py serve --redis-url URL --prefix P``
processes on it (each ``--workers`` processes). Pair i's sender signs in on node
(i div 2) mod n and its receiver on the next node, so every message crosses
nodes: when the sender is the conversation's owner (even i), its node stores
the message and publishes the push to the receiver's node; when the receiver is
the owner (odd i), the sender's node forwards the command to the owner's node,
which stores it, pushes locally and publishes the reply back. Each node owns
about as many conversations as the others.

``--failover-at S`` (a cluster with ``--replicas 1`` or more): S seconds into the
load the master holding the most keys is SIGKILLed and its replica promoted
(``bench.failover``; with ``--store redis``, the Redis is SIGKILLed and started
again on its AOF by its supervisor); the clients resend what was answered ``UNAVAILABLE`` (or not
at all) with the same client msg id (``--retry-for``), and after the run every
conversation is read back and checked (``bench.verify``): no acknowledged message
lost, renumbered, duplicated or reordered.

Reported: the pairs figures with server CPU and RSS summed over the nodes
(``server_cpu_us_per_msg`` is the CPU of all nodes per message), each node's
share, the store's CPU per message (``redis_cpu_us_per_msg``: the single Redis or
all masters together; ``redis_replica_cpu_us_per_msg``: the replicas), the load
client's, and with a failover what was killed, when, and what the clients saw.
"""

from __future__ import annotations

import argparse
import sys

from bench import target as targets
from bench.failover import Failover
from bench.scenarios.base import Scenario
from bench.scenarios.pairs import Deployment, measure
from bench.scenarios.pairs import add_arguments as add_pairs_arguments
from bench.stores import APPENDFSYNC, STORES
from bench.summary import Result
from bench.target import Target

PREFIX = "parley-bench:"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pairs_arguments(parser)
    parser.add_argument("--nodes", type=int, default=2, help="server nodes on the store")
    parser.add_argument(
        "--store",
        choices=STORES,
        default="redis",
        help="what the nodes share: one Redis (default) or a Redis Cluster",
    )
    parser.add_argument(
        "--masters", type=int, default=3, help="--store cluster: masters (default 3)"
    )
    parser.add_argument(
        "--appendfsync",
        choices=APPENDFSYNC,
        default="everysec",
        help="the store's appendfsync (default everysec). With everysec, while a background "
        "fsync runs (a busy disk) Redis holds its AOF writes back for up to 2 s and keeps "
        "answering, and a kill loses those writes; always fsyncs before each answer",
    )
    parser.add_argument(
        "--replicas", type=int, default=0, help="--store cluster: replicas per master"
    )
    parser.add_argument(
        "--failover-at",
        type=float,
        metavar="SECONDS",
        help="this long into the load, SIGKILL the busiest master (--store cluster: needs "
        "--replicas; one is promoted) or the Redis (--store redis: started again by its "
        "supervisor); implies --verify",
    )


def run(args: argparse.Namespace, _target: Target) -> Result:
    if args.nodes < 2:
        raise targets.TargetError("cluster needs --nodes 2 or more")
    if args.failover_at is not None and args.store == "cluster" and args.replicas < 1:
        raise targets.TargetError("--failover-at on a cluster needs --replicas 1 or more")
    what = f"a Redis Cluster of {args.masters} masters" if args.store == "cluster" else "Redis"
    print(f"starting {what} and {args.nodes} nodes ...", file=sys.stderr, flush=True)
    cluster = targets.start_cluster(
        args.nodes, args.server_settings, PREFIX, args.server_tree, args.store, args.masters,
        args.replicas, args.workers, args.appendfsync,
    )  # fmt: skip
    failover = None
    if args.failover_at is not None:
        failover = Failover(cluster.store, args.failover_at)
    try:
        urls = [node.url for node in cluster.nodes]
        print(f"nodes: {', '.join(urls)}; redis {cluster.redis_url}", file=sys.stderr)
        n = len(urls)
        deployment = Deployment(
            sender_url=lambda i: urls[(i // 2) % n],
            receiver_url=lambda i: urls[(i // 2 + 1) % n],
            usage=cluster.usage,
            redis_url=cluster.redis_url,
            prefix=cluster.prefix,
            nodes=n,
            usage_each=lambda: [node.usage() for node in cluster.nodes],
            on_tick=failover.tick if failover else None,
            verify=failover is not None,
        )
        result = measure(args, deployment, "cluster")
        result["store"] = args.store
        result["server_settings"] = list(args.server_settings)
        result["store_description"] = cluster.store.description
        result["notes"].append(
            f"{n} nodes on {cluster.store.description} started by the bench; the sender of "
            f"pair i on node (i div 2) mod {n}, its receiver on the next; server CPU and RSS "
            "summed over nodes; redis_cpu_us_per_msg: the single Redis or every master"
        )
        if failover is not None:
            report = result["failover"] = failover.report()
            if not report["happened"]:
                result["failures"] += 1
                result["notes"].append(f"no failover: {report['error']}")
            unwritten = report["killed_unwritten_aof_bytes"]
            if args.appendfsync == "everysec" and unwritten:
                result["notes"].append(
                    f"right before the kill, the Redis held {unwritten} bytes of applied "
                    "writes not yet in its AOF file: with appendfsync everysec, while a "
                    "background fsync runs (a busy disk) it holds them back for up to 2 s "
                    "and keeps answering, and the kill loses them (--appendfsync always "
                    "fsyncs before it answers)"
                )
        if not cluster.alive():
            result["failures"] += 1
            result["notes"].append("a node exited during the run")
        if result["failures"]:
            _print_log_tail(cluster)
        return result
    except BaseException:
        _print_log_tail(cluster)
        raise
    finally:
        cluster.stop()


def _print_log_tail(cluster: targets.Cluster) -> None:
    tail = cluster.log_tail()
    if tail.strip():
        print(f"node logs (last lines):\n{tail}", file=sys.stderr)


SCENARIO = Scenario(
    name="cluster",
    summary="pairs with users split across 2 nodes on one Redis or a Redis Cluster",
    add_arguments=add_arguments,
    run=run,
    own_servers=True,
)
