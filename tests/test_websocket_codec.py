"""The RFC 6455 frame codec (protocol/websocket.py) against the RFC, byte by byte.

Client frames are built here with a masking loop of their own, independent of the
codec's unmasking, so the two check each other.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import CloseCode
from protocol.websocket import (
    INVALID_PAYLOAD,
    PROTOCOL_ERROR,
    BinaryMessage,
    Close,
    Event,
    FrameDecoder,
    Ping,
    Pong,
    ProtocolViolation,
    encode_binary,
    encode_close,
    encode_ping,
    encode_pong,
    valid_close_code,
)

KEY = b"\x37\xfa\x21\x3d"  # the masking key of RFC 6455 5.7's examples
LIMIT = 1 << 17

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def mask(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = KEY,
    length_bytes: int | None = None,
) -> bytes:
    """A client frame; ``length_bytes`` (0, 2 or 8) forces the length encoding."""
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 0x10000 else 8
    masked = 0x80 if key is not None else 0
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    if length_bytes == 0:
        head += bytes([masked | n])
    elif length_bytes == 2:
        head += bytes([masked | 126]) + struct.pack("!H", n)
    else:
        head += bytes([masked | 127]) + struct.pack("!Q", n)
    if key is None:
        return head + payload
    return head + key + mask(payload, key)


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(OP_CLOSE, struct.pack("!H", code) + reason)


def decode(data: bytes, limit: int = LIMIT) -> list[Event]:
    return FrameDecoder(max_message_bytes=limit).feed(data)


def violation(data: bytes, limit: int = LIMIT) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        decode(data, limit)
    return info.value


def run(chunks: Sequence[bytes], limit: int = LIMIT) -> tuple[list[Event], int | None]:
    """The events of ``chunks`` fed one by one, and the close code of a violation."""
    decoder = FrameDecoder(max_message_bytes=limit)
    events: list[Event] = []
    for chunk in chunks:
        try:
            events += decoder.feed(chunk)
        except ProtocolViolation as exc:
            return events + list(exc.events), exc.close_code
    return events, None


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


class TestRfcExamples:
    """RFC 6455 section 5.7, the text examples sent as binary."""

    def test_single_masked_frame(self) -> None:
        data = bytes.fromhex("828537fa213d7f9f4d5158")
        assert decode(data) == [BinaryMessage(b"Hello")]

    def test_single_masked_text_frame_is_refused_with_1003(self) -> None:
        assert violation(bytes.fromhex("818537fa213d7f9f4d5158")).close_code == 1003

    def test_unmasked_frame_is_refused(self) -> None:
        assert violation(bytes.fromhex("820548656c6c6f")).close_code == PROTOCOL_ERROR

    def test_fragmented_message(self) -> None:
        data = frame(OP_BINARY, b"Hel", fin=False) + frame(OP_CONT, b"lo")
        assert decode(data) == [BinaryMessage(b"Hello")]

    def test_ping_and_masked_pong(self) -> None:
        ping = bytes.fromhex("89") + bytes([0x85]) + KEY + mask(b"Hello", KEY)
        pong = bytes.fromhex("8a8537fa213d7f9f4d5158")
        assert decode(ping + pong) == [Ping(b"Hello"), Pong(b"Hello")]

    def test_server_ping_and_pong(self) -> None:
        assert encode_ping(b"Hello") == bytes.fromhex("890548656c6c6f")
        assert encode_pong(b"Hello") == bytes.fromhex("8a0548656c6c6f")

    def test_256_bytes_with_a_16_bit_length(self) -> None:
        payload = bytes(range(256))
        data = frame(OP_BINARY, payload)
        assert data[:4] == bytes.fromhex("82fe0100")
        assert decode(data) == [BinaryMessage(payload)]
        assert encode_binary(payload)[:4] == bytes.fromhex("827e0100")

    def test_64_kib_with_a_64_bit_length(self) -> None:
        payload = random.Random(1).randbytes(65536)
        data = frame(OP_BINARY, payload)
        assert data[:10] == bytes.fromhex("82ff0000000000010000")
        assert decode(data) == [BinaryMessage(payload)]
        assert encode_binary(payload)[:10] == bytes.fromhex("827f0000000000010000")


class TestFramingRules:
    @pytest.mark.parametrize("rsv", [1, 2, 4, 7])
    def test_reserved_bits(self, rsv: int) -> None:
        assert violation(frame(OP_BINARY, b"x", rsv=rsv)).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcodes(self, opcode: int) -> None:
        assert violation(frame(opcode, b"x")).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize("opcode", [OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_CLOSE])
    def test_unmasked_frames(self, opcode: int) -> None:
        prefix = frame(OP_BINARY, b"a", fin=False) if opcode == OP_CONT else b""
        assert violation(prefix + frame(opcode, key=None)).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_control_frame_over_125_bytes(self, opcode: int) -> None:
        assert violation(frame(opcode, b"\x03\xe8" + bytes(124))).close_code == PROTOCOL_ERROR
        assert decode(frame(opcode, b"\x03\xe8" + bytes(123)))  # 125 is allowed

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_fragmented_control_frame(self, opcode: int) -> None:
        assert violation(frame(opcode, fin=False)).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize("fin", [True, False])
    def test_continuation_without_a_message(self, fin: bool) -> None:
        assert violation(frame(OP_CONT, b"x", fin=fin)).close_code == PROTOCOL_ERROR

    def test_continuation_after_a_finished_message(self) -> None:
        data = frame(OP_BINARY, b"a") + frame(OP_CONT, b"b")
        exc = violation(data)
        assert exc.close_code == PROTOCOL_ERROR
        assert exc.events == (BinaryMessage(b"a"),)

    def test_new_message_inside_a_fragmented_one(self) -> None:
        data = frame(OP_BINARY, b"a", fin=False) + frame(OP_BINARY, b"b")
        assert violation(data).close_code == PROTOCOL_ERROR

    def test_text_frame_refused_from_its_header(self) -> None:
        decoder = FrameDecoder(max_message_bytes=LIMIT)
        with pytest.raises(ProtocolViolation) as info:
            decoder.feed(frame(OP_TEXT, bytes(1000))[:2])
        assert info.value.close_code == CloseCode.UNSUPPORTED_DATA
        assert CloseCode.UNSUPPORTED_DATA.value == 1003

    def test_text_continuation_is_refused(self) -> None:
        data = frame(OP_BINARY, b"a", fin=False) + frame(OP_TEXT, b"b")
        assert violation(data).close_code == 1003

    def test_64_bit_length_with_the_top_bit(self) -> None:
        head = bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63 | 70000) + KEY
        assert violation(head).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize(("size", "length_bytes"), [(0, 2), (125, 2), (125, 8), (65535, 8)])
    def test_non_minimal_lengths(self, size: int, length_bytes: int) -> None:
        data = frame(OP_BINARY, bytes(size), length_bytes=length_bytes)
        assert violation(data).close_code == PROTOCOL_ERROR

    def test_minimal_length_boundaries(self) -> None:
        for size in (0, 125, 126, 65535, 65536):
            assert decode(frame(OP_BINARY, bytes(size))) == [BinaryMessage(bytes(size))]

    def test_violation_is_final(self) -> None:
        decoder = FrameDecoder(max_message_bytes=LIMIT)
        with pytest.raises(ProtocolViolation):
            decoder.feed(frame(OP_BINARY, key=None))
        assert decoder.feed(frame(OP_BINARY, b"x")) == []


class TestMessageSize:
    def test_too_big_decided_from_the_header(self) -> None:
        decoder = FrameDecoder(max_message_bytes=1000)
        with pytest.raises(ProtocolViolation) as info:
            decoder.feed(frame(OP_BINARY, bytes(1001))[:8])  # the header only
        assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG
        assert CloseCode.MESSAGE_TOO_BIG.value == 1009

    def test_64_bit_length_too_big_from_the_header(self) -> None:
        head = bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 40) + KEY
        assert violation(head).close_code == 1009

    def test_exactly_the_limit(self) -> None:
        assert decode(frame(OP_BINARY, bytes(1000)), 1000) == [BinaryMessage(bytes(1000))]

    def test_limit_counts_every_fragment(self) -> None:
        ok = frame(OP_BINARY, bytes(600), fin=False) + frame(OP_CONT, bytes(400))
        assert decode(ok, 1000) == [BinaryMessage(bytes(1000))]
        decoder = FrameDecoder(max_message_bytes=1000)
        first = frame(OP_BINARY, bytes(600), fin=False) + frame(OP_CONT, bytes(300), fin=False)
        assert decoder.feed(first) == []
        with pytest.raises(ProtocolViolation) as info:
            decoder.feed(frame(OP_CONT, bytes(101))[:2])
        assert info.value.close_code == 1009

    def test_limit_applies_per_message(self) -> None:
        data = frame(OP_BINARY, bytes(1000)) * 3
        assert decode(data, 1000) == [BinaryMessage(bytes(1000))] * 3

    def test_control_frames_do_not_count(self) -> None:
        data = (
            frame(OP_BINARY, bytes(10), fin=False)
            + frame(OP_PING, bytes(100))
            + frame(OP_CONT, bytes(10))
        )
        assert decode(data, 20) == [Ping(bytes(100)), BinaryMessage(bytes(20))]


class TestClose:
    def test_without_payload(self) -> None:
        assert decode(frame(OP_CLOSE)) == [Close(None, "")]

    def test_with_a_code(self) -> None:
        assert decode(close_frame(1000)) == [Close(1000, "")]

    def test_with_a_reason(self) -> None:
        reason = "fin de séance"
        assert decode(close_frame(4001, reason.encode())) == [Close(4001, reason)]

    def test_one_byte_payload(self) -> None:
        assert violation(frame(OP_CLOSE, b"\x03")).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize(
        "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]
    )
    def test_codes_not_allowed_on_the_wire(self, code: int) -> None:
        assert violation(close_frame(code)).close_code == PROTOCOL_ERROR

    @pytest.mark.parametrize(
        "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 4999]
    )
    def test_codes_allowed_on_the_wire(self, code: int) -> None:
        assert decode(close_frame(code)) == [Close(code, "")]

    def test_reason_not_utf8(self) -> None:
        exc = violation(close_frame(1000, b"\xff\xfe"))
        assert exc.close_code == INVALID_PAYLOAD == 1007

    def test_nothing_after_close(self) -> None:
        decoder = FrameDecoder(max_message_bytes=LIMIT)
        data = frame(OP_PING, b"1") + close_frame(1000) + frame(OP_BINARY, b"x") + b"\xff" * 9
        assert decoder.feed(data) == [Ping(b"1"), Close(1000, "")]
        assert decoder.feed(frame(OP_BINARY, b"x")) == []
        assert decoder.feed(b"garbage") == []

    def test_close_inside_a_fragmented_message(self) -> None:
        data = frame(OP_BINARY, b"a", fin=False) + close_frame(1001)
        assert decode(data) == [Close(1001, "")]


class TestFragments:
    def test_control_frames_interleaved(self) -> None:
        data = (
            frame(OP_BINARY, b"He", fin=False)
            + frame(OP_PING, b"p1")
            + frame(OP_CONT, b"l", fin=False)
            + frame(OP_PONG, b"q")
            + frame(OP_PING)
            + frame(OP_CONT, b"", fin=False)
            + frame(OP_CONT, b"lo")
            + frame(OP_BINARY, b"next")
        )
        assert decode(data) == [
            Ping(b"p1"),
            Pong(b"q"),
            Ping(b""),
            BinaryMessage(b"Hello"),
            BinaryMessage(b"next"),
        ]

    def test_large_fragments(self) -> None:
        parts = [random.Random(i).randbytes(n) for i, n in enumerate((70000, 300, 5))]
        data = (
            frame(OP_BINARY, parts[0], fin=False)
            + frame(OP_CONT, parts[1], fin=False)
            + frame(OP_CONT, parts[2])
        )
        assert decode(data) == [BinaryMessage(b"".join(parts))]

    def test_byte_at_a_time_equals_whole(self) -> None:
        data = (
            frame(OP_BINARY, bytes(range(200)))
            + frame(OP_BINARY, b"ab", fin=False)
            + frame(OP_PING, b"ping")
            + frame(OP_CONT, bytes(300))
            + frame(OP_BINARY, random.Random(2).randbytes(65536))
            + frame(OP_PONG)
            + close_frame(1000, b"bye")
        )
        whole = decode(data)
        assert len(whole) == 6
        assert run([data[i : i + 1] for i in range(len(data))]) == (whole, None)

    def test_bytearray_input_split_across_feeds(self) -> None:
        data = frame(OP_BINARY, b"payload")
        decoder = FrameDecoder(max_message_bytes=LIMIT)
        assert decoder.feed(bytearray(data[:5])) == []
        assert decoder.feed(bytearray(data[5:])) == [BinaryMessage(b"payload")]


class TestEncoding:
    def test_binary_headers(self) -> None:
        assert encode_binary(b"") == b"\x82\x00"
        assert encode_binary(b"abc") == b"\x82\x03abc"
        assert encode_binary(bytes(125))[:2] == b"\x82\x7d"
        assert encode_binary(bytes(126))[:4] == b"\x82\x7e\x00\x7e"
        assert encode_binary(bytes(65535))[:4] == b"\x82\x7e\xff\xff"

    def test_close(self) -> None:
        assert encode_close(None) == b"\x88\x00"
        assert encode_close(1000) == b"\x88\x02\x03\xe8"
        assert encode_close(CloseCode.SLOW_CONSUMER, "slow") == b"\x88\x06\x0f\xa2slow"

    def test_close_reason_cut_at_a_character_boundary(self) -> None:
        frame_ = encode_close(1000, "é" * 100)  # 200 bytes of UTF-8
        assert frame_[1] == 2 + 122
        assert frame_[4:].decode() == "é" * 61
        assert encode_close(1000, "a" * 200)[1] == 125

    def test_refusals(self) -> None:
        with pytest.raises(ValueError, match="125"):
            encode_ping(bytes(126))
        with pytest.raises(ValueError, match="125"):
            encode_pong(bytes(126))
        with pytest.raises(ValueError, match="needs a close code"):
            encode_close(None, "why")
        for code in (1005, 1006, 1015, 999, 5000):
            with pytest.raises(ValueError, match="may not be sent"):
                encode_close(code)

    def test_valid_close_code(self) -> None:
        allowed = [c for c in range(70000) if valid_close_code(c)]
        assert allowed == [
            *range(1000, 1004),
            *range(1007, 1015),
            *range(3000, 5000),
        ]


# Property tests.


def as_client(server_frame: bytes, key: bytes) -> bytes:
    """A server frame as a client would send it: the same header, masked."""
    n = server_frame[1] & 0x7F
    head = 2 + (2 if n == 126 else 8 if n == 127 else 0)
    return (
        server_frame[:1]
        + bytes([server_frame[1] | 0x80])
        + server_frame[2:head]
        + key
        + mask(server_frame[head:], key)
    )


keys = st.binary(min_size=4, max_size=4)
payloads = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.integers(126, 66000), st.integers(0, 2**32)).map(
        lambda args: random.Random(args[1]).randbytes(args[0])
    ),
)
control_events = st.one_of(
    st.binary(max_size=125).map(Ping),
    st.binary(max_size=125).map(Pong),
)
close_events = st.one_of(
    st.just(Close(None, "")),
    st.builds(
        Close,
        st.one_of(st.integers(1000, 1003), st.integers(1007, 1014), st.integers(3000, 4999)),
        st.text(max_size=40).filter(lambda r: len(r.encode()) <= 123),
    ),
)


def control_frame(event: Event, key: bytes) -> bytes:
    if isinstance(event, Ping):
        return frame(OP_PING, event.payload, key=key)
    if isinstance(event, Pong):
        return frame(OP_PONG, event.payload, key=key)
    assert isinstance(event, Close)
    if event.code is None:
        return frame(OP_CLOSE, key=key)
    return frame(OP_CLOSE, struct.pack("!H", event.code) + event.reason.encode(), key=key)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Event]]:
    """A valid client byte stream of messages and control frames, and its events."""
    data = b""
    events: list[Event] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            event = draw(control_events)
            data += control_frame(event, draw(keys))
            events.append(event)
            continue
        message = draw(payloads)
        cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=4)))
        pieces = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
        for i, piece in enumerate(pieces):
            opcode = OP_BINARY if i == 0 else OP_CONT
            data += frame(opcode, piece, fin=i == len(pieces) - 1, key=draw(keys))
            if i < len(pieces) - 1:
                for control in draw(st.lists(control_events, max_size=2)):
                    data += control_frame(control, draw(keys))
                    events.append(control)
        events.append(BinaryMessage(message))
    if draw(st.booleans()):
        close = draw(close_events)
        data += control_frame(close, draw(keys))
        events.append(close)
        data += draw(st.binary(max_size=20))  # ignored after the close
    return data, events


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=12))
def test_random_bytes_raise_only_protocol_violation(data: bytes, cuts: list[int]) -> None:
    whole = run([data], limit=300)
    assert run(split(data, cuts), limit=300) == whole


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.tuples(
                st.sampled_from([OP_CONT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE, OP_TEXT, 0x3]),
                st.binary(max_size=130),
                st.booleans(),
                st.booleans(),
            ).map(lambda f: frame(f[0], f[1], fin=f[2], key=KEY if f[3] else None)),
        ),
        max_size=8,
    ),
    st.lists(st.integers(0, 2000), max_size=12),
)
def test_frame_like_garbage_raises_only_protocol_violation(
    parts: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(parts)
    assert run(split(data, cuts), limit=100) == run([data], limit=100)


@settings(max_examples=200, deadline=None)
@given(streams(), st.lists(st.integers(0, 2**20), max_size=16))
def test_valid_streams_decode_to_their_events_in_any_split(
    stream: tuple[bytes, list[Event]], cuts: list[int]
) -> None:
    data, events = stream
    assert run(split(data, cuts)) == (events, None)


@settings(max_examples=200, deadline=None)
@given(st.one_of(payloads.map(BinaryMessage), control_events, close_events), keys)
def test_encode_mask_decode_round_trip(event: Event, key: bytes) -> None:
    if isinstance(event, BinaryMessage):
        encoded = encode_binary(event.data)
    elif isinstance(event, Ping):
        encoded = encode_ping(event.payload)
    elif isinstance(event, Pong):
        encoded = encode_pong(event.payload)
    else:
        encoded = encode_close(event.code, event.reason)
    assert decode(as_client(encoded, key)) == [event]


class TestAgainstWsproto:
    """wsproto's frame layer (installed with trio-websocket) as an independent peer."""

    def test_wsproto_client_frames_decode(self) -> None:
        frames = pytest.importorskip("wsproto.frame_protocol")
        client = frames.FrameProtocol(client=True, extensions=[])
        rng = random.Random(5)
        data = b""
        expected: list[Event] = []
        for size in (0, 5, 125, 126, 200, 65535, 65536, 100000):
            payload = rng.randbytes(size)
            data += client.send_data(payload, fin=True)
            expected.append(BinaryMessage(payload))
        data += client.send_data(b"ab", fin=False) + client.ping(b"hi")
        data += client.send_data(b"cd", fin=True) + client.pong(b"x")
        data += client.close(frames.CloseReason.NORMAL_CLOSURE, "bye é")
        expected += [Ping(b"hi"), BinaryMessage(b"abcd"), Pong(b"x"), Close(1000, "bye é")]
        chunks = [data[i : i + 1400] for i in range(0, len(data), 1400)]
        assert run(chunks) == (expected, None)

    def test_server_frames_decode_in_wsproto(self) -> None:
        frames = pytest.importorskip("wsproto.frame_protocol")
        client = frames.FrameProtocol(client=True, extensions=[])
        payload = random.Random(6).randbytes(70000)
        client.receive_bytes(
            encode_binary(payload)
            + encode_ping(b"p")
            + encode_pong(b"q")
            + encode_close(CloseCode.SLOW_CONSUMER, "slow " * 40)
        )
        received = [(f.opcode, f.payload) for f in client.received_frames()]
        assert received == [
            (frames.Opcode.BINARY, payload),
            (frames.Opcode.PING, b"p"),
            (frames.Opcode.PONG, b"q"),
            (frames.Opcode.CLOSE, (4002, ("slow " * 40)[:123])),
        ]
