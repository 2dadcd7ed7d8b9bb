"""What the messaging scenarios (pairs, group, cluster) share: set-up in Redis,
server usage at marked points, and merging what the client processes report."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bench import seeding
from bench.clients import add_client_argument
from bench.target import Usage
from storage import Storage

PASSWORD = "bench-password-1"
DRAIN_S = 30.0
"""Longest wait, after the last send, for messages still on their way."""
COLLECT_GRACE_S = 120.0


def add_load_arguments(parser: argparse.ArgumentParser, messages: int, window: int) -> None:
    parser.add_argument(
        "--messages",
        type=int,
        default=messages,
        help=f"most messages sent in all (default {messages:,}); the phase also ends "
        "after --duration seconds (open loop: --rate x --duration messages)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=window,
        help=f"closed loop: messages in flight per sender (default {window})",
    )
    parser.add_argument("--size", type=int, default=100, help="message text length, characters")
    add_client_argument(parser)


def planned_messages(args: argparse.Namespace) -> int:
    """Messages the load phase sends at most: ``--messages``, and in an open loop no more
    than ``--rate`` x ``--duration``."""
    if args.rate:
        return int(min(args.messages, args.rate * args.duration))
    return int(args.messages)


def seed_users(redis_url: str, prefix: str, user_ids: list[str]) -> tuple[list[str], float]:
    """Accounts and a token per user, written to Redis; returns (tokens, seconds)."""
    started = time.monotonic()
    password_hash = seeding.default_password_hash(PASSWORD)

    async def seed(storage: Storage) -> list[str]:
        await seeding.create_accounts(storage, user_ids, password_hash)
        return await seeding.mint_tokens(storage, user_ids)

    tokens = seeding.with_storage(redis_url, prefix, seed)
    return tokens, time.monotonic() - started


@dataclass
class Meter:
    """Server usage (one process, or several summed) at named points of a run."""

    read: Callable[[], Usage]
    read_each: Callable[[], list[Usage]] | None = None
    """Usage of each server process (cluster nodes), when there are several."""
    points: dict[str, Usage] = field(default_factory=dict)
    each: dict[str, list[Usage]] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.points[name] = self.read()
        if self.read_each is not None:
            self.each[name] = self.read_each()

    def cpu_each_s(self, start: str, end: str) -> list[float | None] | None:
        """Each process's CPU seconds between two points (None: one process only)."""
        if start not in self.each or end not in self.each:
            return None
        return [
            None if a.server_cpu_s is None or b.server_cpu_s is None
            else round(b.server_cpu_s - a.server_cpu_s, 2)
            for a, b in zip(self.each[start], self.each[end], strict=True)
        ]  # fmt: skip

    def cpu_s(self, start: str, end: str) -> float | None:
        if start not in self.points or end not in self.points:
            return None
        a, b = self.points[start].server_cpu_s, self.points[end].server_cpu_s
        return None if a is None or b is None else b - a

    def redis_cpu_s(self, start: str, end: str) -> float | None:
        if start not in self.points or end not in self.points:
            return None
        a, b = self.points[start].redis_cpu_s, self.points[end].redis_cpu_s
        return None if a is None or b is None else b - a

    def replica_cpu_s(self, start: str, end: str) -> float | None:
        if start not in self.points or end not in self.points:
            return None
        a, b = self.points[start].replica_cpu_s, self.points[end].replica_cpu_s
        return None if a is None or b is None else b - a

    def rss_kb(self, name: str) -> int | None:
        usage = self.points.get(name)
        return usage.server_rss_kb if usage else None


def per(total_s: float | None, count: int, scale: float = 1e6) -> float | None:
    """``total_s`` per item (microseconds by default), or None."""
    return round(total_s * scale / count, 1) if total_s is not None and count else None


def failures_of(results: Iterable[dict[str, Any]]) -> Counter[str]:
    found: Counter[str] = Counter()
    for result in results:
        found.update(result["failures"])
    return found


def span(starts: Iterable[float | None], ends: Iterable[float | None]) -> float | None:
    """Seconds from the earliest start to the latest end, or None."""
    first = [s for s in starts if s is not None]
    last = [e for e in ends if e is not None]
    if not first or not last:
        return None
    return max(last) - min(first)


def mb(kb: int | None) -> float | None:
    return round(kb / 1024, 1) if kb else None
