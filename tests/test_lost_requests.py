"""Requests whose reply never comes: a command forwarded to the node that owns its
entity is lost when that node stops answering. The session answers each such
request ``UNAVAILABLE`` after ``session.request_deadline`` and frees its pending
slot, and drops the reply if it comes after all. When the session's node loses the
pub/sub subscription the reply comes back on, it answers at once."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import trio

from actors.cluster.envelopes import Forward, SessionSignedIn, decode_envelope, encode_envelope
from actors.cluster.ownership import OWNER_NOT_LISTENING
from client import ErrorCode, ParleyClient
from protocol import messages as m
from protocol.codec import ClientCodec
from protocol.errors import CloseCode
from server import RunningNode
from tests.conftest import StartNode
from tests.processes import NodeProcess, stop_all
from tests.rawws import RawClient
from tests.support import eventually

codec = ClientCodec()
SLOW_CLUSTER = {"node_timeout": 60, "lease_time": 60}
"""Long enough that no lease of a frozen owner node expires during a test."""
DEADLINE = 1.0


@pytest.fixture
def owner_node(redis_url: str, prefix: str) -> Iterator[NodeProcess]:
    """A node process; tests make it own user ``aaron``, then freeze it (SIGSTOP)."""
    node = NodeProcess(
        f"--redis-url={redis_url}",
        f"--prefix={prefix}",
        *(f"--set=cluster.{key}={value}" for key, value in SLOW_CLUSTER.items()),
    )
    yield node
    node.process.send_signal(signal.SIGCONT)
    stop_all([node])


@pytest.fixture
async def aaron_owned_by(
    owner_node: NodeProcess, redis_client: redis.Redis, prefix: str
) -> AsyncIterator[NodeProcess]:
    """``owner_node`` holds the lease of user ``aaron`` (registered there)."""
    async with trio.open_nursery() as nursery:
        client = ParleyClient(owner_node.url, request_timeout=15)
        await client.connect(nursery)
        await client.register("aaron", "password-1")
        await client.aclose()
    assert redis_client.get(f"{prefix}{{u:aaron}}:owner") == owner_node.node_id.encode()
    yield owner_node


async def session_node(start_node: StartNode, ping_interval: float) -> RunningNode:
    return await start_node(
        session={"request_deadline": DEADLINE, "max_pending": 3, "ping_interval": ping_interval},
        cluster=SLOW_CLUSTER,
    )


async def signed_in_raw(url: str, user_id: str) -> RawClient:
    raw = await RawClient.open(url)
    await raw.send(codec.encode(m.Register(rid=1, user_id=user_id, password="password-1")))
    assert isinstance(codec.decode(await raw.next_message()), m.Registered)
    await raw.send(codec.encode(m.Login(rid=2, user_id=user_id, password="password-1", platform=7)))
    assert isinstance(codec.decode(await raw.next_message()), m.LoginOk)
    return raw


def send_to_aaron(rid: int, client_msg_id: str) -> bytes:
    content = m.TextContent(text=client_msg_id)
    return codec.encode(
        m.SendMessage(rid=rid, client_msg_id=client_msg_id, content=content, to_user_id="aaron")
    )


async def replies(raw: RawClient, count: int, timeout: float = 10) -> dict[int, Any]:
    """The next ``count`` replies, by rid; a rid answered twice fails the test."""
    found: dict[int, Any] = {}
    with trio.fail_after(timeout):
        while len(found) < count:
            message = codec.decode(await raw.next_message())
            if isinstance(message, m.Reply):
                assert message.rid not in found, f"rid {message.rid} answered twice"
                found[message.rid] = message
    return found


def error_code(reply: Any) -> int | None:
    return reply.code if isinstance(reply, m.Error) else None


async def test_lost_requests_get_unavailable_and_free_their_slots(
    start_node: StartNode, aaron_owned_by: NodeProcess
) -> None:
    # Pings are far apart: only a request arriving at the limit finds the overdue ones.
    node = await session_node(start_node, ping_interval=60)
    zoe = await signed_in_raw(node.url, "zoe")
    aaron_owned_by.process.send_signal(signal.SIGSTOP)
    rid = 100
    for _ in range(3):  # 9 lost requests, three times max_pending
        lost = [rid + 1, rid + 2, rid + 3]
        for lost_rid in lost:
            await zoe.send(send_to_aaron(lost_rid, f"lost-{lost_rid}"))
        await zoe.send(codec.encode(m.GetSelf(rid=rid + 4)))
        assert error_code((await replies(zoe, 1))[rid + 4]) == ErrorCode.TOO_MANY_PENDING
        await trio.sleep(DEADLINE + 0.1)
        await zoe.send(codec.encode(m.GetSelf(rid=rid + 5)))
        answered = await replies(zoe, 4)
        assert {r: error_code(answered[r]) for r in lost} == dict.fromkeys(
            lost, ErrorCode.UNAVAILABLE
        )
        assert "may or may not have taken effect" in answered[lost[0]].message
        assert isinstance(answered[rid + 5], m.Profile)
        rid += 10
    # The session still has all its slots for entities whose node answers.
    for n in range(1, 4):
        await zoe.send(codec.encode(m.GetSelf(rid=rid + n)))
    assert all(isinstance(r, m.Profile) for r in (await replies(zoe, 3)).values())
    await zoe.aclose()


async def test_a_late_reply_is_dropped_and_a_retried_send_is_not_stored_twice(
    start_node: StartNode, aaron_owned_by: NodeProcess
) -> None:
    node = await session_node(start_node, ping_interval=0.2)
    zoe = await signed_in_raw(node.url, "zoe")
    aaron_owned_by.process.send_signal(signal.SIGSTOP)
    await zoe.send(send_to_aaron(10, "frozen-1"))
    # Answered by the session's periodic check, without any other request.
    with trio.fail_after(DEADLINE + 2):
        assert error_code((await replies(zoe, 1))[10]) == ErrorCode.UNAVAILABLE

    # The frozen node wakes up, stores the message and answers: too late.
    aaron_owned_by.process.send_signal(signal.SIGCONT)
    rid = 20
    with trio.fail_after(20):
        while True:
            rid += 1
            await zoe.send(codec.encode(m.GetMaxSeqs(rid=rid)))
            answered = await replies(zoe, 1)
            assert list(answered) == [rid], f"a reply after the deadline's error: {answered}"
            seqs = answered[rid]
            assert isinstance(seqs, m.MaxSeqs), seqs
            if [c.max_seq for c in seqs.conversations] == [1]:
                break
            await trio.sleep(0.05)
    await trio.sleep(1.0)  # the late reply was published right after the message was stored
    await zoe.send(codec.encode(m.Ping(rid=50)))
    with trio.fail_after(5):
        while True:
            message = codec.decode(await zoe.next_message())
            assert not (isinstance(message, m.Reply) and message.rid == 10), message
            if isinstance(message, m.Pong):
                break

    # Retried with the same client_msg_id: the first result, nothing stored again.
    await zoe.send(send_to_aaron(51, "frozen-1"))
    sent = (await replies(zoe, 1))[51]
    assert isinstance(sent, m.MessageSent) and sent.seq == 1, sent
    await zoe.aclose()


async def test_a_lost_subscription_answers_forwarded_requests_at_once(
    start_node: StartNode, aaron_owned_by: NodeProcess, redis_client: redis.Redis, prefix: str
) -> None:
    """A reply published while the session's node was not subscribed is lost for
    good: once the node's pub/sub connection drops, the requests it forwarded are
    answered ``UNAVAILABLE`` without waiting for ``session.request_deadline`` (60 s
    here); the reply that still comes is dropped, and the resent send returns the
    stored message's seq."""
    node = await start_node(
        session={"request_deadline": 60, "ping_interval": 60}, cluster=SLOW_CLUSTER
    )
    zoe = await signed_in_raw(node.url, "zoe")
    aaron_owned_by.process.send_signal(signal.SIGSTOP)
    await zoe.send(send_to_aaron(10, "cut-1"))
    await zoe.send(send_to_aaron(11, "cut-2"))
    await eventually(lambda: len(node.cluster.forwarded) == 2)
    assert redis_client.client_kill_filter(_type="pubsub") >= 1
    with trio.fail_after(10):
        answered = await replies(zoe, 2)
    assert {rid: error_code(r) for rid, r in answered.items()} == {
        10: ErrorCode.UNAVAILABLE,
        11: ErrorCode.UNAVAILABLE,
    }
    assert "reply may have been lost" in answered[10].message
    assert node.cluster.forwarded.answered_unavailable == 2
    assert len(node.cluster.forwarded) == 0

    # The owner wakes up, stores both and answers: those replies are dropped.
    aaron_owned_by.process.send_signal(signal.SIGCONT)
    inboxes = [f"{prefix}{{n:{n}}}:inbox" for n in (node.node_id, aaron_owned_by.node_id)]

    def both_subscribed_again() -> bool:
        return all(count == 1 for _, count in redis_client.pubsub_numsub(*inboxes))

    await eventually(both_subscribed_again)
    await zoe.send(send_to_aaron(12, "cut-1"))
    await zoe.send(send_to_aaron(13, "cut-2"))
    answered = await replies(zoe, 2, timeout=20)
    assert {rid: (r.seq if isinstance(r, m.MessageSent) else r) for rid, r in answered.items()} == {
        12: 1,
        13: 2,
    }
    await zoe.send(codec.encode(m.Ping(rid=50)))
    with trio.fail_after(5):
        while True:
            message = codec.decode(await zoe.next_message())
            assert not (isinstance(message, m.Reply) and message.rid in (10, 11)), message
            if isinstance(message, m.Pong):
                break
    await zoe.aclose()


async def test_a_sign_in_behind_a_silent_owner_is_answered_unavailable_and_never_applied(
    start_node: StartNode, aaron_owned_by: NodeProcess, redis_client: redis.Redis, prefix: str
) -> None:
    """The node holding aaron's lease is alive (its heartbeat key has not expired) but
    does not answer: a sign-in forwarded there is answered ``UNAVAILABLE`` after
    ``session.sign_in_deadline``, long before the session's auth timeout, and when the
    node wakes up it does not carry the sign-in out."""
    node = await start_node(
        session={"sign_in_deadline": 1.5, "auth_timeout": 60, "ping_interval": 60},
        cluster=SLOW_CLUSTER,
    )
    aaron_owned_by.process.send_signal(signal.SIGSTOP)
    raw = await RawClient.open(node.url)
    login = m.Login(rid=1, user_id="aaron", password="password-1", platform=7)
    await raw.send(codec.encode(login))
    # Another sign-in while the first is in progress is refused at once.
    await raw.send(codec.encode(m.TokenLogin(rid=2, token="x")))
    answered = await replies(raw, 2, timeout=10)
    assert error_code(answered[2]) == ErrorCode.TOKEN_INVALID  # checked before routing
    assert error_code(answered[1]) == ErrorCode.UNAVAILABLE
    assert "did not take effect" in answered[1].message
    # Once answered, the session may sign in again; that one waits as well.
    await raw.send(codec.encode(m.Login(rid=3, user_id="aaron", password="password-1", platform=7)))
    await raw.send(codec.encode(m.Login(rid=4, user_id="aaron", password="password-1", platform=7)))
    answered = await replies(raw, 2, timeout=10)
    assert error_code(answered[4]) == ErrorCode.ALREADY_AUTHENTICATED
    assert error_code(answered[3]) == ErrorCode.UNAVAILABLE

    # The owner wakes up with both sign-ins waiting for it: too late for each, so
    # neither registers a session nor answers.
    aaron_owned_by.process.send_signal(signal.SIGCONT)
    await trio.sleep(1.5)
    await raw.send(codec.encode(m.GetSelf(rid=5)))
    assert error_code((await replies(raw, 1))[5]) == ErrorCode.NOT_AUTHENTICATED
    assert redis_client.hlen(f"{prefix}{{u:aaron}}:presence") == 0
    # And now a sign-in is served by the owner as usual.
    await raw.send(codec.encode(m.Login(rid=6, user_id="aaron", password="password-1", platform=7)))
    assert isinstance((await replies(raw, 1))[6], m.LoginOk)
    assert redis_client.hlen(f"{prefix}{{u:aaron}}:presence") == 1
    await raw.aclose()


async def test_a_success_after_the_sign_in_deadline_closes_the_session(
    start_node: StartNode, redis_client: redis.Redis, prefix: str
) -> None:
    """An owner whose clock is far off may still answer a sign-in its session has
    answered ``UNAVAILABLE``: the session is closed (4000) rather than signed in
    behind the client's back, and leaves presence. The owner here is played by the
    test through Redis: the lease of ``zed`` names node ``ghost``, whose inbox the
    test reads."""
    node = await start_node(session={"sign_in_deadline": 1.0}, cluster=SLOW_CLUSTER)
    redis_client.set(f"{prefix}{{n:ghost}}", "played by the test", ex=60)
    redis_client.set(f"{prefix}{{u:zed}}:owner", "ghost", px=60_000)
    inbox = redis_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    inbox.subscribe(f"{prefix}{{n:ghost}}:inbox")
    raw = await RawClient.open(node.url)
    await raw.send(codec.encode(m.Login(rid=7, user_id="zed", password="password-1", platform=7)))

    def forwarded() -> Forward:
        for _ in range(100):
            message = inbox.get_message(timeout=0.1)
            if message is not None:
                envelope = decode_envelope(message["data"])
                assert isinstance(envelope, Forward)
                return envelope
        raise AssertionError("the sign-in was not forwarded to the lease holder")

    forward = await trio.to_thread.run_sync(forwarded)
    inbox.close()
    assert forward.entity_id == "zed" and forward.answer_by_ms > 0
    assert error_code((await replies(raw, 1))[7]) == ErrorCode.UNAVAILABLE
    # The "owner" registers the session and answers, too late.
    presence = f"{prefix}{{u:zed}}:presence"
    redis_client.hset(presence, forward.session_id, f"7:{node.node_id}:late-token")
    redis_client.sadd(f"{prefix}{{n:{node.node_id}}}:sessions", f"zed\t{forward.session_id}")
    late = SessionSignedIn(forward.session_id, "zed", 7, "late-token", b"", rid=7)
    redis_client.publish(f"{prefix}{{n:{node.node_id}}}:inbox", encode_envelope(late))
    assert await raw.wait_closed() == CloseCode.AUTH_TIMEOUT
    await raw.aclose()  # our close frame: the session ends
    await eventually(lambda: redis_client.hlen(presence) == 0)


async def test_a_command_for_a_node_that_is_not_listening_is_answered_at_once(
    start_node: StartNode, redis_client: redis.Redis, prefix: str
) -> None:
    """The lease of ``zed`` names node ``ghost``, whose node key is alive but which
    is subscribed to nothing (killed a moment ago, or subscribing again after a
    failover): the forwarded sign-in reaches nobody, Redis says so (0 receivers),
    and it is answered ``UNAVAILABLE`` at once, not after the 60 s deadline."""
    node = await start_node(
        session={"sign_in_deadline": 60, "auth_timeout": 90}, cluster=SLOW_CLUSTER
    )
    redis_client.set(f"{prefix}{{n:ghost}}", "played by the test", ex=60)
    redis_client.set(f"{prefix}{{u:zed}}:owner", "ghost", px=60_000)
    raw = await RawClient.open(node.url)
    await raw.send(codec.encode(m.Login(rid=7, user_id="zed", password="password-1", platform=7)))
    with trio.fail_after(10):
        reply = (await replies(raw, 1))[7]
    assert error_code(reply) == ErrorCode.UNAVAILABLE
    assert reply.message == OWNER_NOT_LISTENING
    assert len(node.cluster.forwarded) == 0  # nothing left waiting for a reply
    # The session may sign in again at once (the first sign-in is over).
    await raw.send(codec.encode(m.Login(rid=8, user_id="zed", password="password-1", platform=7)))
    assert error_code((await replies(raw, 1))[8]) == ErrorCode.UNAVAILABLE
    await raw.aclose()
