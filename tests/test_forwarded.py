"""The client address behind trusted proxies (``protocol.forwarded``), without sockets."""

from __future__ import annotations

import pytest

from protocol.forwarded import TrustedProxies, normalize_address
from protocol.handshake import Accepted, ServerHandshake

PROXIES = TrustedProxies(["10.0.0.0/8", "::1", "192.0.2.1"])


@pytest.mark.parametrize(
    ("peer", "x_forwarded_for", "client"),
    [
        ("10.1.2.3", [b"203.0.113.9"], "203.0.113.9"),
        # The right-most untrusted entry: what the client wrote on the left is ignored.
        ("10.1.2.3", [b"1.1.1.1, 203.0.113.9"], "203.0.113.9"),
        ("10.1.2.3", [b"1.1.1.1, 203.0.113.9, 10.9.9.9"], "203.0.113.9"),
        ("10.1.2.3", [b"1.1.1.1", b"203.0.113.9"], "203.0.113.9"),  # two header lines
        # From a peer that is not a trusted proxy the header is not read.
        ("198.51.100.4", [b"203.0.113.9"], "198.51.100.4"),
        # Every hop trusted: the left-most.
        ("10.1.2.3", [b"10.4.4.4"], "10.4.4.4"),
        # Garbage ends the walk at the proxy that passed it on.
        ("10.1.2.3", [b"203.0.113.9, not-an-ip"], "10.1.2.3"),
        ("10.1.2.3", [b"203.0.113.9, , "], "10.1.2.3"),
        ("10.1.2.3", [], "10.1.2.3"),
        ("::ffff:10.1.2.3", [b"2001:DB8::1"], "2001:db8::1"),
        ("::1", [b"203.0.113.9:5555"], "203.0.113.9"),
    ],
)
def test_x_forwarded_for(peer: str, x_forwarded_for: list[bytes], client: str) -> None:
    assert PROXIES.client_address(peer, x_forwarded_for=x_forwarded_for) == client


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ([b"for=203.0.113.9"], "203.0.113.9"),
        ([b'For="[2001:db8:cafe::17]:4711";proto=https'], "2001:db8:cafe::17"),
        ([b"for=1.1.1.1, for=203.0.113.9;by=10.0.0.1"], "203.0.113.9"),
        ([b"for=203.0.113.9, for=192.0.2.1"], "203.0.113.9"),
        ([b"for=unknown"], "10.0.0.5"),
        ([b"for=_hidden"], "10.0.0.5"),
        ([b"proto=https"], "10.0.0.5"),
        ([b'for="[2001:db8::1"'], "10.0.0.5"),
    ],
)
def test_forwarded(forwarded: list[bytes], client: str) -> None:
    # Forwarded wins over X-Forwarded-For when both are sent.
    assert PROXIES.client_address("10.0.0.5", forwarded, [b"198.51.100.1"]) == client


def test_no_trusted_proxies_means_the_peer() -> None:
    nobody = TrustedProxies()
    assert not nobody
    assert nobody.client_address("10.0.0.5", [b"for=1.2.3.4"], [b"1.2.3.4"]) == "10.0.0.5"


def test_bad_networks_are_refused() -> None:
    with pytest.raises(ValueError):
        TrustedProxies(["10.0.0.0/33"])
    with pytest.raises(ValueError):
        TrustedProxies(["proxy.example.com"])


def test_normalize_address() -> None:
    assert normalize_address("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalize_address("2001:0db8::0001") == "2001:db8::1"
    assert normalize_address("nope") is None


def test_the_handshake_records_the_headers() -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Protocol: parley.v1\r\n"
        b"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"
    )
    handshake = ServerHandshake()
    assert handshake.client_address("10.0.0.5", PROXIES) == "10.0.0.5"  # nothing read yet
    assert isinstance(handshake.receive(request), Accepted)
    assert handshake.client_address("10.0.0.5", PROXIES) == "203.0.113.9"
    assert handshake.client_address("198.51.100.4", PROXIES) == "198.51.100.4"
