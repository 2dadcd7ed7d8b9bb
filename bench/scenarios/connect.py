"""connect: sign K clients in as fast as the server allows, hold them idle with
heartbeats, and report the login rate, failures and memory per connection.

Phases:

1. Set-up (not measured). With access to Redis (the server started here, or
   ``--redis-url``): accounts are created in Redis with one real argon2id hash
   (default parameters) reused for all, and a token per user is signed with the
   cluster's key and recorded (``bench.seeding``). Without it: every user
   registers and signs in with a password over the wire to get a token.
2. Token logins (measured; the target figure): K sessions connect and sign in
   with ``token_login`` from ``--procs`` client processes (closed loop with
   ``--concurrency`` in flight, or open loop at ``--rate``), then stay open for
   ``--duration`` seconds sending a ``ping`` every ``--heartbeat`` seconds.
   Server RSS is read before the first connection and at the end of the hold.
3. Password logins (measured): ``--password-logins`` other users sign in with
   their password, which the server checks with argon2id at its default cost,
   so this rate is bound by hashing CPU.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any

from bench import seeding
from bench.progress import ProgressBar
from bench.scenarios.base import Scenario
from bench.scenarios.connect_clients import SignInJob, sign_in_users
from bench.stats import latency_summary, rate
from bench.summary import Result
from bench.target import Target, Usage
from bench.workers import WorkerPool, split
from storage import Storage

PASSWORD = "bench-password-1"
HOLD_GRACE_S = 120.0
WATCH_INTERVAL_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k", "--clients", type=int, default=5000, help="sessions signed in with tokens"
    )
    parser.add_argument(
        "--password-logins",
        type=int,
        default=500,
        help="further sessions signed in with a password (argon2-bound; 0 to skip)",
    )
    parser.add_argument(
        "--heartbeat", type=float, default=10.0, help="seconds between pings while holding"
    )
    parser.add_argument(
        "--login",
        choices=("token", "none"),
        default="token",
        help="how the K sessions sign in; none: not at all, one ping each (no user actors; "
        "hold for less than the server's session.auth_timeout)",
    )


@dataclass
class PhaseMeter:
    """Server usage at the points the bench process marks while a phase runs."""

    target: Target
    points: dict[str, Usage] = field(default_factory=dict)
    peak_rss_kb: int = 0
    _last_watch: float = 0.0

    def mark(self, name: str) -> None:
        usage = self.target.usage()
        self.points[name] = usage
        if usage.server_rss_kb is not None:
            self.peak_rss_kb = max(self.peak_rss_kb, usage.server_rss_kb)

    def watch(self) -> None:
        now = time.monotonic()
        if now - self._last_watch < WATCH_INTERVAL_S:
            return
        self._last_watch = now
        rss = self.target.usage().server_rss_kb
        if rss is not None:
            self.peak_rss_kb = max(self.peak_rss_kb, rss)

    def cpu_s(self, start: str, end: str) -> float | None:
        a, b = self.points[start].server_cpu_s, self.points[end].server_cpu_s
        return None if a is None or b is None else b - a

    def redis_cpu_s(self, start: str, end: str) -> float | None:
        a, b = self.points[start].redis_cpu_s, self.points[end].redis_cpu_s
        return None if a is None or b is None else b - a


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    failures: Counter[str] = Counter()
    for r in results:
        failures.update(r["failures"])
    starts = [r["first_start"] for r in results if r["first_start"] is not None]
    ends = [r["last_signed_in"] for r in results if r["last_signed_in"] is not None]
    return {
        "connect_s": list(chain.from_iterable(r["connect_s"] for r in results)),
        "login_s": list(chain.from_iterable(r["login_s"] for r in results)),
        "total_s": list(chain.from_iterable(r["total_s"] for r in results)),
        "heartbeat_s": list(chain.from_iterable(r["heartbeat_s"] for r in results)),
        "failures": failures,
        "tokens": dict(chain.from_iterable(r["tokens"].items() for r in results)),
        "first_start": min(starts) if starts else None,
        "last_signed_in": max(ends) if ends else None,
        "held_at_release": sum(r["held_at_release"] for r in results),
        "pings_answered": sum(r["pings_answered"] for r in results),
        "client_cpu_s": sum(r["client_cpu_s"] for r in results),
    }


def _jobs(args: argparse.Namespace, template: SignInJob) -> list[SignInJob]:
    procs = max(1, min(args.procs, len(template.user_ids)))
    users = split(template.user_ids, procs)
    keys = split(template.secrets, procs)
    per_process_rate = args.rate / procs if args.rate else None
    concurrency = max(1, args.concurrency // procs)
    return [
        replace(template, user_ids=u, secrets=s, rate=per_process_rate, concurrency=concurrency)
        for u, s in zip(users, keys, strict=True)
        if u
    ]


def _run_phase(
    args: argparse.Namespace, target: Target, template: SignInJob, label: str
) -> tuple[dict[str, Any], PhaseMeter, float]:
    """Run one sign-in phase; returns the merged tallies, the meter and the go time."""
    meter = PhaseMeter(target)
    hold_until: list[float] = []
    signals = ("go", "hold", "release") if template.hold else ("go",)
    total = len(template.user_ids)
    with WorkerPool(sign_in_users, _jobs(args, template), signals) as pool:
        bar = ProgressBar(label, total)

        def on_marked(name: str) -> None:
            if name == "signed_in":
                meter.mark("signed_in")
                if template.hold:
                    hold_until.append(time.monotonic() + args.duration)
                    pool.signal("hold")

        def on_tick() -> None:
            meter.watch()
            holding = hold_until and "release" not in pool.signalled_at
            if holding and time.monotonic() >= hold_until[0]:
                meter.mark("released")
                pool.signal("release")

        def note() -> str:
            if hold_until and "release" not in pool.signalled_at:
                return f"holding, {max(0.0, hold_until[0] - time.monotonic()):.0f}s left"
            return ""

        meter.mark("start")
        go = pool.signal("go")
        timeout = template.timeout_s * 4 + total / 20 + args.duration + HOLD_GRACE_S
        results = pool.collect(timeout, bar, on_marked, on_tick, note)
        bar.close()
    if "released" not in meter.points:
        meter.mark("released")
    return _merge(results), meter, go


def _setup(
    args: argparse.Namespace, target: Target, token_users: list[str], all_users: list[str]
) -> tuple[list[str], str, float]:
    """Create the accounts and a token per token user; returns (tokens, method, seconds)."""
    started = time.monotonic()
    if target.redis_url:
        password_hash = seeding.default_password_hash(PASSWORD)

        async def seed(storage: Storage) -> list[str]:
            await seeding.create_accounts(storage, all_users, password_hash)
            return await seeding.mint_tokens(storage, token_users)

        tokens = seeding.with_storage(target.redis_url, target.prefix, seed)
        method = (
            "storage: accounts written to Redis with one argon2id hash (default cost) reused; "
            "tokens signed with the cluster key and recorded as a login does"
        )
        return tokens, method, time.monotonic() - started
    template = SignInJob(
        target.url, all_users, [PASSWORD] * len(all_users), "password",
        args.concurrency, None, 60.0, register_first=True,
    )  # fmt: skip
    tallies, _, _ = _run_phase(args, target, template, "setup: register")
    if tallies["failures"]:
        raise RuntimeError(f"set-up failed: {dict(tallies['failures'])}")
    tokens = [tallies["tokens"][u] for u in token_users]
    method = "protocol: every user registered and signed in with a password over the wire"
    return tokens, method, time.monotonic() - started


def run(args: argparse.Namespace, target: Target) -> Result:
    run_id = secrets.token_hex(3)
    token_users = [f"bench-{run_id}-t{i}" for i in range(args.clients)]
    password_users = [f"bench-{run_id}-p{i}" for i in range(args.password_logins)]
    tokens, setup_method, setup_s = _setup(args, target, token_users, token_users + password_users)
    timeout = args.timeout
    token_job = SignInJob(
        target.url, token_users, tokens, args.login, args.concurrency, args.rate, timeout,
        hold=True, heartbeat_s=args.heartbeat,
        hold_timeout_s=args.duration + timeout * 4 + args.clients / 20 + HOLD_GRACE_S,
    )  # fmt: skip
    token, meter, go = _run_phase(args, target, token_job, "token logins")
    result = _token_figures(args, token, meter, go)
    result["setup"] = setup_method
    result["setup_s"] = round(setup_s, 2)
    if password_users:
        result["quiet_wait_s"] = round(target.wait_until_quiet(), 1)
        password_job = SignInJob(
            target.url, password_users, [PASSWORD] * len(password_users), "password",
            args.concurrency, args.rate, timeout,
        )  # fmt: skip
        password, pw_meter, pw_go = _run_phase(args, target, password_job, "password logins")
        result.update(_password_figures(password, pw_meter, pw_go))
        result["failures"] += sum(password["failures"].values())
        result["failure_kinds"].update(
            {f"password {k}": v for k, v in password["failures"].items()}
        )
    result["client_processes"] = len(_jobs(args, token_job))
    return result


def _per(total: float | None, count: int, scale: float) -> float | None:
    return round(total * scale / count, 1) if total is not None and count else None


def _token_figures(
    args: argparse.Namespace, tally: dict[str, Any], meter: PhaseMeter, go: float
) -> Result:
    signed_in = len(tally["total_s"])
    last = tally["last_signed_in"]
    login_cpu = meter.cpu_s("start", "signed_in") if "signed_in" in meter.points else None
    hold_cpu = meter.cpu_s("signed_in", "released") if "signed_in" in meter.points else None
    heartbeats = len(tally["heartbeat_s"])
    start, end = meter.points["start"], meter.points["released"]
    rss_start, rss_end = start.server_rss_kb, end.server_rss_kb
    held = tally["held_at_release"]
    total_cpu = meter.cpu_s("start", "released")
    result: Result = {
        "scenario": "connect",
        "connections": args.clients,
        "signed_in": signed_in,
        "held_at_end": held,
        "failures": sum(tally["failures"].values()),
        "failure_kinds": dict(tally["failures"]),
        "login_method": args.login,
        "logins_per_s": rate(signed_in, last - go) if last else None,
        "login_phase_s": round(last - go, 2) if last else None,
        **latency_summary(tally["total_s"]),
        **latency_summary(tally["connect_s"], "connect_"),
        **latency_summary(tally["login_s"], "login_"),
        "heartbeats": heartbeats,
        **latency_summary(tally["heartbeat_s"], "heartbeat_"),
        "server_pings_answered": tally["pings_answered"],
        "hold_s": args.duration,
        "server_cpu_us_per_msg": _per(total_cpu, signed_in + heartbeats, 1e6),
        "server_cpu_us_per_login": _per(login_cpu, signed_in, 1e6),
        "server_cpu_us_per_heartbeat": _per(hold_cpu, heartbeats, 1e6),
        "redis_cpu_us_per_login": _per(meter.redis_cpu_s("start", "signed_in"), signed_in, 1e6)
        if "signed_in" in meter.points
        else None,
        "server_rss_mb": round(rss_end / 1024, 1) if rss_end else None,
        "server_rss_start_mb": round(rss_start / 1024, 1) if rss_start else None,
        "server_rss_peak_mb": round(meter.peak_rss_kb / 1024, 1) if meter.peak_rss_kb else None,
        "rss_kb_per_connection": round((rss_end - rss_start) / held, 1)
        if rss_end and rss_start and held
        else None,
        "redis_rss_mb": round(end.redis_rss_kb / 1024, 1) if end.redis_rss_kb else None,
        "client_cpu_s": round(tally["client_cpu_s"], 2),
        "procs": args.procs,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "notes": [
            "p50/p95/p99_ms: from a session's (scheduled) start to its login_ok "
            "(TCP connect + WebSocket handshake + token_login)",
            "rss_kb_per_connection: (server RSS at the end of the hold - before the first "
            "connection) / sessions held; each signed-in user also has its user actor",
        ],
    }
    return result


def _password_figures(tally: dict[str, Any], meter: PhaseMeter, go: float) -> Result:
    signed_in = len(tally["total_s"])
    last = tally["last_signed_in"]
    return {
        "password_logins": signed_in,
        "password_logins_per_s": rate(signed_in, last - go) if last else None,
        **latency_summary(tally["total_s"], "password_login_"),
        "server_cpu_us_per_password_login": _per(
            meter.cpu_s("start", "signed_in") if "signed_in" in meter.points else None,
            signed_in,
            1e6,
        ),
    }


SCENARIO = Scenario(
    name="connect",
    summary="sign K clients in (token and password), hold them idle; login rate and memory",
    add_arguments=add_arguments,
    run=run,
)
