"""wss: TLS on the client port, with a certificate made here by trustme. The SDK
signs in, sends and receives over TLS; a plain-text client on the TLS port, a
garbage handshake and a silent one are closed without touching other sessions."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

import pytest
import trio
import trustme

import server
from actors.node.tls import TlsSetupError
from client import ParleyClient
from protocol import messages as m
from settings import ConfigError
from tests.conftest import StartNode
from tests.rawws import RawClient, Rejected
from tests.support import Connect, node_settings, signed_in


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    return {"tls_cert": str(cert), "tls_key": str(key)}


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def _open_tcp(url: str) -> trio.SocketStream:
    port = int(url.rsplit(":", 1)[1])
    return await trio.open_tcp_stream("127.0.0.1", port)


async def _closed_by_server(stream: trio.SocketStream, timeout: float = 10) -> bytes:
    """Read until the server closes the connection; what it sent on the way."""
    received = b""
    with trio.fail_after(timeout):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return received
            if not data:
                return received
            received += data


class TestWss:
    async def test_sign_in_send_and_receive_over_tls(
        self,
        start_node: StartNode,
        connect: Connect,
        tls_files: dict[str, str],
        client_context: ssl.SSLContext,
    ) -> None:
        node = await start_node(server=tls_files)
        assert node.url.startswith("wss://")
        alice = await connect(node.url, ssl_context=client_context)
        bob = await connect(node.url, ssl_context=client_context)
        await signed_in(alice, "alice")
        await signed_in(bob, "bob")
        sent = await alice.send_text("over tls", to_user_id="bob")
        push = await bob.next_event(timeout=10)
        assert isinstance(push, m.NewMessage)
        assert push.message.seq == sent.seq
        assert isinstance(push.message.content, m.TextContent)
        assert push.message.content.text == "over tls"
        # Many large messages at once: records split across reads and reads holding
        # several records, both ways.
        texts = [f"{n:02d}" + "x" * 9000 for n in range(20)]
        async with trio.open_nursery() as senders:
            for text in texts:
                senders.start_soon(functools.partial(bob.send_text, text, to_user_id="alice"))
        received = []
        for _ in texts:
            got = await alice.next_event(timeout=10)
            assert isinstance(got, m.NewMessage)
            assert isinstance(got.message.content, m.TextContent)
            received.append(got.message.content.text)
        assert sorted(received) == texts
        assert (await alice.ping()) > 0

    async def test_a_client_without_the_ca_is_refused(
        self, start_node: StartNode, nursery: trio.Nursery, tls_files: dict[str, str]
    ) -> None:
        node = await start_node(server=tls_files)
        untrusting = ParleyClient(
            node.url, reconnect=False, ssl_context=ssl.create_default_context()
        )
        with pytest.raises(trio.BrokenResourceError) as refused:
            await untrusting.connect(nursery)
        assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)


class TestBadTlsPeers:
    async def test_plain_http_on_the_tls_port_is_told_to_use_wss(
        self,
        start_node: StartNode,
        connect: Connect,
        tls_files: dict[str, str],
        client_context: ssl.SSLContext,
    ) -> None:
        node = await start_node(server=tls_files)
        bystander = await connect(node.url, ssl_context=client_context)
        await signed_in(bystander, "carol")
        with pytest.raises(Rejected) as refused:
            await RawClient.open(node.url.replace("wss://", "ws://"))
        assert refused.value.status == 400
        assert b"wss://" in refused.value.body
        assert (await bystander.get_self()).user_id == "carol"

    async def test_garbage_and_silent_handshakes_are_closed(
        self,
        start_node: StartNode,
        connect: Connect,
        tls_files: dict[str, str],
        client_context: ssl.SSLContext,
    ) -> None:
        node = await start_node(server=tls_files, session={"handshake_timeout": 1.0})
        bystander = await connect(node.url, ssl_context=client_context)
        await signed_in(bystander, "dave")
        # A TLS record header followed by nonsense.
        garbage = await _open_tcp(node.url)
        await garbage.send_all(b"\x16\x03\x01\x00\x20" + bytes(range(32)) + b"\xff" * 64)
        await _closed_by_server(garbage)
        # Binary nonsense that is no TLS record at all.
        noise = await _open_tcp(node.url)
        await noise.send_all(b"\x00\x01\x02\x03" * 100)
        assert await _closed_by_server(noise) == b""
        # Silent, and stalled half way through a ClientHello: the handshake timeout.
        silent = await _open_tcp(node.url)
        stalled = await _open_tcp(node.url)
        await stalled.send_all(b"\x16\x03\x01\x02\x00\x01")
        await _closed_by_server(silent, timeout=10)
        await _closed_by_server(stalled, timeout=10)
        # A TLS session that is dropped in the middle of a WebSocket frame.
        with trio.fail_after(10):
            tcp = await _open_tcp(node.url)
            tls = trio.SSLStream(tcp, client_context, server_hostname="127.0.0.1")
            await tls.do_handshake()
            await tls.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            await tcp.aclose()
        for stream in (garbage, noise, silent, stalled):
            await stream.aclose()
        assert (await bystander.get_self()).user_id == "dave"
        again = await connect(node.url, ssl_context=client_context)
        await signed_in(again, "dave", platform=3)


class TestTlsSettings:
    def test_cert_and_key_go_together(self, tls_files: dict[str, str]) -> None:
        with pytest.raises(ConfigError, match=r"server\.tls_key"):
            node_settings("redis://unused", "p:", server={"tls_cert": tls_files["tls_cert"]})
        with pytest.raises(ConfigError, match=r"server\.tls_cert"):
            node_settings("redis://unused", "p:", server={"tls_key": tls_files["tls_key"]})

    async def test_an_unreadable_certificate_stops_the_node(
        self, nursery: trio.Nursery, redis_url: str, prefix: str, tmp_path: Path
    ) -> None:
        missing = str(tmp_path / "missing.pem")
        settings = node_settings(
            redis_url, prefix, server={"tls_cert": missing, "tls_key": missing}
        )
        with pytest.raises(TlsSetupError, match=r"missing\.pem"):
            await server.serve(settings)
