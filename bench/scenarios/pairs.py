"""pairs (not yet available: needs messaging).

Plan, for when single chat lands: ``--pairs N`` sender/receiver pairs, each pair
in its own single-chat conversation, spread over ``--procs`` client processes
(``bench.workers``) on lean sessions (``bench.wire``). Closed loop: every sender
keeps ``--window`` messages in flight; open loop: ``--rate`` messages per second
in total (``bench.loops``). Each message carries the sender's counter and send
time in its client message id / content; each receiver feeds what it receives
to ``bench.delivery.DeliveryLedger``, which counts delivered, lost, duplicated and
out-of-order messages per conversation from what actually arrived. Latency is
send-to-receipt (same clock: sender and receiver of a pair live in one process).
Reports msgs_per_s, p50/p95/p99_ms, server_cpu_us_per_msg and server_rss_mb.
"""

from __future__ import annotations

import argparse

from bench.scenarios.base import NeedsMessaging, Scenario
from bench.summary import Result
from bench.target import Target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=int, default=500, help="sender/receiver pairs")
    parser.add_argument("--window", type=int, default=4, help="closed loop: messages in flight")
    parser.add_argument("--size", type=int, default=100, help="message text length, bytes")


def run(args: argparse.Namespace, target: Target) -> Result:
    raise NeedsMessaging("single chat is not in the server yet; see bench/scenarios/pairs.py")


SCENARIO = Scenario(
    name="pairs",
    summary="N sender/receiver pairs in single chat: throughput, latency, loss (needs messaging)",
    add_arguments=add_arguments,
    run=run,
    available=False,
)
