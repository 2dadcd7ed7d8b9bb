"""What the client processes of the connect scenario run (see ``bench.workers``).

Each job signs in a slice of the users, one lean session per user, and reports
per-session timings and every failure by kind. Times are ``time.monotonic()``
values, comparable with the bench process's.
"""

from __future__ import annotations

import random
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import trio

from bench.loops import run_load
from bench.wire import LeanSession, SessionFailed, close_all
from bench.workers import WorkerLink
from protocol import messages as m

GO_TIMEOUT_S = 60.0
LINUX_PLATFORM: Literal[7] = 7


@dataclass(frozen=True)
class SignInJob:
    url: str
    user_ids: list[str]
    secrets: list[str]
    """A token per user (``method="token"``), or the password (``"password"``)."""
    method: str
    """``token``, ``password``, or ``none``: no sign-in, one ``ping`` instead (measures
    connections without user actors)."""
    concurrency: int
    rate: float | None
    timeout_s: float
    hold: bool = False
    """Keep the sessions open, heartbeating, until the ``release`` signal."""
    heartbeat_s: float = 10.0
    hold_timeout_s: float = 600.0
    register_first: bool = False
    """Register each user over the wire before the password login (protocol set-up)."""


@dataclass
class SignInTally:
    connect_s: list[float] = field(default_factory=list)
    """TCP connect plus WebSocket handshake."""
    login_s: list[float] = field(default_factory=list)
    """From sending the login request to its ``login_ok``."""
    total_s: list[float] = field(default_factory=list)
    """From the session's (scheduled) start to its ``login_ok``."""
    heartbeat_s: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, str] = field(default_factory=dict)
    first_start: float | None = None
    last_signed_in: float | None = None
    held_at_release: int = 0
    pings_answered: int = 0

    def as_dict(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "connect_s": self.connect_s,
            "login_s": self.login_s,
            "total_s": self.total_s,
            "heartbeat_s": self.heartbeat_s,
            "failures": dict(self.failures),
            "tokens": self.tokens,
            "first_start": self.first_start,
            "last_signed_in": self.last_signed_in,
            "held_at_release": self.held_at_release,
            "pings_answered": self.pings_answered,
            "client_cpu_s": usage.ru_utime + usage.ru_stime,
        }


class _SignInRun:
    """One worker's sessions: sign in, then (with ``hold``) heartbeat until released."""

    def __init__(self, job: SignInJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.tally = SignInTally()
        self.held: list[LeanSession] = []
        self.holding = trio.Event()
        """Set once every worker has signed its sessions in: heartbeats are timed from then."""
        self.release = trio.Event()

    async def run(self) -> dict[str, Any]:
        job, link = self.job, self.link
        if not await link.wait_for("go", GO_TIMEOUT_S):
            raise RuntimeError("no go signal")
        async with trio.open_nursery() as holders:

            async def sign_in(index: int, start: float) -> None:
                session = await self._sign_in(index, start)
                link.progress()
                if session is not None and job.hold:
                    self.held.append(session)
                    holders.start_soon(self._heartbeat, session)
                elif session is not None:
                    await session.aclose()

            await run_load(len(job.user_ids), job.concurrency, job.rate, sign_in)
            link.mark("signed_in")
            if job.hold:
                if await link.wait_for("hold", job.hold_timeout_s):
                    self.holding.set()
                await link.wait_for("release", job.hold_timeout_s)
            self.tally.held_at_release = len(self.held)
            self.release.set()
        self.tally.pings_answered = sum(s.pings_answered for s in self.held)
        await close_all(self.held)
        return self.tally.as_dict()

    async def _sign_in(self, index: int, start: float) -> LeanSession | None:
        """Open a session and sign it in; None (and a counted failure) if that fails."""
        job, tally = self.job, self.tally
        if tally.first_start is None:
            tally.first_start = start
        try:
            session = await LeanSession.open(job.url, job.timeout_s)
        except SessionFailed as exc:
            tally.failures[f"connect:{exc.kind}"] += 1
            return None
        connected = time.monotonic()
        try:
            if job.register_first:
                await self._register(session, index)
                connected = time.monotonic()
            if job.method == "none":
                await session.call(m.Ping(rid=session.next_rid()), m.Pong, job.timeout_s)
            else:
                request = _login_request(session, job, index)
                reply = await session.call(request, m.LoginOk, job.timeout_s)
                if job.register_first:
                    tally.tokens[reply.user_id] = reply.token
        except SessionFailed as exc:
            tally.failures[f"login:{exc.kind}"] += 1
            await session.aclose(send_close=False)
            return None
        done = time.monotonic()
        tally.connect_s.append(connected - start)
        tally.login_s.append(done - connected)
        tally.total_s.append(done - start)
        tally.last_signed_in = max(done, tally.last_signed_in or done)
        return session

    async def _register(self, session: LeanSession, index: int) -> None:
        job = self.job
        request = m.Register(
            rid=session.next_rid(), user_id=job.user_ids[index], password=job.secrets[index]
        )
        await session.call(request, m.Registered, job.timeout_s)

    async def _heartbeat(self, session: LeanSession) -> None:
        delay = random.uniform(0.0, self.job.heartbeat_s)  # spread the heartbeats out
        while True:
            with trio.move_on_after(delay):
                await self.release.wait()
            if self.release.is_set():
                return
            sent = time.monotonic()
            try:
                await session.call(m.Ping(rid=session.next_rid()), m.Pong, self.job.timeout_s)
            except SessionFailed as exc:
                self.tally.failures[f"heartbeat:{exc.kind}"] += 1
                self.held.remove(session)
                await session.aclose(send_close=False)
                return
            if self.holding.is_set():  # only the hold's heartbeats are timed
                self.tally.heartbeat_s.append(time.monotonic() - sent)
            delay = self.job.heartbeat_s


def _login_request(session: LeanSession, job: SignInJob, index: int) -> m.ClientMessage:
    if job.method == "token":
        return m.TokenLogin(rid=session.next_rid(), token=job.secrets[index])
    return m.Login(
        rid=session.next_rid(),
        user_id=job.user_ids[index],
        password=job.secrets[index],
        platform=LINUX_PLATFORM,
    )


async def sign_in_users(job: SignInJob, link: WorkerLink) -> dict[str, Any]:
    """Sign every user of the slice in; with ``hold``, keep them heartbeating until released."""
    return await _SignInRun(job, link).run()
