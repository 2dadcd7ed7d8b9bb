"""cluster (not yet available: needs messaging).

Plan, for when single chat lands: start ``--nodes`` (default 2) server
processes on one Redis (the first node's embedded Redis, passed to the others
with ``--redis-url``; ``bench.target.start_server`` takes the settings), put
the sender of every pair on one node and its receiver on another, and run the
pairs scenario's traffic and checks across them. Reports the pairs figures plus
each node's CPU and RSS, so the cost of the Redis pub/sub hop shows.
"""

from __future__ import annotations

import argparse

from bench.scenarios.base import NeedsMessaging, Scenario
from bench.summary import Result
from bench.target import Target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=int, default=500, help="sender/receiver pairs")
    parser.add_argument("--nodes", type=int, default=2, help="server processes on one Redis")


def run(args: argparse.Namespace, target: Target) -> Result:
    raise NeedsMessaging("single chat is not in the server yet; see bench/scenarios/cluster.py")


SCENARIO = Scenario(
    name="cluster",
    summary="pairs with users split across 2 nodes on one Redis (needs messaging)",
    add_arguments=add_arguments,
    run=run,
    available=False,
)
