"""The server's WebSocket layer on real sockets: RFC 6455 rules with their close
codes, control frames inside fragmented messages, the close handshake, the
handshake's answers (extensions declined, origins), and clients written by others
(the ``websockets`` package; a browser-like handshake)."""

from __future__ import annotations

import struct

import pytest
import trio
import websockets.exceptions
import websockets.sync.client
from websockets.typing import Subprotocol
from wsproto.events import CloseConnection, Pong
from wsproto.extensions import PerMessageDeflate

import server
from protocol import messages as m
from protocol.codec import ClientCodec
from protocol.errors import CloseCode
from tests.conftest import StartNode
from tests.rawws import BINARY, CLOSE, CONTINUATION, PING, RawClient, Rejected
from tests.support import Connect, signed_in

PROTOCOL_ERROR = 1002
PING_REQUEST = ClientCodec().encode(m.Ping(rid=7))


async def _closed_with(
    node: server.RunningNode, *frames: tuple[int, bytes, dict[str, object]]
) -> int:
    """Send ``frames`` on a new session; the close code the server answers with."""
    raw = await RawClient.open(node.url)
    try:
        for opcode, payload, options in frames:
            await raw.send_frame(opcode, payload, **options)  # type: ignore[arg-type]
        return await raw.wait_closed()
    finally:
        await raw.aclose()


async def _next_reply(raw: RawClient) -> m.ServerMessage:
    return ClientCodec().decode(await raw.next_message())


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(BINARY, PING_REQUEST, {"masked": False})], PROTOCOL_ERROR, id="unmasked"),
        pytest.param([(CONTINUATION, b"x", {})], PROTOCOL_ERROR, id="continuation-first"),
        pytest.param([(BINARY, b"x", {"rsv": 4})], PROTOCOL_ERROR, id="reserved-bit"),
        pytest.param([(0x3, b"x", {})], PROTOCOL_ERROR, id="reserved-opcode"),
        pytest.param([(PING, b"p" * 126, {})], PROTOCOL_ERROR, id="control-over-125"),
        pytest.param([(PING, b"p", {"fin": False})], PROTOCOL_ERROR, id="fragmented-control"),
        pytest.param(
            [(BINARY, b"a", {"fin": False}), (BINARY, b"b", {})],
            PROTOCOL_ERROR,
            id="new-mid-message",
        ),
        pytest.param([(CLOSE, struct.pack("!H", 999), {})], PROTOCOL_ERROR, id="close-code-999"),
        pytest.param([(CLOSE, struct.pack("!H", 1005), {})], PROTOCOL_ERROR, id="close-code-1005"),
        pytest.param([(CLOSE, b"\x03", {})], PROTOCOL_ERROR, id="close-one-byte"),
        pytest.param([(0x1, b"{}", {})], CloseCode.UNSUPPORTED_DATA, id="text"),
    ],
)
async def test_rule_breaking_frames_get_their_close_code(
    node: server.RunningNode, frames: list[tuple[int, bytes, dict[str, object]]], code: int
) -> None:
    assert await _closed_with(node, *frames) == code


async def test_control_frames_inside_a_fragmented_message(node: server.RunningNode) -> None:
    raw = await RawClient.open(node.url)
    try:
        third = len(PING_REQUEST) // 3
        await raw.send_frame(BINARY, PING_REQUEST[:third], fin=False)
        await raw.send_frame(PING, b"between")
        await raw.send_frame(CONTINUATION, PING_REQUEST[third : 2 * third], fin=False)
        await raw.send_frame(0xA, b"unsolicited pong")  # ignored, as RFC 6455 allows
        await raw.send_frame(CONTINUATION, PING_REQUEST[2 * third :])
        with trio.fail_after(10):
            pong = await raw.next_event()
            assert isinstance(pong, Pong) and bytes(pong.payload) == b"between"
            reply = await _next_reply(raw)
        assert isinstance(reply, m.Pong) and reply.rid == 7
    finally:
        await raw.aclose()


async def test_close_with_and_without_a_code_is_answered(node: server.RunningNode) -> None:
    for payload, answered in ((struct.pack("!H", 1000) + b"bye", 1000), (b"", 1005)):
        raw = await RawClient.open(node.url)
        try:
            await raw.send_frame(CLOSE, payload)
            with trio.fail_after(10):
                event = await raw.next_event()
            assert isinstance(event, CloseConnection)
            assert event.code == answered  # 1005: the server's close carries no code either
        finally:
            await raw.aclose()


async def test_the_server_closes_first_with_going_away_at_shutdown(
    start_node: StartNode,
) -> None:
    node = await start_node()
    raw = await RawClient.open(node.url)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.stop)
            assert await raw.wait_closed() == CloseCode.GOING_AWAY
    finally:
        await raw.aclose()


async def test_extensions_are_declined_to_a_browser_like_client(
    node: server.RunningNode,
) -> None:
    headers = [
        (b"Origin", b"https://app.example.com"),
        (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"),
        (b"Cache-Control", b"no-cache"),
    ]
    raw = await RawClient.open(node.url, extra_headers=headers, extensions=[PerMessageDeflate()])
    try:
        assert raw.subprotocol == "parley.v1"
        assert raw.extensions == []
        await raw.send(PING_REQUEST)
        reply = await _next_reply(raw)
        assert isinstance(reply, m.Pong)
    finally:
        await raw.aclose()


async def test_allowed_origins_limit_browsers_and_let_other_clients_in(
    start_node: StartNode,
) -> None:
    node = await start_node(server={"allowed_origins": ["https://app.example.com"]})
    with pytest.raises(Rejected) as refused:
        await RawClient.open(node.url, extra_headers=[(b"Origin", b"https://evil.example.com")])
    assert refused.value.status == 403
    for headers in ([(b"Origin", b"https://app.example.com")], []):
        raw = await RawClient.open(node.url, extra_headers=headers)
        await raw.send(PING_REQUEST)
        assert isinstance(await _next_reply(raw), m.Pong)
        await raw.aclose()


@pytest.mark.parametrize("offer", [("parley.v2",), ()], ids=["other-version", "none"])
async def test_an_unsupported_subprotocol_is_told_by_close_code_4503(
    node: server.RunningNode, offer: tuple[str, ...]
) -> None:
    raw = await RawClient.open(node.url, subprotocols=offer)
    assert raw.subprotocol == (offer[0] if offer else None)
    # A page sends its sign-in as soon as the socket opens: it is read and dropped.
    await raw.send_frame(BINARY, PING_REQUEST)
    with trio.fail_after(10):
        event = await raw.next_event()
    assert isinstance(event, CloseConnection)
    assert event.code == CloseCode.UNSUPPORTED_PROTOCOL
    offered = offer[0] if offer else "none"
    assert event.reason == (
        f"unsupported protocol version (offered: {offered}); this server speaks: parley.v1"
    )
    with trio.fail_after(10):
        assert await raw.stream.receive_some(100) == b""  # then the server's end closes
    await raw.aclose()
    # The refused connection changed nothing: the node serves the next one.
    good = await RawClient.open(node.url)
    await good.send(PING_REQUEST)
    assert isinstance(await _next_reply(good), m.Pong)
    await good.aclose()


async def test_the_websockets_package_client_reads_the_4503_refusal(
    node: server.RunningNode,
) -> None:
    def session() -> tuple[int | None, str | None]:
        with websockets.sync.client.connect(
            node.url, subprotocols=[Subprotocol("parley.v2")], open_timeout=10
        ) as ws:
            try:
                ws.recv(timeout=10)
            except websockets.exceptions.ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code, closed.rcvd.reason
        return None, None

    code, reason = await trio.to_thread.run_sync(session)
    assert code == 4503
    assert reason is not None and reason.startswith("unsupported protocol version")


async def test_the_websockets_package_client_talks_to_the_server(
    node: server.RunningNode, connect: Connect
) -> None:
    bob = await connect(node.url)
    await signed_in(bob, "bob")
    codec = ClientCodec()

    def session() -> tuple[m.ServerMessage, m.ServerMessage, str | None, object]:
        # Its default offer includes permessage-deflate: declined by the server.
        with websockets.sync.client.connect(
            node.url, subprotocols=[Subprotocol("parley.v1")], open_timeout=10
        ) as ws:
            ws.send(codec.encode(m.Register(rid=1, user_id="ada", password="password-1")))
            registered = codec.decode(_binary(ws.recv(timeout=10)))
            ws.send(codec.encode(m.Ping(rid=2)))
            pong = codec.decode(_binary(ws.recv(timeout=10)))
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            return registered, pong, ws.subprotocol, extensions

    registered, pong, subprotocol, extensions = await trio.to_thread.run_sync(session)
    assert isinstance(registered, m.Registered) and isinstance(pong, m.Pong)
    assert subprotocol == "parley.v1" and extensions is None


def _binary(frame: str | bytes) -> bytes:
    assert isinstance(frame, bytes), f"a text frame from the server: {frame!r}"
    return frame
