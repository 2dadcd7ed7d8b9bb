"""group (not yet available: needs messaging).

Plan, for when group chat lands: one group of ``--members M`` online members
(default 1,000; accounts, tokens and membership seeded as in ``bench.seeding``),
held by lean sessions over ``--procs`` client processes. A few senders post at
``--rate`` (open loop) or as fast as acknowledgements allow (closed loop). Every
member feeds what it receives to ``bench.delivery.DeliveryLedger``; the fan-out
latency of a message is from its send to the *last* member's receipt, so the
workers report per-message receipt times and the bench process takes the
maximum per message before the percentiles. Reports delivered, lost,
duplicates, out_of_order, msgs_per_s (deliveries), p50/p95/p99_ms of fan-out
latency and server_cpu_us_per_msg.
"""

from __future__ import annotations

import argparse

from bench.scenarios.base import NeedsMessaging, Scenario
from bench.summary import Result
from bench.target import Target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--members", type=int, default=1000, help="online group members")
    parser.add_argument("--senders", type=int, default=4, help="members who post")
    parser.add_argument("--messages", type=int, default=200, help="messages posted in all")


def run(args: argparse.Namespace, target: Target) -> Result:
    raise NeedsMessaging("group chat is not in the server yet; see bench/scenarios/group.py")


SCENARIO = Scenario(
    name="group",
    summary="fan-out to M online members of one group (needs messaging)",
    add_arguments=add_arguments,
    run=run,
    available=False,
)
