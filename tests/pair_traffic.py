"""Pairs of users sending through a storage disruption (a failover, a resharding):
sender ``i`` on node ``i % 2`` and its receiver on the other, each send resent under
its client msg id while answered ``UNAVAILABLE``; afterwards every acknowledged
message must be stored once, at the seq it was acknowledged with, gap-free."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import trio

from client import ErrorCode, ParleyClient, ParleyError, Platform
from protocol import messages as m
from server import RunningNode
from tests.support import Connect, signed_in


class PairTraffic:
    def __init__(
        self, senders: list[ParleyClient], receivers: list[ParleyClient], messages: int
    ) -> None:
        self.senders = senders
        self.receivers = receivers
        self.messages = messages
        self.acknowledged: dict[int, dict[str, int]] = {i: {} for i in range(len(senders))}
        """Per pair: client msg id -> the seq it was acknowledged with."""
        self.refusals: list[str] = []
        """Client msg ids of the attempts answered UNAVAILABLE (or not in time)."""
        self._deadline = time.monotonic() + 120

    @classmethod
    async def open(
        cls, nodes: Sequence[RunningNode], connect: Connect, pairs: int, messages: int
    ) -> PairTraffic:
        senders, receivers = [], []
        for i in range(pairs):
            sender = await connect(nodes[i % 2].url, request_timeout=10.0)
            await signed_in(sender, f"sender{i}", Platform.IOS)
            receiver = await connect(nodes[(i + 1) % 2].url, request_timeout=10.0)
            await signed_in(receiver, f"receiver{i}", Platform.IOS)
            senders.append(sender)
            receivers.append(receiver)
        return cls(senders, receivers, messages)

    @staticmethod
    def conversation(i: int) -> str:
        return m.single_conversation_id(f"sender{i}", f"receiver{i}")

    async def chat(self, i: int, acknowledged: Callable[[int], None] = lambda count: None) -> None:
        """Pair ``i`` sends its messages; ``acknowledged(count)`` after each."""
        for n in range(self.messages):
            cmid = f"p{i}-m{n}"
            self.acknowledged[i][cmid] = await self._send(i, cmid)
            acknowledged(n + 1)

    async def _send(self, i: int, cmid: str) -> int:
        while True:
            try:
                sent = await self.senders[i].send_message(
                    m.TextContent(text=cmid), to_user_id=f"receiver{i}", client_msg_id=cmid
                )
                return sent.seq
            except (ParleyError, trio.TooSlowError) as exc:
                if isinstance(exc, ParleyError) and exc.code != ErrorCode.UNAVAILABLE:
                    raise
                if time.monotonic() > self._deadline:
                    raise
                self.refusals.append(cmid)
                await trio.sleep(0.2)

    async def assert_stored_as_acknowledged(self) -> None:
        for i, receiver in enumerate(self.receivers):
            stored: list[m.ChatMessage] = []
            while len(stored) < self.messages + 1:
                page = await receiver.pull_messages(self.conversation(i), from_seq=len(stored) + 1)
                stored.extend(page.items)
                if page.is_end or not page.items:
                    break
            seqs = [message.seq for message in stored]
            assert seqs == list(range(1, len(stored) + 1)), f"pair {i}: seqs not gap-free"
            by_cmid = {message.client_msg_id: message.seq for message in stored}
            assert len(by_cmid) == len(stored), f"pair {i}: a message stored twice"
            assert by_cmid == self.acknowledged[i], (
                f"pair {i}: an acknowledged message moved or is lost"
            )
