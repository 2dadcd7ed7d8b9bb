"""The server's WebSocket opening handshake (``protocol.handshake``), without sockets.

Requests are written out as bytes and fed to :class:`ServerHandshake`; every
response is read back with an h11 client connection, so that it is checked to be
valid HTTP/1.1 by a parser other than the code that wrote it.
"""

from __future__ import annotations

import re

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.handshake import (
    DEFAULT_MAX_HEAD_BYTES,
    Accepted,
    HandshakeOutcome,
    HandshakePolicy,
    HandshakeUsageError,
    Rejected,
    ServerHandshake,
    normalize_origin,
)
from protocol.messages import PROTOCOL_VERSION

# RFC 6455 section 1.3: the sample nonce and the accept value computed from it.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

BASE_HEADERS: dict[str, str] = {
    "Host": "server.example.com",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": RFC_KEY,
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Protocol": PROTOCOL_VERSION,
}

# What a browser sends (Firefox's Connection header, Chrome's extension offer).
BROWSER_HEADERS: dict[str, str] = {
    **BASE_HEADERS,
    "Connection": "keep-alive, Upgrade",
    "Origin": "https://app.example.com",
    "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    "User-Agent": "Mozilla/5.0",
}

# A masked binary frame carrying b"hi" (what a client sends right after the request).
FRAME = bytes([0x82, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2])


def request(
    headers: dict[str, str | None] | None = None,
    *,
    method: str = "GET",
    target: str = "/",
    version: str = "1.1",
) -> bytes:
    """An upgrade request: ``BASE_HEADERS`` changed by ``headers`` (``None`` drops one)."""
    merged: dict[str, str | None] = {**BASE_HEADERS, **(headers or {})}
    lines = [f"{method} {target} HTTP/{version}"]
    lines += [f"{name}: {value}" for name, value in merged.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def handshake(data: bytes, policy: HandshakePolicy | None = None) -> HandshakeOutcome:
    outcome = ServerHandshake(policy).receive(data)
    assert outcome is not None
    return outcome


def accepted(data: bytes, policy: HandshakePolicy | None = None) -> Accepted:
    outcome = handshake(data, policy)
    assert isinstance(outcome, Accepted), outcome
    return outcome


def rejected(data: bytes, policy: HandshakePolicy | None = None) -> Rejected:
    outcome = handshake(data, policy)
    assert isinstance(outcome, Rejected), outcome
    return outcome


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of ``data``, read by an h11 client."""
    client = h11.Connection(h11.CLIENT)
    upgrade = [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    client.send(h11.Request(method="GET", target="/", headers=upgrade))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    head = client.next_event()
    assert isinstance(head, h11.InformationalResponse | h11.Response), head
    headers = {name.decode(): value.decode() for name, value in head.headers}
    body = b""
    if isinstance(head, h11.Response):
        while not isinstance(event := client.next_event(), h11.EndOfMessage):
            assert isinstance(event, h11.Data), event
            body += event.data
        client.receive_data(b"")
        assert isinstance(client.next_event(), h11.ConnectionClosed)  # nothing after it
    return head.status_code, headers, body


def assert_rejection(outcome: Rejected, status: int) -> dict[str, str]:
    """``outcome`` is a well-formed ``status`` answer with a one-line body; its headers."""
    code, headers, body = parse_response(outcome.response)
    assert outcome.status == code == status
    assert body == (outcome.reason + "\n").encode()
    assert "\n" not in outcome.reason
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["connection"] == "close"
    assert "sec-websocket-accept" not in headers
    return headers


# --------------------------------------------------------------------------
# Accepting
# --------------------------------------------------------------------------


def test_valid_upgrade_is_accepted_with_the_rfc_accept_token() -> None:
    outcome = accepted(request())
    status, headers, _ = parse_response(outcome.response)
    assert status == 101
    assert headers["sec-websocket-accept"] == RFC_ACCEPT
    assert headers["sec-websocket-protocol"] == PROTOCOL_VERSION
    assert headers["upgrade"].lower() == "websocket"
    assert headers["connection"].lower() == "upgrade"
    assert outcome.subprotocol == PROTOCOL_VERSION
    assert outcome.leftover == b""


def test_the_101_response_is_exactly_these_bytes() -> None:
    assert accepted(request()).response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + RFC_ACCEPT.encode() + b"\r\n"
        b"Sec-WebSocket-Protocol: parley.v1\r\n"
        b"\r\n"
    )


def test_a_browser_request_is_accepted_and_its_details_exposed() -> None:
    shake = ServerHandshake()
    outcome = shake.receive(request(dict(BROWSER_HEADERS), target="/ws?client=web"))
    assert isinstance(outcome, Accepted)
    assert shake.outcome is outcome
    assert shake.path == "/ws?client=web"
    assert shake.origin == "https://app.example.com"
    assert shake.proposed_subprotocols == (PROTOCOL_VERSION,)
    assert shake.offered_extensions == ("permessage-deflate",)


def test_permessage_deflate_is_declined() -> None:
    outcome = accepted(request(dict(BROWSER_HEADERS)))
    _, headers, _ = parse_response(outcome.response)
    assert "sec-websocket-extensions" not in headers
    assert b"deflate" not in outcome.response.lower()


def test_parley_v1_is_chosen_among_several_offers_in_several_headers() -> None:
    data = request({"Sec-WebSocket-Protocol": "chat, superchat"}).replace(
        b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: parley.v2 , parley.v1\r\n\r\n"
    )
    shake = ServerHandshake()
    outcome = shake.receive(data)
    assert isinstance(outcome, Accepted)
    assert outcome.subprotocol == PROTOCOL_VERSION
    assert shake.proposed_subprotocols == ("chat", "superchat", "parley.v2", "parley.v1")


@pytest.mark.parametrize(
    "headers",
    [
        {"Upgrade": "WebSocket", "Connection": "upgrade"},
        {"Connection": "keep-alive,Upgrade"},
        {"Upgrade": "websocket, h2c"},
        {"Content-Length": "0"},
    ],
    ids=["header-case", "connection-list", "upgrade-list", "content-length-0"],
)
def test_header_variants_a_client_may_send_are_accepted(headers: dict[str, str | None]) -> None:
    accepted(request(headers))


def test_leftover_bytes_after_the_request_are_returned_intact() -> None:
    trailing = FRAME + bytes(range(256)) + b"GET / HTTP/1.1\r\n\r\n"
    assert accepted(request() + trailing).leftover == trailing


def test_byte_at_a_time_feeding_gives_the_same_outcome() -> None:
    data = request(dict(BROWSER_HEADERS)) + FRAME
    whole = accepted(data)
    shake = ServerHandshake()
    head_length = len(data) - len(FRAME)
    for i in range(head_length - 1):
        assert shake.receive(data[i : i + 1]) is None
    assert shake.outcome is None
    outcome = shake.receive(data[head_length - 1 : head_length + 3])
    assert outcome == Accepted(whole.subprotocol, whole.response, FRAME[:3])


def test_bytes_received_after_the_outcome_are_a_usage_error() -> None:
    shake = ServerHandshake()
    assert shake.receive(request()) is not None
    with pytest.raises(HandshakeUsageError):
        shake.receive(FRAME)


# --------------------------------------------------------------------------
# Refusing: subprotocol (accepted, then closed with 4503 and the reason)
# --------------------------------------------------------------------------


def refused_after_upgrade(outcome: Rejected) -> tuple[dict[str, str], int, str]:
    """The 101's headers, and the close frame's code and reason, of ``outcome``."""
    assert outcome.status == 101
    head, _, frame = outcome.response.partition(b"\r\n\r\n")
    status, headers, _ = parse_response(head + b"\r\n\r\n")
    assert status == 101 and headers["sec-websocket-accept"] == RFC_ACCEPT
    assert frame[0] == 0x88 and frame[1] == len(frame) - 2  # final close, unmasked
    code, reason = int.from_bytes(frame[2:4], "big"), frame[4:].decode()
    assert outcome.close_code == code and outcome.reason == reason
    return headers, code, reason


@pytest.mark.parametrize(
    ("offer", "offered", "echoed"),
    [
        (None, "none", None),
        ("parley.v2", "parley.v2", "parley.v2"),
        ("chat, parley.v0", "chat, parley.v0", "chat"),
    ],
    ids=["absent", "other-version", "several"],
)
def test_without_parley_v1_the_upgrade_is_closed_with_4503_and_the_reason(
    offer: str | None, offered: str, echoed: str | None
) -> None:
    headers, code, reason = refused_after_upgrade(
        rejected(request({"Sec-WebSocket-Protocol": offer}))
    )
    assert code == 4503
    expected = f"unsupported protocol version (offered: {offered}); this server speaks: parley.v1"
    assert reason == expected
    # A browser fails a 101 that names none of the subprotocols it offered.
    assert headers.get("sec-websocket-protocol") == echoed


def test_subprotocols_are_case_sensitive() -> None:
    outcome = rejected(request({"Sec-WebSocket-Protocol": "Parley.V1"}))
    assert outcome.close_code == 4503


def test_a_long_offer_still_fits_a_close_frame() -> None:
    offer = ", ".join(f"proto{i}" for i in range(100))
    _, code, reason = refused_after_upgrade(rejected(request({"Sec-WebSocket-Protocol": offer})))
    assert code == 4503 and reason.startswith("unsupported protocol version (offered: proto0")
    assert len(reason.encode()) <= 123


# --------------------------------------------------------------------------
# Refusing: not a valid WebSocket upgrade
# --------------------------------------------------------------------------


def test_wrong_websocket_version_is_426_naming_version_13() -> None:
    outcome = rejected(request({"Sec-WebSocket-Version": "8"}))
    headers = assert_rejection(outcome, 426)
    assert headers["sec-websocket-version"] == "13"


def test_missing_websocket_version_is_400_naming_version_13() -> None:
    outcome = rejected(request({"Sec-WebSocket-Version": None}))
    headers = assert_rejection(outcome, 400)
    assert headers["sec-websocket-version"] == "13"


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "not base64!not base64!ab",
        "dGhlIHNhbXBsZSBub25jZQ",  # no padding
        "dGhlIHNhbXBsZSBub25jZXg=",  # 17 bytes
        "c2hvcnQ=",  # 5 bytes
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
    ],
    ids=["missing", "empty", "not-base64", "unpadded", "17-bytes", "5-bytes", "twice-as-long"],
)
def test_missing_or_invalid_key_is_400(key: str | None) -> None:
    assert_rejection(rejected(request({"Sec-WebSocket-Key": key})), 400)


def test_two_keys_are_400() -> None:
    data = request().replace(b"\r\n\r\n", f"\r\nSec-WebSocket-Key: {RFC_KEY}\r\n\r\n".encode())
    assert_rejection(rejected(data), 400)


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD", "OPTIONS", "CONNECT"])
def test_a_method_other_than_get_is_400(method: str) -> None:
    outcome = rejected(request(method=method))
    assert_rejection(outcome, 400)
    assert method in outcome.reason


def test_http_1_0_is_400() -> None:
    assert_rejection(rejected(request(version="1.0")), 400)


@pytest.mark.parametrize(
    "headers",
    [
        {"Upgrade": None},
        {"Connection": None},
        {"Upgrade": "h2c"},
        {"Connection": "keep-alive"},
        {"Upgrade": None, "Connection": None, "Sec-WebSocket-Key": None},
    ],
    ids=["no-upgrade", "no-connection", "other-upgrade", "keep-alive", "plain-get"],
)
def test_a_request_that_is_not_an_upgrade_is_400(headers: dict[str, str | None]) -> None:
    outcome = rejected(request(headers))
    assert_rejection(outcome, 400)
    assert "not a WebSocket upgrade" in outcome.reason


@pytest.mark.parametrize(
    "headers",
    [{"Content-Length": "5"}, {"Transfer-Encoding": "chunked"}],
    ids=["length", "chunked"],
)
def test_a_request_with_a_body_is_400(headers: dict[str, str | None]) -> None:
    assert_rejection(rejected(request(headers) + b"hello"), 400)


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n",  # TLS hello
        b"GET\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    ],
    ids=["tls", "no-version", "bad-header", "no-host", "non-ascii-target", "nul-in-value"],
)
def test_malformed_http_is_400(data: bytes) -> None:
    assert_rejection(rejected(data), 400)


def test_a_request_head_over_the_limit_is_431_when_complete() -> None:
    big = request({"X-Padding": "a" * DEFAULT_MAX_HEAD_BYTES})
    assert_rejection(rejected(big), 431)


def test_a_request_head_over_the_limit_is_431_while_incomplete() -> None:
    shake = ServerHandshake()
    start = request()[:-2]  # the head never ends
    assert shake.receive(start) is None
    padding = b"X-Padding: " + b"a" * 1000 + b"\r\n"
    outcome = None
    for _ in range(DEFAULT_MAX_HEAD_BYTES // len(padding) + 2):
        outcome = shake.receive(padding)
        if outcome is not None:
            break
    assert isinstance(outcome, Rejected)
    assert_rejection(outcome, 431)


def test_the_head_limit_is_configurable() -> None:
    data = request()
    policy = HandshakePolicy.build(max_head_bytes=len(data) - 1)
    assert rejected(data, policy).status == 431
    assert isinstance(handshake(data, HandshakePolicy.build(max_head_bytes=len(data))), Accepted)


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"], ids=["nothing", "half"])
def test_the_peer_closing_before_the_head_ends_is_a_rejection(sent: bytes) -> None:
    shake = ServerHandshake()
    if sent:
        assert shake.receive(sent) is None
    outcome = shake.receive(b"")
    assert isinstance(outcome, Rejected)
    assert outcome.peer_closed
    assert_rejection(outcome, 400)


# --------------------------------------------------------------------------
# Origin
# --------------------------------------------------------------------------

APP = HandshakePolicy.build(["https://app.example.com", "http://localhost:3000"])


@pytest.mark.parametrize(
    "origin", ["https://app.example.com", "HTTPS://App.Example.COM:443", "http://localhost:3000"]
)
def test_an_allowed_origin_is_accepted(origin: str) -> None:
    accepted(request({"Origin": origin}), APP)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://localhost:3001",
        "null",
        "https://app.example.com/",
        "",
        "https://app.example.com\xe9",
    ],
)
def test_an_origin_not_allowed_is_403(origin: str) -> None:
    outcome = rejected(request({"Origin": origin}), APP)
    assert_rejection(outcome, 403)
    assert outcome.reason.startswith("origin not allowed: ")


def test_a_request_without_origin_is_allowed_even_with_a_list() -> None:
    shake = ServerHandshake(APP)
    assert isinstance(shake.receive(request({"Origin": None})), Accepted)
    assert shake.origin is None


def test_any_origin_is_accepted_when_the_list_is_empty() -> None:
    for origin in ("https://evil.example.com", "null", "not an origin"):
        accepted(request({"Origin": origin}))


def test_two_origin_headers_are_400() -> None:
    data = request({"Origin": "https://app.example.com"}).replace(
        b"\r\n\r\n", b"\r\nOrigin: https://evil.example.com\r\n\r\n"
    )
    assert_rejection(rejected(data, APP), 400)


def test_origin_is_checked_before_the_subprotocol() -> None:
    data = request({"Origin": "https://evil.example.com", "Sec-WebSocket-Protocol": "x"})
    assert rejected(data, APP).status == 403


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://APP.example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://app.example.com:08443", "https://app.example.com:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("capacitor://localhost", "capacitor://localhost"),
    ],
)
def test_normalize_origin(text: str, normal: str) -> None:
    assert normalize_origin(text) == normal


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "app.example.com",
        "https://",
        "https://app.example.com/",
        "https://app.example.com/app",
        "https://app.example.com?x",
        "https://user@app.example.com",
        "https://app.example.com:0",
        "https://app.example.com:65536",
        "https://app.example.com:",
        " https://app.example.com",
        "https://app.example.com\n",
        "https://bücher.example",
    ],
)
def test_normalize_origin_refuses_what_is_not_an_origin(text: str) -> None:
    assert normalize_origin(text) is None


def test_policy_refuses_a_bad_origin() -> None:
    with pytest.raises(ValueError, match=re.escape("https://app.example.com/")):
        HandshakePolicy.build(["https://app.example.com/"])


# --------------------------------------------------------------------------
# Any input: only the typed outcomes
# --------------------------------------------------------------------------


def feed(chunks: list[bytes], policy: HandshakePolicy | None = None) -> HandshakeOutcome | None:
    """Feed ``chunks`` until an outcome; check it is one of the typed ones."""
    shake = ServerHandshake(policy)
    for chunk in chunks:
        if not chunk:
            continue  # b"" would mean the peer closed
        outcome = shake.receive(chunk)
        if outcome is not None:
            assert isinstance(outcome, Accepted | Rejected)
            if isinstance(outcome, Rejected):
                assert 400 <= outcome.status < 500
                parse_response(outcome.response)
            return outcome
    outcome = shake.receive(b"")
    assert isinstance(outcome, Rejected)
    assert outcome.peer_closed
    return outcome


def splits(data: bytes) -> st.SearchStrategy[list[bytes]]:
    cuts = st.lists(st.integers(0, len(data)), max_size=8).map(sorted)
    return cuts.map(lambda c: [data[i:j] for i, j in zip([0, *c], [*c, len(data)], strict=True)])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600).flatmap(splits))
def test_random_bytes_in_random_splits_give_only_typed_outcomes(chunks: list[bytes]) -> None:
    feed(chunks)
    feed(chunks, APP)


HEADER_NAMES = [
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
    "Content-Length",
    "Transfer-Encoding",
]
header_values = st.one_of(
    st.sampled_from(
        [
            "websocket",
            "Upgrade",
            RFC_KEY,
            "13",
            "8",
            PROTOCOL_VERSION,
            "https://app.example.com",
            "null",
            "0",
            "chunked",
            "",
        ]
    ),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["GET", "POST", "get", "G\x00T", ""]),
    st.sampled_from(["/", "/x?y", "*", "", "/\xff"]),
    st.sampled_from(["1.1", "1.0", "2.0", "x"]),
    st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=12),
    st.binary(max_size=30),
    st.data(),
)
def test_random_requests_give_only_typed_outcomes(
    method: str,
    target: str,
    version: str,
    headers: list[tuple[str, str]],
    tail: bytes,
    data: st.DataObject,
) -> None:
    head = f"{method} {target} HTTP/{version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    raw = head.encode("latin-1") + b"\r\n" + tail
    whole = feed([raw])
    outcome = feed(data.draw(splits(raw)))
    assert outcome is not None
    assert whole is not None
    assert type(outcome) is type(whole)  # the split never changes the answer
    if isinstance(outcome, Rejected) and isinstance(whole, Rejected):
        assert outcome.status == whole.status
    else:
        assert outcome == whole
    feed([raw], APP)


@settings(max_examples=200)
@given(st.binary(max_size=64).flatmap(lambda tail: splits(request(dict(BROWSER_HEADERS)) + tail)))
def test_a_valid_request_in_any_split_is_accepted_with_its_leftover(chunks: list[bytes]) -> None:
    head_length = len(request(dict(BROWSER_HEADERS)))
    shake = ServerHandshake()
    fed = b""
    for chunk in filter(None, chunks):
        fed += chunk
        outcome = shake.receive(chunk)
        if len(fed) < head_length:
            assert outcome is None
        else:
            # Decided by the chunk that ends the head; the rest of it is the leftover.
            assert isinstance(outcome, Accepted)
            assert outcome.leftover == fed[head_length:]
            return
    raise AssertionError("the head never ended")
