"""group: fan-out to the M online members of one group, from send to the last member.

Set-up (not measured): M accounts and tokens written to Redis
(``bench.seeding``); then, over the wire, the first member creates the group
(``create_group`` with 99 members, join policy ``direct``) and invites the rest
100 at a time (an owner's invite joins at once). Then every member signs in,
one session each, spread over ``--procs`` client processes.

Load: the first ``--senders`` members post ``--messages`` messages in all, for
at most ``--duration`` seconds: at ``--rate`` messages per second in total (open
loop), or each keeping ``--window`` in flight (closed loop).

Checks: every member's session must get every message of the conversation
once and in seq order: the pushes, and for a sender its own messages as the
``message_sent`` reply (that is what the sending device gets), in arrival order
(``bench.delivery``, one stream per member, seqs 1..highest acknowledged).

Reported: p50/p95/p99_ms of the *fan-out* latency, from a message's send time to
its receipt by the last of the other M-1 members (a message some member never
got has no fan-out time and counts as lost); delivery_p*_ms of every single
receipt; msgs_per_s = pushes received per second; server_cpu_us_per_msg = server
CPU per push received, and server_cpu_us_per_send per message posted.
"""

from __future__ import annotations

import argparse
import secrets
from collections import Counter
from itertools import chain
from typing import Any

import trio

from bench.chat_book import GroupJob
from bench.chat_clients import sign_in
from bench.clients import load_client
from bench.delivery import DeliveryLedger
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
from bench.target import Target
from bench.wire import SessionFailed
from bench.workers import WorkerPool
from protocol import messages as m

CREATE_BATCH = 99
INVITE_BATCH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--members", type=int, default=1000, help="online group members")
    parser.add_argument("--senders", type=int, default=4, help="members who post")
    add_load_arguments(parser, messages=200, window=1)


async def _make_group(
    url: str, owner_token: str, group_id: str, members: list[str], timeout: float
) -> None:
    """The first member creates the group with the others in it."""
    owner = await sign_in(url, owner_token, timeout)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(owner.read_forever)
            first, rest = members[1 : 1 + CREATE_BATCH], members[1 + CREATE_BATCH :]

            def create(rid: int) -> m.ClientMessage:
                return m.CreateGroup(
                    rid=rid, group_id=group_id, name="bench", join_policy="direct",
                    member_user_ids=first,
                )  # fmt: skip

            await _expect(owner, create, m.Groups, timeout)
            for start in range(0, len(rest), INVITE_BATCH):
                batch = rest[start : start + INVITE_BATCH]

                def invite(rid: int, batch: list[str] = batch) -> m.ClientMessage:
                    return m.InviteToGroup(rid=rid, group_id=group_id, user_ids=batch)

                reply = await _expect(owner, invite, m.InviteResult, timeout)
                assert isinstance(reply, m.InviteResult)
                if len(reply.joined) != len(batch):
                    raise SessionFailed("setup", f"invite joined {len(reply.joined)}/{len(batch)}")
            nursery.cancel_scope.cancel()
    finally:
        await owner.aclose()


async def _expect(session: Any, build: Any, kind: type[m.Reply], timeout: float) -> m.Reply:
    slot = await session.send_request(build)
    reply = await session.wait_reply(slot, timeout)
    if not isinstance(reply, kind):
        raise SessionFailed("setup", f"expected {kind.__name__}, got {reply!r}")
    assert isinstance(reply, m.Reply)
    return reply


def _jobs(
    args: argparse.Namespace, url: str, group_id: str, members: list[str], tokens: list[str]
) -> list[GroupJob]:
    procs = max(1, min(args.procs, len(members)))
    senders = max(1, min(args.senders, len(members)))
    jobs = []
    for k in range(procs):
        indices = list(range(k, len(members), procs))
        mine = len(range(k, senders, procs))
        share = mine / senders
        jobs.append(
            GroupJob(
                url=url,
                group_id=group_id,
                member_ids=[members[i] for i in indices],
                tokens=[tokens[i] for i in indices],
                sender_count=mine,
                messages=round(args.messages * share),
                duration_s=args.duration,
                window=args.window,
                rate=args.rate * share if args.rate and mine else None,
                size=args.size,
                timeout_s=args.timeout,
                drain_s=args.drain,
            )
        )
    return jobs


def run(args: argparse.Namespace, target: Target) -> Result:
    if not target.redis_url:
        raise RuntimeError("group seeds users in Redis: give --redis-url with --url")
    if args.members < 2:
        raise RuntimeError("group needs --members 2 or more")
    run_id = secrets.token_hex(3)
    members = [f"bench-{run_id}-m{i:05d}" for i in range(args.members)]
    group_id = f"bench-{run_id}-g"
    tokens, setup_s = seed_users(target.redis_url, target.prefix, members)
    trio.run(_make_group, target.url, tokens[0], group_id, members, args.timeout * 4)
    target.wait_until_quiet()
    jobs = _jobs(args, target.url, group_id, members, tokens)
    meter = Meter(target.usage)
    meter.mark("start")
    expected = planned_messages(args)
    client = load_client(args.client)
    with WorkerPool(client.group, jobs, ("go", "all_sent"), client.loop) as pool:
        bar = ProgressBar("group: pushes", expected * (args.members - 1))

        def on_marked(mark: str) -> None:
            if mark == "signed_in":
                meter.mark("go")
                pool.signal("go")
            elif mark == "sent":
                meter.mark("sent")
                pool.signal("all_sent")
            elif mark == "drained":
                meter.mark("drained")

        timeout = (
            args.members / 20 + args.duration + args.drain + args.timeout * 2 + COLLECT_GRACE_S
        )
        results = pool.collect(timeout, bar, on_marked)
        bar.close()
    return _figures(args, results, meter, setup_s)


def _figures(
    args: argparse.Namespace, results: list[dict[str, Any]], meter: Meter, setup_s: float
) -> Result:
    failures = failures_of(results)
    acked = sorted(chain.from_iterable(r["acked_seqs"] for r in results))
    highest = acked[-1] if acked else 0
    online = sum(r["members_online"] for r in results)
    ledger = DeliveryLedger()
    for result in results:
        for member, seqs in result["arrivals"].items():
            ledger.expect(member, highest)
            for seq in seqs:
                ledger.receive(member, seq)
    counts = ledger.counts()
    per_seq: dict[int, tuple[int, float]] = {}
    for result in results:
        for seq, (got, latest) in result["per_seq"].items():
            before = per_seq.get(seq, (0, 0.0))
            per_seq[seq] = (before[0] + int(got), max(before[1], latest))
    others = online - 1
    fan_out = [latest for seq, (got, latest) in per_seq.items() if got >= others]
    incomplete = sum(1 for seq in range(1, highest + 1) if per_seq.get(seq, (0, 0.0))[0] < others)
    pushes = sum(len(r["delivery_s"]) for r in results)
    first_send = [r["first_send_wall"] for r in results]
    receiving_s = span(first_send, (r["last_receipt_wall"] for r in results))
    cpu = meter.cpu_s("go", "drained")
    problems = counts.lost + counts.duplicates + counts.out_of_order
    kinds: Counter[str] = Counter(failures)
    return {
        "scenario": "group",
        "connections": online,
        **counts.as_dict(),
        "failures": sum(failures.values()) + problems,
        "failure_kinds": dict(kinds),
        "msgs_per_s": rate(pushes, receiving_s) if receiving_s else None,
        **latency_summary(fan_out),
        "server_cpu_us_per_msg": per(cpu, pushes),
        "server_rss_mb": mb(meter.rss_kb("drained")),
        "rss_kb_per_connection": None,
        "logins_per_s": None,
        "load": f"open loop, {args.rate:g} msgs/s offered" if args.rate else "closed loop",
        "offered_rate": args.rate,
        "members": args.members,
        "senders": args.senders,
        "window": None if args.rate else args.window,
        "size": args.size,
        "messages_posted": len(acked),
        "sends_per_s": rate(len(acked), receiving_s) if receiving_s else None,
        "pushes": pushes,
        "fan_outs_complete": len(fan_out),
        "fan_outs_incomplete": incomplete,
        **latency_summary(list(chain.from_iterable(r["delivery_s"] for r in results)), "delivery_"),
        **latency_summary(list(chain.from_iterable(r["ack_s"] for r in results)), "ack_"),
        "server_cpu_us_per_send": per(cpu, len(acked)),
        "redis_cpu_us_per_send": per(meter.redis_cpu_s("go", "drained"), len(acked)),
        "server_cpu_s": round(cpu, 2) if cpu is not None else None,
        "client": args.client,
        "client_cpu_s": round(sum(r["client_cpu_s"] for r in results), 2),
        "client_cpu_us_per_msg": per(sum(r["client_cpu_s"] for r in results), pushes),
        "phase_s": round(receiving_s, 2) if receiving_s else None,
        "procs": len(results),
        "setup": "storage: accounts and tokens in Redis; the group made over the wire "
        "(create_group, then invite_to_group 100 at a time)",
        "setup_s": round(setup_s, 2),
        "notes": [
            "p50/p95/p99_ms: fan-out latency, from a message's send time to its receipt by "
            "the last of the other members (wall clock, same machine)",
            "sent/delivered/lost/duplicates/out_of_order: per member, over the seqs "
            "1..highest acknowledged (a sender's own messages arrive as its reply)",
            "msgs_per_s and server_cpu_us_per_msg: per push received by a member",
        ],
    }


SCENARIO = Scenario(
    name="group",
    summary="fan-out to M online members of one group: send to last member's receipt",
    add_arguments=add_arguments,
    run=run,
    needs_redis=True,
)
