"""Rate limits: the token bucket itself (no sockets), then each limit of a running
node refusing and recovering: requests per session, messages per user (over the
user's sessions and nodes), new connections per client address, the flood close,
the trusted-proxy address, and failed logins for unknown ids counted apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
import trio
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.limits.bucket import BucketsByKey, TokenBucket
from client import ParleyClient, ParleyError
from protocol import messages as m
from protocol.errors import CloseCode, ErrorCode
from server import RunningNode
from tests.conftest import StartNode
from tests.rawws import RawClient, Rejected
from tests.support import Connect, eventually, expect_error, signed_in


def metric(node: RunningNode, name: str, label: str, value: str) -> float:
    text = generate_latest(node.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get(label) == value:
                return sample.value
    raise AssertionError(f"no sample {name}{{{label}={value!r}}}")


class TestTokenBucket:
    def test_a_burst_then_the_rate(self) -> None:
        bucket = TokenBucket(rate=2.0, burst=3, now=100.0)
        assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert bucket.take(100.0) == pytest.approx(0.5)
        assert bucket.take(100.25) == pytest.approx(0.25)  # half a token came back
        assert bucket.take(100.5) == 0.0
        assert bucket.take(100.5) == pytest.approx(0.5)

    def test_refills_to_the_burst_and_no_further(self) -> None:
        bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
        bucket.take(0.0)
        bucket.take(0.0)
        assert not bucket.full_at(0.1)
        assert bucket.full_at(0.2)
        assert [bucket.take(1000.0) for _ in range(3)][2] > 0

    def test_a_refusal_takes_nothing(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
        bucket.take(0.0)
        for _ in range(100):
            assert bucket.take(0.5) == pytest.approx(0.5)
        assert bucket.take(1.0) == 0.0

    def test_rate_zero_disables(self) -> None:
        bucket = TokenBucket(rate=0.0, burst=1, now=0.0)
        assert not bucket.enabled
        assert all(bucket.take(0.0) == 0.0 for _ in range(1000))

    def test_buckets_by_key_are_apart_and_forgotten_when_full(self) -> None:
        buckets = BucketsByKey(rate=1.0, burst=1, sweep_every=10.0)
        assert buckets.take("a", 0.0) == 0.0
        assert buckets.take("a", 0.0) > 0
        assert buckets.take("b", 0.0) == 0.0
        assert len(buckets) == 2
        assert buckets.take("c", 20.0) == 0.0  # the sweep drops a and b (full again)
        assert len(buckets) == 1


async def _flood(raw: RawClient, count: int) -> None:
    for rid in range(1, count + 1):
        await raw.send(msgspec.msgpack.encode({"t": "ping", "rid": rid}))


class TestRequestsPerSession:
    async def test_refused_with_a_hint_then_served_again(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(
            limits={"requests_per_second": 5, "request_burst": 4, "flood_refusals": 0}
        )
        client = await connect(node.url)
        await signed_in(client, "rita")  # register + login: two of the four
        refused = None
        for _ in range(10):
            try:
                await client.get_self()
            except Exception as exc:
                refused = exc
                break
        assert refused is not None
        error = await expect_error(ErrorCode.RATE_LIMITED, _raise(refused))
        assert error.retry_after is not None and 0 < error.retry_after <= 0.2 + 1e-9
        # Another user's session is not affected.
        other = await connect(node.url)
        await signed_in(other, "sam")
        assert (await other.get_self()).user_id == "sam"
        # The bucket refills: the same session is served again, still signed in.
        await eventually(lambda: _served(client), timeout=10)
        assert metric(node, "parley_rate_limited_total", "limit", "requests") >= 1

    async def test_a_session_that_keeps_flooding_is_closed(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(
            limits={"requests_per_second": 1, "request_burst": 2, "flood_refusals": 5}
        )
        bystander = await connect(node.url)
        await signed_in(bystander, "tess")
        raw = await RawClient.open(node.url)
        await _flood(raw, 50)
        answers: list[dict[str, Any]] = []
        with trio.fail_after(10):
            while len(answers) < 6:
                try:
                    answers.append(msgspec.msgpack.decode(await raw.next_message()))
                except AssertionError:
                    break
        assert [a["t"] for a in answers[:2]] == ["pong", "pong"]
        limited = [a for a in answers if a["t"] == "error"]
        assert len(limited) == 4
        assert all(a["name"] == "RATE_LIMITED" and a["retry_after_ms"] > 0 for a in limited)
        assert {a["rid"] for a in limited} == {3, 4, 5, 6}
        assert await raw.wait_closed() == CloseCode.FLOODING
        await raw.aclose()
        # The bystander (whose own burst went on signing in) is still signed in and served.
        await eventually(lambda: _served(bystander), timeout=10, interval=0.5)


async def _raise(exc: BaseException) -> None:
    raise exc


async def _passes(request: Callable[[], Awaitable[object]]) -> bool:
    """Whether ``request()`` now passes the limit (any other error fails the test)."""
    try:
        await request()
    except ParleyError as exc:
        if exc.code != ErrorCode.RATE_LIMITED:
            raise
        return False
    return True


def _served(client: ParleyClient) -> Awaitable[bool]:
    return _passes(client.get_self)


class TestMessagesPerUser:
    async def test_counted_over_sessions_and_nodes(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        limits = {"messages_per_second": 2, "message_burst": 4}
        first = await start_node(limits=limits)
        second = await start_node(limits=limits)
        bob = await connect(first.url)
        await signed_in(bob, "bob")
        uma_here = await connect(first.url)
        await signed_in(uma_here, "uma", platform=7)
        uma_there = await connect(second.url)
        await signed_in(uma_there, "uma", platform=3)
        # Bob sorts before uma: his actor owns the chat; uma's sends count for uma.
        for sender in (uma_here, uma_there, uma_here, uma_there):
            await sender.send_text("hi", to_user_id="bob")
        refused = await expect_error(
            ErrorCode.RATE_LIMITED, uma_there.send_text("one too many", to_user_id="bob")
        )
        assert refused.retry_after is not None and 0 < refused.retry_after <= 0.5 + 1e-9
        await expect_error(ErrorCode.RATE_LIMITED, uma_here.send_text("again", to_user_id="bob"))
        # Nothing refused was stored; bob is not limited by uma's sends.
        seqs = await bob.get_max_seqs()
        assert [c.max_seq for c in seqs.values()] == [4]
        await bob.send_text("hello uma", to_user_id="uma")
        group = await bob.create_group("g", join_policy="direct", member_user_ids=["uma"])
        await eventually(
            lambda: _passes(lambda: uma_here.send_text("back", group_id=group.group_id))
        )
        refusals = metric(first, "parley_rate_limited_total", "limit", "sends")
        refusals += metric(second, "parley_rate_limited_total", "limit", "sends")
        assert refusals >= 2


def _forwarded_for(address: str) -> list[tuple[bytes, bytes]]:
    return [(b"X-Forwarded-For", f"198.51.100.7, {address}".encode())]


async def _refused(url: str, headers: list[tuple[bytes, bytes]] = []) -> Rejected | None:  # noqa: B006
    try:
        raw = await RawClient.open(url, extra_headers=headers)
    except Rejected as rejected:
        return rejected
    await raw.aclose()
    return None


class TestConnectionsPerAddress:
    async def test_refused_with_429_then_accepted_again(self, start_node: StartNode) -> None:
        node = await start_node(limits={"connections_per_second": 4, "connection_burst": 2})
        kept = [await RawClient.open(node.url) for _ in range(2)]
        rejected = await _refused(node.url)
        assert rejected is not None and rejected.status == 429
        assert b"too many new connections" in rejected.body
        for raw in kept:  # the open sessions still work
            await raw.send(msgspec.msgpack.encode({"t": "ping", "rid": 1}))
            assert msgspec.msgpack.decode(await raw.next_message())["t"] == "pong"
            await raw.aclose()

        async def accepted() -> bool:
            return await _refused(node.url) is None

        await eventually(accepted, timeout=10)
        assert metric(node, "parley_rate_limited_total", "limit", "connections") >= 1

    async def test_forwarded_address_is_read_from_trusted_proxies_only(
        self, start_node: StartNode
    ) -> None:
        limits = {"connections_per_second": 0.01, "connection_burst": 1}
        behind_proxy = await start_node(server={"trusted_proxies": ["127.0.0.0/8"]}, limits=limits)
        assert await _refused(behind_proxy.url, _forwarded_for("203.0.113.5")) is None
        again = await _refused(behind_proxy.url, _forwarded_for("203.0.113.5"))
        assert again is not None and again.status == 429
        # Another client behind the same proxy has its own bucket.
        assert await _refused(behind_proxy.url, _forwarded_for("203.0.113.6")) is None
        forwarded = [(b"Forwarded", b'for="[2001:db8::7]:4711";proto=https')]
        assert await _refused(behind_proxy.url, forwarded) is None

        untrusted = await start_node(server={"trusted_proxies": ["10.0.0.0/8"]}, limits=limits)
        assert await _refused(untrusted.url, _forwarded_for("203.0.113.5")) is None
        # The header is not believed from 127.0.0.1: both count as 127.0.0.1.
        spoofed = await _refused(untrusted.url, _forwarded_for("203.0.113.6"))
        assert spoofed is not None and spoofed.status == 429


class TestLoginFailures:
    async def test_unknown_ids_do_not_lock_out_real_users_behind_the_address(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(
            auth={"unknown_user_failures_per_address": 3, "login_failures_per_address": 3}
        )
        real = await connect(node.url)
        await real.register("vera", "password-1")
        prober = await connect(node.url)
        for n in range(3):
            await expect_error(ErrorCode.BAD_CREDENTIALS, prober.login(f"ghost{n}", "guess"))
        locked = await expect_error(ErrorCode.RATE_LIMITED, prober.login("ghost9", "guess"))
        assert locked.retry_after is not None and 0 < locked.retry_after <= 300
        # Same address, a real user id: a wrong password is just wrong, the right one works.
        await expect_error(ErrorCode.BAD_CREDENTIALS, real.login("vera", "wrong-pw"))
        assert (await real.login("vera", "password-1")).user_id == "vera"
        assert metric(node, "parley_login_failures_total", "kind", "unknown_user") == 3
        assert metric(node, "parley_login_failures_total", "kind", "bad_password") == 1
        assert metric(node, "parley_rate_limited_total", "limit", "logins") == 1

    async def test_failures_count_for_the_forwarded_client(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        """Behind a trusted proxy, each client address has its own failure counter."""
        node = await start_node(
            server={"trusted_proxies": ["127.0.0.1"]},
            auth={"unknown_user_failures_per_address": 2},
        )
        prober = await _signed_out_raw(node.url, "203.0.113.5")
        names = []
        for rid in (1, 2, 3):  # one at a time: a session has one sign-in in progress
            await prober.send(_login(rid, f"ghost{rid}"))
            names.append(msgspec.msgpack.decode(await prober.next_message())["name"])
        assert names == ["BAD_CREDENTIALS", "BAD_CREDENTIALS", "RATE_LIMITED"]
        neighbour = await _signed_out_raw(node.url, "203.0.113.6")
        await neighbour.send(_login(1, "ghost1"))
        assert msgspec.msgpack.decode(await neighbour.next_message())["name"] == "BAD_CREDENTIALS"
        for raw in (prober, neighbour):
            await raw.aclose()


def _login(rid: int, user_id: str) -> bytes:
    return msgspec.msgpack.encode(
        m.Login(rid=rid, user_id=user_id, password="guess-guess", platform=7)
    )


async def _signed_out_raw(url: str, address: str) -> RawClient:
    return await RawClient.open(url, extra_headers=_forwarded_for(address))
