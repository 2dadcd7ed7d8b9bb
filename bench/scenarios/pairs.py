"""pairs: N sender/receiver pairs in single chat; throughput, latency, and a check of
every message.

Set-up (not measured): 2N accounts and tokens written to Redis (``bench.seeding``).
Each pair is a sender and a receiver session, both held by the same client
process; the pairs are spread over ``--procs`` processes. All sessions sign in
with their token before the measured phase starts.

Load, for at most ``--duration`` seconds and ``--messages`` messages:

* closed loop (no ``--rate``; maximum throughput): every sender keeps
  ``--window`` messages in flight, sending the next as soon as one is acknowledged;
* open loop (``--rate R``): R messages per second in total are started on
  schedule, round robin over the pairs, whether or not earlier ones are answered.

Every message carries its send time (the scheduled time in an open loop) as
wall-clock seconds in its text. Each receiver checks the conversation's seqs
as they arrive (``bench.delivery``): after the load, a conversation must hold
seqs 1..(highest acknowledged), each received once and in order; lost,
duplicated and out-of-order messages are counted from those receipts.

Reported: msgs_per_s (messages received per second, first send to last
receipt), p50/p95/p99_ms (send to receipt at the receiver), ack_p*_ms (send to
``message_sent``), server_cpu_us_per_msg (server CPU from go to the last
receipt, per acknowledged message) and server_rss_mb.

Pair i's sender and receiver are named so that, alternately, the sender or the
receiver is the conversation's owner (the lower user id), whose user actor
stores and pushes the conversation's messages.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from bench.chat_book import PairsJob
from bench.clients import load_client
from bench.delivery import DeliveryCounts
from bench.progress import ProgressBar
from bench.scenarios.base import Scenario
from bench.scenarios.messaging import (
    COLLECT_GRACE_S,
    Meter,
    add_load_arguments,
    failures_of,
    mb,
    per,
    planned_messages,
    seed_users,
    span,
)
from bench.stats import latency_summary, rate
from bench.summary import Result
from bench.target import Target, Usage
from bench.verify import CHECKS as VERIFY_CHECKS
from bench.verify import Sender, verify
from bench.workers import WorkerPool

DEFAULT_MESSAGES = 200_000
DEFAULT_RETRY_FOR_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=int, default=500, help="sender/receiver pairs")
    add_load_arguments(parser, DEFAULT_MESSAGES, window=1)
    parser.add_argument(
        "--retry-for",
        type=float,
        default=DEFAULT_RETRY_FOR_S,
        metavar="SECONDS",
        help="resend a send answered UNAVAILABLE (or not in --timeout) with the same client "
        f"msg id for up to SECONDS after its first attempt (default {DEFAULT_RETRY_FOR_S:g}; "
        "0: count it as failed at once); resends are reported as retries",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="after the run, pull every conversation and check each acknowledged message "
        "is stored once at its seq (bench/verify.py)",
    )


@dataclass(frozen=True)
class Deployment:
    """Where the sessions of the pairs connect, and how the server side is measured."""

    sender_url: Callable[[int], str]
    receiver_url: Callable[[int], str]
    usage: Callable[[], Usage]
    redis_url: str
    prefix: str
    nodes: int = 1
    usage_each: Callable[[], list[Usage]] | None = None
    """Each node's usage, for a cluster."""
    on_tick: Callable[[float], None] | None = None
    """Called about ten times a second during the load, with the seconds since go (the
    failover of ``cluster --failover-at``)."""
    verify: bool = False
    """Check what the server stored after the run (``bench.verify``), besides ``--verify``."""


def pair_ids(run_id: str, count: int) -> tuple[list[str], list[str]]:
    """Sender and receiver ids; the lower id (the conversation's owner) alternates."""
    senders, receivers = [], []
    for i in range(count):
        a, b = f"bench-{run_id}-{i}-a", f"bench-{run_id}-{i}-b"
        sender, receiver = (a, b) if i % 2 == 0 else (b, a)
        senders.append(sender)
        receivers.append(receiver)
    return senders, receivers


def _jobs(
    args: argparse.Namespace,
    deployment: Deployment,
    ids: tuple[list[str], list[str]],
    tokens: tuple[list[str], list[str]],
) -> list[PairsJob]:
    senders, receivers = ids
    sender_tokens, receiver_tokens = tokens
    procs = max(1, min(args.procs, len(senders)))
    jobs = []
    for k in range(procs):
        indices = list(range(k, len(senders), procs))
        share = len(indices) / len(senders)
        jobs.append(
            PairsJob(
                sender_urls=[deployment.sender_url(i) for i in indices],
                receiver_urls=[deployment.receiver_url(i) for i in indices],
                sender_ids=[senders[i] for i in indices],
                receiver_ids=[receivers[i] for i in indices],
                sender_tokens=[sender_tokens[i] for i in indices],
                receiver_tokens=[receiver_tokens[i] for i in indices],
                messages=max(1, round(args.messages * share)),
                duration_s=args.duration,
                window=args.window,
                rate=args.rate * share if args.rate else None,
                size=args.size,
                timeout_s=args.timeout,
                drain_s=args.drain,
                retry_for_s=args.retry_for,
                record_acks=args.verify or deployment.verify,
            )
        )
    return jobs


def measure(args: argparse.Namespace, deployment: Deployment, name: str) -> Result:
    """Seed, run the pairs' traffic and return the figures (shared with ``cluster``)."""
    run_id = secrets.token_hex(3)
    senders, receivers = pair_ids(run_id, args.pairs)
    tokens, setup_s = seed_users(deployment.redis_url, deployment.prefix, senders + receivers)
    ids = (senders, receivers)
    split = (tokens[: args.pairs], tokens[args.pairs :])
    jobs = _jobs(args, deployment, ids, split)
    meter = Meter(deployment.usage, deployment.usage_each)
    meter.mark("start")
    expected = planned_messages(args)
    client = load_client(args.client)
    with WorkerPool(client.pairs, jobs, ("go",), client.loop) as pool:
        bar = ProgressBar(f"{name}: messages", expected)

        def on_marked(mark: str) -> None:
            if mark == "signed_in":
                meter.mark("go")
                pool.signal("go")
            elif mark in ("sent", "drained"):
                meter.mark(mark)

        def on_tick() -> None:
            go = pool.signalled_at.get("go")
            if deployment.on_tick is not None and go is not None:
                deployment.on_tick(time.monotonic() - go)

        timeout = (
            args.pairs * 2 / 20 + args.duration + args.drain + args.timeout + args.retry_for
            + COLLECT_GRACE_S
        )  # fmt: skip
        results = pool.collect(timeout, bar, on_marked, on_tick)
        bar.close()
    result = figures(args, name, results, meter, setup_s, deployment.nodes)
    if args.verify or deployment.verify:
        print(f"{name}: verifying the stored conversations ...", file=sys.stderr, flush=True)
        verified = verify(
            _senders(deployment, senders, split[0], results),
            args.window == 1,
            args.timeout,
            max(args.retry_for, 1.0),
        )
        result["verify"] = verified
        # What the receivers were not pushed but can pull is not lost (bench.verify).
        result["pushes_missed"] = verified["pushes_missed"]
        result["lost"] = verified["missed_not_stored"]
        result["failures"] = (
            sum(result["failure_kinds"].values()) + result["lost"] + result["duplicates"]
            + result["out_of_order"] + sum(verified[c] for c in VERIFY_CHECKS)
            + sum(verified["verify_failures"].values())
        )  # fmt: skip
    return result


def _senders(
    deployment: Deployment, ids: list[str], tokens: list[str], results: list[dict[str, Any]]
) -> list[Sender]:
    """What ``bench.verify`` needs of every sender that had a message acknowledged."""
    acks: dict[str, dict[str, Any]] = {}
    missed: dict[str, list[int]] = {}
    for result in results:
        acks.update(result["acks"])
        missed.update(result["missed"])
    senders = []
    for i, sender in enumerate(ids):
        if sender not in acks:
            continue
        conversation = acks[sender]["conversation_id"]
        pairs = [(c, s) for c, s in acks[sender]["acks"]]
        senders.append(
            Sender(deployment.sender_url(i), tokens[i], conversation, pairs,
                   missed.get(conversation, []))
        )  # fmt: skip
    return senders


def _counts(results: list[dict[str, Any]]) -> DeliveryCounts:
    totals = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    return DeliveryCounts(**totals)


def figures(
    args: argparse.Namespace,
    name: str,
    results: list[dict[str, Any]],
    meter: Meter,
    setup_s: float,
    nodes: int,
) -> Result:
    counts = _counts(results)
    failures = failures_of(results)
    acked = sum(r["acked"] for r in results)
    sessions = sum(r["sessions"] for r in results)
    latency = list(chain.from_iterable(r["latency_s"] for r in results))
    acks = list(chain.from_iterable(r["ack_s"] for r in results))
    first_send = [r["first_send_wall"] for r in results]
    receiving_s = span(first_send, (r["last_receipt_wall"] for r in results))
    sending_s = span(first_send, (r["last_ack_wall"] for r in results))
    cpu = meter.cpu_s("go", "drained")
    rss_start, rss_go, rss_end = meter.rss_kb("start"), meter.rss_kb("go"), meter.rss_kb("drained")
    problems = counts.lost + counts.duplicates + counts.out_of_order
    retries: Counter[str] = Counter()
    for r in results:
        retries.update(r["retries"])
    failed_from = [r["first_failure_wall"] for r in results if r["first_failure_wall"]]
    failed_until = [r["last_failure_wall"] for r in results if r["last_failure_wall"]]
    client_cpu = sum(r["client_cpu_s"] for r in results)
    result: Result = {
        "scenario": name,
        "connections": sessions,
        **counts.as_dict(),
        "failures": sum(failures.values()) + problems,
        "failure_kinds": dict(failures),
        "msgs_per_s": rate(counts.delivered, receiving_s) if receiving_s else None,
        **latency_summary(latency),
        "server_cpu_us_per_msg": per(cpu, acked),
        "server_rss_mb": mb(rss_end),
        "rss_kb_per_connection": round((rss_go - rss_start) / sessions, 1)
        if rss_go and rss_start and sessions
        else None,
        "logins_per_s": None,
        "load": f"open loop, {args.rate:g} msgs/s offered" if args.rate else "closed loop",
        "offered_rate": args.rate,
        "pairs": args.pairs,
        "window": None if args.rate else args.window,
        "size": args.size,
        "acked": acked,
        "sent_per_s": rate(acked, sending_s) if sending_s else None,
        **latency_summary(acks, "ack_"),
        "redis_cpu_us_per_msg": per(meter.redis_cpu_s("go", "drained"), acked),
        "server_cpu_s": round(cpu, 2) if cpu is not None else None,
        "server_rss_start_mb": mb(rss_start),
        "client": args.client,
        "client_cpu_us_per_msg": per(client_cpu, acked),
        "client_cpu_s": round(client_cpu, 2),
        "redis_replica_cpu_us_per_msg": per(meter.replica_cpu_s("go", "drained"), acked),
        "retries": sum(retries.values()),
        "retry_kinds": dict(retries),
        "recovered": sum(r["recovered"] for r in results),
        "longest_recovery_s": round(max(r["longest_recovery_s"] for r in results), 3),
        "failing_s": round(max(failed_until) - min(failed_from), 3) if failed_from else None,
        "phase_s": round(receiving_s, 2) if receiving_s else None,
        "nodes": nodes,
        "node_cpu_s": meter.cpu_each_s("go", "drained"),
        "node_rss_mb": [mb(u.server_rss_kb) for u in meter.each["drained"]]
        if "drained" in meter.each
        else None,
        "procs": len(results),
        "setup": "storage: accounts and tokens written to Redis (bench.seeding)",
        "setup_s": round(setup_s, 2),
        "notes": [
            "p50/p95/p99_ms: from the message's send time (its scheduled time in an open loop) "
            "to its receipt by the receiver; wall clock, same machine",
            "msgs_per_s: messages received, from the first send to the last receipt; "
            "failures include lost, duplicated and out-of-order messages",
            "server_cpu_us_per_msg: server CPU from go to the last receipt / messages "
            "acknowledged (each is one send and one push)",
            "retries: resends with the same client msg id after UNAVAILABLE or no answer; "
            "recovered: messages acknowledged after a resend; failing_s: first to last "
            "failed attempt; client_cpu_s: the load client's CPU, all its processes",
        ],
    }
    return result


def run(args: argparse.Namespace, target: Target) -> Result:
    if not target.redis_url:
        raise RuntimeError("pairs seeds users in Redis: give --redis-url with --url")
    url = target.url
    deployment = Deployment(lambda _: url, lambda _: url, target.usage, target.redis_url,
                            target.prefix)  # fmt: skip
    return measure(args, deployment, "pairs")


SCENARIO = Scenario(
    name="pairs",
    summary="N sender/receiver pairs in single chat: throughput, latency, loss",
    add_arguments=add_arguments,
    run=run,
    needs_redis=True,
)
