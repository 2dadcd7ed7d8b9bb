"""The requests a node forwarded and still awaits (actors/cluster/forwarded.py):
answered ``UNAVAILABLE`` at once when the reply path is lost, forgotten once replied
to or older than the request deadline. No Redis: a recording outbox stands in for the
session, which is all the piece talks to."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing

from actors.cluster.forwarded import REPLY_LOST, ForwardedRequests
from actors.runtime.messages import Command, SessionRef
from protocol import messages as m
from protocol.codec import ClientCodec
from protocol.errors import ErrorCode

codec = ClientCodec()


@dataclass
class RecordingOutbox:
    session_id: str = "s"
    replies: list[tuple[int, m.Error, bool]] = field(default_factory=list)

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        error = codec.decode(frame)
        assert isinstance(error, m.Error)
        self.replies.append((rid, error, ends_sign_in))

    def push(self, frame: bytes) -> None:
        raise AssertionError("nothing is pushed")

    def signed_in(self, rid: int, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        raise AssertionError("nothing signs in")

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        raise AssertionError("nothing is closed")


def command(outbox: RecordingOutbox, session_id: str, request: m.Request) -> Command:
    return Command(SessionRef(session_id, "127.0.0.1", outbox), request, "zoe", 7)


def get_self(rid: int) -> m.GetSelf:
    return m.GetSelf(rid=rid)


async def test_a_lost_reply_path_answers_every_waiting_request_once() -> None:
    outbox = RecordingOutbox()
    forwarded = ForwardedRequests(deadline_s=30)
    forwarded.add(command(outbox, "s1", get_self(1)))
    forwarded.add(command(outbox, "s1", get_self(2)))
    forwarded.add(command(outbox, "s2", m.Login(rid=3, user_id="zoe", password="p", platform=7)))
    forwarded.replied("s1", 2)
    forwarded.replied("s9", 1)  # another session's rid 1: not this one
    assert len(forwarded) == 2

    forwarded.reply_path_lost("pub/sub connection lost")
    assert [(rid, e.code, sign_in) for rid, e, sign_in in outbox.replies] == [
        (1, ErrorCode.UNAVAILABLE, False),
        (3, ErrorCode.UNAVAILABLE, True),  # a sign-in is answered as one
    ]
    assert outbox.replies[0][1].message == REPLY_LOST
    assert forwarded.answered_unavailable == 2 and len(forwarded) == 0
    forwarded.reply_path_lost("again")  # nothing is answered twice
    assert len(outbox.replies) == 2


async def test_requests_older_than_the_deadline_are_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outbox = RecordingOutbox()
    forwarded = ForwardedRequests(deadline_s=30)
    forwarded.add(command(outbox, "s1", get_self(1)))
    forwarded.add(command(outbox, "s1", get_self(2)))
    await trio.sleep(20)
    forwarded.add(command(outbox, "s1", get_self(1)))  # forwarded again: counted from now
    await trio.sleep(15)
    forwarded.add(command(outbox, "s1", get_self(3)))  # the session has answered rid 2
    assert len(forwarded) == 2
    forwarded.reply_path_lost("lost")
    assert [rid for rid, _, _ in outbox.replies] == [1, 3]
