"""sync: incremental friend sync after a few changes in a large list, against a full sync.

Set-up (not measured): an owner with ``--friends`` friends, made in Redis by the
same Lua steps an accepted friend application runs (``bench.seeding``), and a
token for the owner and for one newcomer. Then, over the wire:

1. the owner syncs from an empty copy (what a new device does) and keeps the copy;
2. the owner makes ``--changes`` changes through the server: remarks on
   friends, one friend deleted, and one added (the newcomer accepts the owner's
   application on a second session);
3. for at least ``--repeat`` times and 2 s: an incremental sync from the kept copy;
   then the same for a sync from an empty copy (the full list).

Reported: the size of each reply frame (msgpack payload bytes as received) and
round-trip latency (median and p95 of the repetitions, client decoding
included), and the server CPU per sync. Every incremental answer is applied to
the kept copy and must equal the full list; a mismatch counts as a failure.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import trio

from bench import seeding
from bench.progress import ProgressBar
from bench.scenarios.base import Scenario
from bench.stats import latency_summary
from bench.summary import Result
from bench.target import Target, TargetError
from bench.wire import LeanSession, SessionFailed
from client.friends import FriendListCopy
from protocol import messages as m
from storage import Storage

PASSWORD = "bench-password-1"
CPU_WINDOW_S = 2.0
"""Syncs of each kind go on for at least this long, so the server's CPU time (counted
in 10 ms clock ticks) is measured over many of them."""
MAX_SYNCS = 20_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--friends", type=int, default=5000, help="friends of the owner")
    parser.add_argument(
        "--changes", type=int, default=10, help="changes between syncs (remarks, a delete, an add)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=21,
        help=f"least syncs of each kind to time (they go on for {CPU_WINDOW_S:.0f} s at least)",
    )


@dataclass(frozen=True)
class Plan:
    owner: str
    friends: list[str]
    newcomer: str
    remarks: int
    deletes: int
    adds: int


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)
    frame_bytes: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    cpu_s: float | None = None


def _plan(friends: int, changes: int) -> Plan:
    run_id = secrets.token_hex(3)
    adds = 1 if changes >= 3 else 0
    deletes = 1 if changes >= 2 else 0
    remarks = max(0, min(changes - adds - deletes, friends - deletes))
    return Plan(
        owner=f"bench-{run_id}-owner",
        friends=[f"bench-{run_id}-f{i}" for i in range(friends)],
        newcomer=f"bench-{run_id}-new",
        remarks=remarks,
        deletes=deletes,
        adds=adds,
    )


def _seed(target: Target, plan: Plan) -> tuple[list[str], float]:
    """Accounts, friendships and two tokens; returns (tokens, seconds)."""
    if not target.redis_url:
        raise TargetError("sync seeds friendships in Redis: give --redis-url with --url")
    started = time.monotonic()
    password_hash = seeding.default_password_hash(PASSWORD)

    async def seed(storage: Storage) -> list[str]:
        users = [plan.owner, plan.newcomer, *plan.friends]
        await seeding.create_accounts(storage, users, password_hash)
        bar = ProgressBar("seeding friends", len(plan.friends))
        done = 0

        async def befriend(friend: str) -> None:
            nonlocal done
            await seeding.befriend(storage, plan.owner, friend)
            done += 1
            bar.update(done)

        await seeding.each(plan.friends, befriend)
        bar.close()
        return await seeding.mint_tokens(storage, [plan.owner, plan.newcomer])

    tokens = seeding.with_storage(target.redis_url, target.prefix, seed)
    return tokens, time.monotonic() - started


async def _signed_in(url: str, token: str, timeout: float) -> LeanSession:
    session = await LeanSession.open(url, timeout)
    session.keep_pushes = False
    await session.call(m.TokenLogin(rid=session.next_rid(), token=token), m.LoginOk, timeout)
    return session


async def _make_changes(
    owner: LeanSession, newcomer: LeanSession, plan: Plan, timeout: float
) -> None:
    for i in range(plan.remarks):
        request = m.UpdateFriend(
            rid=owner.next_rid(), friend_id=plan.friends[i], remark=f"remark {i}"
        )
        await owner.call(request, m.Friends, timeout)
    for friend in plan.friends[len(plan.friends) - plan.deletes :]:
        await owner.call(m.DeleteFriend(rid=owner.next_rid(), friend_id=friend), m.Ok, timeout)
    if plan.adds:
        apply = m.ApplyFriend(rid=owner.next_rid(), to_user_id=plan.newcomer)
        await owner.call(apply, m.Ok, timeout)
        accept = m.RespondFriendApplication(
            rid=newcomer.next_rid(), from_user_id=plan.owner, accept=True
        )
        await newcomer.call(accept, m.Ok, timeout)


async def _time_syncs(
    owner: LeanSession, target: Target, version_id: str, version: int, repeat: int, timeout: float
) -> tuple[Timings, list[m.FriendSync]]:
    timings = Timings()
    answers: list[m.FriendSync] = []
    before = target.usage().server_cpu_s
    started = time.monotonic()
    while len(answers) < repeat or (
        time.monotonic() - started < CPU_WINDOW_S and len(answers) < MAX_SYNCS
    ):
        request = m.SyncFriends(rid=owner.next_rid(), version_id=version_id, version=version)
        sent = time.monotonic()
        received = await owner.request(request, timeout)
        timings.seconds.append(time.monotonic() - sent)
        answer = received.message
        if not isinstance(answer, m.FriendSync):
            raise SessionFailed("unexpected", f"sync answered with {answer!r}")
        timings.frame_bytes.append(received.frame_bytes)
        timings.kinds[answer.kind] += 1
        answers.append(answer)
    after = target.usage().server_cpu_s
    timings.cpu_s = None if before is None or after is None else after - before
    return timings, answers


def _copy_of(copy: FriendListCopy) -> FriendListCopy:
    twin = FriendListCopy()
    twin.version_id, twin.version, twin.friends = copy.version_id, copy.version, dict(copy.friends)
    return twin


async def _measure(
    args: argparse.Namespace, target: Target, plan: Plan, tokens: list[str]
) -> tuple[Timings, Timings, Counter[str], m.FriendSync | None]:
    failures: Counter[str] = Counter()
    timeout = args.timeout
    owner = await _signed_in(target.url, tokens[0], timeout)
    newcomer = await _signed_in(target.url, tokens[1], timeout)
    try:
        first = await owner.call(m.SyncFriends(rid=owner.next_rid()), m.FriendSync, timeout)
        copy = FriendListCopy()
        copy.apply(first)
        if len(copy.friends) != len(plan.friends):
            failures["first sync: wrong length"] += 1
        await _make_changes(owner, newcomer, plan, timeout)
        incremental, increments = await _time_syncs(
            owner, target, copy.version_id, copy.version, args.repeat, timeout
        )
        full, fulls = await _time_syncs(owner, target, "", 0, args.repeat, timeout)
        truth = FriendListCopy()
        truth.apply(fulls[-1])
        for answer in increments:
            updated = _copy_of(copy)
            updated.apply(answer)
            if updated.friends != truth.friends:
                failures["incremental result differs from the full list"] += 1
        expected = len(plan.friends) - plan.deletes + plan.adds
        if len(truth.friends) != expected:
            failures["full list has the wrong length"] += 1
        return incremental, full, failures, increments[-1] if increments else None
    finally:
        await owner.aclose()
        await newcomer.aclose()


def _cpu_per_sync(timings: Timings) -> float | None:
    if timings.cpu_s is None or not timings.seconds:
        return None
    return round(timings.cpu_s * 1e6 / len(timings.seconds), 1)


def _median(values: list[int]) -> int | None:
    return int(statistics.median(values)) if values else None


def run(args: argparse.Namespace, target: Target) -> Result:
    plan = _plan(args.friends, args.changes)
    tokens, seed_s = _seed(target, plan)
    failures: Counter[str] = Counter()
    try:
        incremental, full, failures, last = trio.run(_measure, args, target, plan, tokens)
    except SessionFailed as exc:
        failures[f"request: {exc}"] += 1
        incremental, full, last = Timings(), Timings(), None
    incremental_bytes = _median(incremental.frame_bytes)
    full_bytes = _median(full.frame_bytes)
    usage = target.usage()
    return {
        "scenario": "sync",
        "connections": 2,
        "failures": sum(failures.values()),
        "failure_kinds": dict(failures),
        "friends": args.friends,
        "changes": {"remarks": plan.remarks, "deletes": plan.deletes, "adds": plan.adds},
        "incremental_answer": {
            "inserts": len(last.inserts),
            "updates": len(last.updates),
            "deletes": len(last.deletes),
        }
        if last
        else None,
        "incremental_bytes": incremental_bytes,
        "full_bytes": full_bytes,
        "full_to_incremental_ratio": round(full_bytes / incremental_bytes, 1)
        if full_bytes and incremental_bytes
        else None,
        **latency_summary(incremental.seconds, "incremental_"),
        **latency_summary(full.seconds, "full_"),
        "incremental_kinds": dict(incremental.kinds),
        "full_kinds": dict(full.kinds),
        "incremental_syncs": len(incremental.seconds),
        "full_syncs": len(full.seconds),
        "server_cpu_us_per_incremental": _cpu_per_sync(incremental),
        "server_cpu_us_per_full": _cpu_per_sync(full),
        "server_rss_mb": round(usage.server_rss_kb / 1024, 1) if usage.server_rss_kb else None,
        "setup": "storage: friendships made in Redis by the friend_apply/friend_respond Lua steps",
        "setup_s": round(seed_s, 2),
        "notes": [
            "bytes: msgpack payload of the friend_sync reply frame as received (median)",
            "latency: request sent to reply decoded, one request at a time on one session",
        ],
    }


SCENARIO = Scenario(
    name="sync",
    summary="incremental friend sync after a few changes in a large list, against a full sync",
    add_arguments=add_arguments,
    run=run,
    needs_redis=True,
)
