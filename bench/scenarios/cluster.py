"""cluster: the pairs scenario with every pair split across server nodes on one Redis.

The bench starts a Redis of its own (``storage.EmbeddedRedis``, Unix socket,
AOF as a node would run it) and ``--nodes`` (default 2) ``server.py serve
--redis-url URL --prefix P`` processes on it. Pair i's sender signs in on node
(i div 2) mod n and its receiver on the next node, so every message crosses
nodes: when the sender is the conversation's owner (even i), its node stores
the message and publishes the push to the receiver's node; when the receiver is
the owner (odd i), the sender's node forwards the command to the owner's node,
which stores it, pushes locally and publishes the reply back. Each node owns
about as many conversations as the others.

Reported: the pairs figures with server CPU and RSS summed over the nodes
(``server_cpu_us_per_msg`` is the CPU of all nodes per message), each node's
share, and the shared Redis's CPU per message.
"""

from __future__ import annotations

import argparse
import sys

from bench import target as targets
from bench.scenarios.base import Scenario
from bench.scenarios.pairs import Deployment, measure
from bench.scenarios.pairs import add_arguments as add_pairs_arguments
from bench.summary import Result
from bench.target import Target

PREFIX = "parley-bench:"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pairs_arguments(parser)
    parser.add_argument("--nodes", type=int, default=2, help="server processes on one Redis")


def run(args: argparse.Namespace, _target: Target) -> Result:
    if args.nodes < 2:
        raise targets.TargetError("cluster needs --nodes 2 or more")
    print(f"starting Redis and {args.nodes} nodes ...", file=sys.stderr, flush=True)
    cluster = targets.start_cluster(args.nodes, args.server_settings, PREFIX, args.server_tree)
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
        )
        result = measure(args, deployment, "cluster")
        result["notes"].append(
            f"{n} nodes on one Redis started by the bench; the sender of pair i on node "
            f"(i div 2) mod {n}, its receiver on the next; server CPU and RSS summed over nodes"
        )
        if not cluster.alive():
            result["failures"] += 1
            result["notes"].append("a node exited during the run")
        return result
    except BaseException:
        tail = cluster.log_tail()
        if tail.strip():
            print(f"node logs (last lines):\n{tail}", file=sys.stderr)
        raise
    finally:
        cluster.stop()


SCENARIO = Scenario(
    name="cluster",
    summary="pairs with users split across 2 nodes on one Redis",
    add_arguments=add_arguments,
    run=run,
    own_servers=True,
)
