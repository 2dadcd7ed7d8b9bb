"""Peers that break the WebSocket protocol cannot end another session or the node.

Each test drives hostile frame sequences on sessions that never signed in, then
checks that a signed-in pair on the same node still exchanges messages. The node
runs in the test's own nursery, so a failure that escaped one session would fail
the test with it.
"""

from __future__ import annotations

import contextlib
import logging
import random

import pytest
import trio

import server
from client import ParleyClient
from protocol import messages as m
from protocol.errors import CloseCode
from settings import SessionSettings
from tests.rawws import BINARY, CLOSE, CONTINUATION, PING, TEXT, RawClient
from tests.support import Connect, signed_in

LIMIT = SessionSettings().max_frame_bytes
"""The default largest message a session reads."""
FUZZ_SEED = 20261201
FUZZ_SESSIONS = 40
"""Bounded: each fuzzed session sends at most ``MAX_FRAMES`` frames."""
MAX_FRAMES = 8


async def _pair(node: server.RunningNode, connect: Connect) -> tuple[ParleyClient, ParleyClient]:
    alice = await connect(node.url)
    await signed_in(alice, "alice")
    bob = await connect(node.url)
    await signed_in(bob, "bob")
    return alice, bob


async def _pair_still_talks(alice: ParleyClient, bob: ParleyClient, text: str) -> None:
    sent = await alice.send_text(text, to_user_id="bob")
    pushed = await bob.next_event(m.NewMessage, timeout=10)
    assert pushed.message.seq == sent.seq
    assert isinstance(pushed.message.content, m.TextContent)
    assert pushed.message.content.text == text


async def _hostile_session(url: str, frames: list[tuple[int, bytes, bool]]) -> None:
    """Send ``frames`` as fast as possible, then read until the server is done with us."""
    raw = await RawClient.open(url)
    try:
        for opcode, payload, fin in frames:
            try:
                await raw.send_frame(opcode, payload, fin)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                break  # the server has already closed the connection: as it may
        with trio.move_on_after(10):
            await _drain(raw)
    finally:
        await raw.aclose()


async def _drain(raw: RawClient) -> None:
    while True:
        try:
            data = await raw.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return


async def test_text_then_oversize_frame_leaves_the_node_up(
    node: server.RunningNode, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """The sequence that once stopped the node: a text frame (closed with 1003) and at
    once a frame over the limit. The first violation decides the close code; nothing
    after it is read, and no session fails."""
    caplog.set_level(logging.WARNING, logger="actors.node.gateway")
    alice, bob = await _pair(node, connect)
    for round_ in range(20):
        raw = await RawClient.open(node.url)
        try:
            await raw.send_frame(TEXT, b'{"t":"ping"}')
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await raw.send_frame(BINARY, b"\xc1" * (LIMIT + 10))
            assert await raw.wait_closed() == CloseCode.UNSUPPORTED_DATA
        finally:
            await raw.aclose()
        if round_ % 5 == 0:
            await _pair_still_talks(alice, bob, f"after round {round_}")
    await _pair_still_talks(alice, bob, "after every round")
    assert node.gateway.connection_count == 2
    failures = [r.getMessage() for r in caplog.records if r.name == "actors.node.gateway"]
    assert not failures, failures


async def test_fragmented_oversize_message_after_close_leaves_the_node_up(
    node: server.RunningNode, connect: Connect
) -> None:
    alice, bob = await _pair(node, connect)
    half = b"\x00" * (LIMIT // 2 + 1)
    await _hostile_session(
        node.url,
        [
            (TEXT, b"x", True),
            (BINARY, half, False),
            (CONTINUATION, half, False),
            (CONTINUATION, half, True),
        ],
    )
    await _hostile_session(
        node.url,
        [(CLOSE, b"\x03\xe8", True), (BINARY, half, False), (CONTINUATION, half, True)],
    )
    await _pair_still_talks(alice, bob, "still here")


def _fuzzed_frames(rng: random.Random) -> list[tuple[int, bytes, bool]]:
    choices: list[tuple[int, bytes, bool]] = [
        (TEXT, b"hello", True),
        (BINARY, b"\xc1" * (LIMIT + 1), True),
        (BINARY, b"\x81\xa1t\xa4ping", True),
        (BINARY, b"\x00" * (LIMIT // 2 + 1), False),
        (CONTINUATION, b"\x00" * (LIMIT // 2 + 1), False),
        (CONTINUATION, b"\x00" * 10, True),
        (PING, b"p", True),
        (PING, b"x" * 200, True),  # a control frame over 125 bytes: a protocol error
        (CLOSE, b"\x03\xe8", True),
        (CLOSE, b"\x00", True),  # a close payload of one byte: a protocol error
        (0x3, b"reserved", True),  # a reserved opcode
    ]
    return [rng.choice(choices) for _ in range(rng.randint(1, MAX_FRAMES))]


async def test_fuzzed_frame_sequences_leave_the_node_up(
    node: server.RunningNode, connect: Connect
) -> None:
    alice, bob = await _pair(node, connect)
    rng = random.Random(FUZZ_SEED)
    sequences = [_fuzzed_frames(rng) for _ in range(FUZZ_SESSIONS)]
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for frames in sequences[: FUZZ_SESSIONS // 2]:
                nursery.start_soon(_hostile_session, node.url, frames)
            await _pair_still_talks(alice, bob, "during the fuzz")
        for frames in sequences[FUZZ_SESSIONS // 2 :]:
            await _hostile_session(node.url, frames)
    await _pair_still_talks(alice, bob, "after the fuzz")
    assert node.gateway.connection_count == 2
