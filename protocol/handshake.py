"""The server side of the WebSocket opening handshake (RFC 6455 section 4), free of I/O.

A :class:`ServerHandshake` is fed the bytes a new TCP connection receives and
decides, as soon as the request head is complete (or is known to be bad), one of:

- :class:`Accepted`: send :attr:`Accepted.response` (the ``101``), then speak
  WebSocket frames; :attr:`Accepted.leftover` holds the bytes that followed the
  request head in what was received, the start of the frame stream;
- :class:`Rejected`: send :attr:`Rejected.response` (a complete HTTP response with a
  one-line plain-text body, or for an unsupported subprotocol a ``101`` and a close
  frame) and close the connection.

HTTP is parsed by h11 (``h11.Connection`` in the server role, its head size bounded);
the checks on the upgrade request, the subprotocol and the ``Origin`` are ours, and
``Sec-WebSocket-Accept`` comes from wsproto's ``generate_accept_token``. wsproto's own
``H11Handshake`` is not used: it keeps the bytes after the request inside a private
h11 connection (we hand them to our own frame codec), it accepts any
``Sec-WebSocket-Key`` and it can raise ``UnicodeDecodeError`` on some request targets.

Every input gives a typed outcome: :meth:`ServerHandshake.receive` returns ``None``
(more bytes needed), an :class:`Accepted` or a :class:`Rejected`, and raises only
:class:`HandshakeUsageError`, and only when called after the outcome was given (a
bug in the caller, never the peer's doing).

The answers, one per fault (see docs/PROTOCOL.md section 1.2):

======  ==================================================================
status  when
======  ==================================================================
101     a valid upgrade offering a subprotocol this server speaks
101     a valid upgrade offering no subprotocol this server speaks: accepted
        only to be closed at once with close code 4503 and a reason (a
        browser's page sees no HTTP refusal, only a close event)
400     malformed HTTP, not ``GET``, not HTTP/1.1, a request body, not an
        upgrade (``Upgrade: websocket`` and ``Connection: Upgrade``), a
        missing ``Sec-WebSocket-Version`` (answered with
        ``Sec-WebSocket-Version: 13``), a missing or invalid
        ``Sec-WebSocket-Key``, more than one ``Origin``, or the connection
        closed before the head ended
403     an ``Origin`` not in the allowed origins (when that list is not
        empty); a request without ``Origin`` is allowed
426     a ``Sec-WebSocket-Version`` other than ``13`` (RFC 6455 4.4),
        answered with ``Sec-WebSocket-Version: 13``
429     more new connections from the client's address than its limit
        (``limits.connections_per_second``), with ``Retry-After``; given by the
        node through :func:`too_many_connections`
431     a request head larger than the limit (16 KiB by default)
======  ==================================================================

No WebSocket extension is ever accepted: an offer of ``permessage-deflate`` (or any
other) is declined by leaving ``Sec-WebSocket-Extensions`` out of the ``101``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

import h11
from wsproto.utilities import generate_accept_token

from protocol.base import SUPPORTED_SUBPROTOCOLS
from protocol.errors import CloseCode
from protocol.forwarded import TrustedProxies
from protocol.websocket import encode_close

__all__ = [
    "DEFAULT_MAX_HEAD_BYTES",
    "WEBSOCKET_VERSION",
    "Accepted",
    "HandshakeOutcome",
    "HandshakePolicy",
    "HandshakeUsageError",
    "Rejected",
    "ServerHandshake",
    "normalize_origin",
    "too_many_connections",
]

WEBSOCKET_VERSION = "13"
DEFAULT_MAX_HEAD_BYTES = 16 * 1024
"""Largest request head (request line and headers) accepted; browsers send < 2 KiB."""
_MAX_REASON_CHARS = 200
"""A reason quoting the peer's bytes (h11's message, the offered versions) is cut here."""
_MAX_CLOSE_REASON_BYTES = 123
"""The most a close frame's reason can carry (RFC 6455 5.5: 125 bytes with the code)."""

_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_.-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def normalize_origin(text: str) -> str | None:
    """``text`` as an origin (RFC 6454) in the form browsers send, or ``None`` if it is not one.

    An origin is ``scheme://host[:port]``: no path (not even ``/``), query, fragment
    or user info. Scheme and host are compared case-insensitively and a scheme's
    default port is left out, so ``HTTPS://App.Example.com:443`` gives
    ``https://app.example.com``. The opaque origin ``null`` is not an origin here:
    it is what every sandboxed page and ``file:`` page sends, so allowing it would
    allow them all.
    """
    match = _ORIGIN.fullmatch(text.lower())
    if match is None:
        return None
    scheme, host, port_text = match.group("scheme", "host", "port")
    if port_text is None:
        return f"{scheme}://{host}"
    port = int(port_text)
    if not 0 < port <= 65535:
        return None
    if _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class HandshakeUsageError(Exception):
    """:meth:`ServerHandshake.receive` was called after the outcome was given (caller's bug)."""


@dataclass(frozen=True, slots=True)
class HandshakePolicy:
    """What a node accepts; built once from the settings and shared by every handshake.

    Use :meth:`build`, which checks and normalizes the origins.
    """

    subprotocols: tuple[str, ...] = SUPPORTED_SUBPROTOCOLS
    """The subprotocols this server speaks, most preferred first."""
    allowed_origins: frozenset[str] = frozenset()
    """Normalized origins a browser page must come from; empty allows any."""
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES

    @classmethod
    def build(
        cls,
        allowed_origins: Iterable[str] = (),
        *,
        subprotocols: Sequence[str] = SUPPORTED_SUBPROTOCOLS,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    ) -> HandshakePolicy:
        """A policy; raises ``ValueError`` for an origin :func:`normalize_origin` refuses."""
        origins = set()
        for text in allowed_origins:
            origin = normalize_origin(text)
            if origin is None:
                raise ValueError(f"not an origin (scheme://host[:port]): {text!r}")
            origins.add(origin)
        if not subprotocols:
            raise ValueError("at least one subprotocol is needed")
        if max_head_bytes < 1:
            raise ValueError(f"max_head_bytes must be > 0, got {max_head_bytes}")
        return cls(tuple(subprotocols), frozenset(origins), max_head_bytes)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The upgrade is accepted: send :attr:`response`, then the connection speaks WebSocket."""

    subprotocol: str
    response: bytes
    """The ``101 Switching Protocols`` response."""
    leftover: bytes = b""
    """Bytes received after the request head: the start of the client's frame stream."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The upgrade is refused: send :attr:`response` and close the connection."""

    status: int
    reason: str
    """One line saying why (also the response body or close reason), for logs."""
    response: bytes
    """A complete HTTP/1.1 response with ``Connection: close`` and a plain-text body; or,
    when :attr:`close_code` is set, a ``101`` followed by a close frame."""
    peer_closed: bool = False
    """The peer closed its side before the request head ended (sending is optional)."""
    close_code: int | None = None
    """Set when the refusal is told after accepting the upgrade (status 101)."""


HandshakeOutcome = Accepted | Rejected


@dataclass(slots=True)
class _Request:
    """What was read from the request head, kept for logging."""

    path: str
    origin: str | None = None
    proposed_subprotocols: tuple[str, ...] = ()
    offered_extensions: tuple[str, ...] = ()
    forwarded: tuple[bytes, ...] = ()
    x_forwarded_for: tuple[bytes, ...] = ()


class ServerHandshake:
    """One connection's opening handshake, server side; feed it with :meth:`receive`.

    After the request head was parsed, :attr:`path`, :attr:`origin`,
    :attr:`proposed_subprotocols` and :attr:`offered_extensions` say what the client
    asked for (for logging), whatever the outcome.
    """

    __slots__ = ("_chosen", "_connection", "_outcome", "_policy", "_received", "_request")

    def __init__(self, policy: HandshakePolicy | None = None) -> None:
        self._policy = policy if policy is not None else _DEFAULT_POLICY
        self._connection = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._policy.max_head_bytes
        )
        self._received = 0
        self._request: _Request | None = None
        self._chosen: tuple[str, bytes] | None = None
        """The subprotocol and key of a request found valid, until its end is seen."""
        self._outcome: HandshakeOutcome | None = None

    @property
    def outcome(self) -> HandshakeOutcome | None:
        """The outcome once given, else ``None``."""
        return self._outcome

    @property
    def path(self) -> str | None:
        """The request target as sent (path and any query), once the head was parsed."""
        return self._request.path if self._request else None

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header as sent; ``None`` if absent, repeated or not parsed yet."""
        return self._request.origin if self._request else None

    @property
    def proposed_subprotocols(self) -> tuple[str, ...]:
        """The ``Sec-WebSocket-Protocol`` tokens the client offered, in its order."""
        return self._request.proposed_subprotocols if self._request else ()

    @property
    def offered_extensions(self) -> tuple[str, ...]:
        """The names of the extensions the client offered (all declined)."""
        return self._request.offered_extensions if self._request else ()

    def client_address(self, peer: str, trusted: TrustedProxies) -> str:
        """The client's address: ``peer``'s, or the one its ``Forwarded`` /
        ``X-Forwarded-For`` header names if ``peer`` is a trusted proxy
        (``protocol.forwarded``)."""
        request = self._request
        if request is None:
            return trusted.client_address(peer)
        return trusted.client_address(peer, request.forwarded, request.x_forwarded_for)

    def receive(self, data: bytes) -> HandshakeOutcome | None:
        """Take bytes received from the peer; ``b""`` means the peer closed its side.

        Returns ``None`` while the request head is incomplete, else the outcome (once).
        """
        if self._outcome is not None:
            raise HandshakeUsageError(f"the handshake is over ({type(self._outcome).__name__})")
        self._received += len(data)
        connection = self._connection
        connection.receive_data(data)
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as error:
                return self._decide(self._bad_http(error, peer_closed=not data))
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                verdict = self._check(event)
                if isinstance(verdict, Rejected):
                    return self._decide(verdict)
                self._chosen = verdict
            elif isinstance(event, h11.EndOfMessage) and self._chosen is not None:
                return self._decide(self._accept(*self._chosen))
            elif isinstance(event, h11.ConnectionClosed):
                return self._decide(
                    _reject(400, "connection closed before the request was sent", peer_closed=True)
                )
            else:  # pragma: no cover - h11 gives nothing else before the request's end
                return self._decide(_reject(400, f"malformed HTTP request: unexpected {event!r}"))

    # -- internals -----------------------------------------------------------------

    def _decide(self, outcome: HandshakeOutcome) -> HandshakeOutcome:
        self._outcome = outcome
        return outcome

    def _bad_http(self, error: h11.RemoteProtocolError, *, peer_closed: bool) -> Rejected:
        if peer_closed:
            return _reject(400, "connection closed before the request head ended", peer_closed=True)
        if error.error_status_hint == 431:
            return _head_too_large(self._policy.max_head_bytes)
        return _reject(400, f"malformed HTTP request: {error}")

    def _check(self, request: h11.Request) -> Rejected | tuple[str, bytes]:
        """The subprotocol and key to accept the request with, or why it is refused."""
        headers = request.headers
        buffered = len(self._connection.trailing_data[0])
        if self._received - buffered > self._policy.max_head_bytes:
            return _head_too_large(self._policy.max_head_bytes)
        origins = _values(headers, b"origin")
        proposed = tuple(t.decode("latin-1") for t in _tokens(headers, b"sec-websocket-protocol"))
        extensions = tuple(
            t.partition(b";")[0].strip(b" \t").decode("latin-1")
            for t in _tokens(headers, b"sec-websocket-extensions")
        )
        self._request = _Request(
            path=request.target.decode("ascii"),  # h11 allows only visible ASCII here
            origin=origins[0].decode("latin-1") if len(origins) == 1 else None,
            proposed_subprotocols=proposed,
            offered_extensions=extensions,
            forwarded=tuple(_values(headers, b"forwarded")),
            x_forwarded_for=tuple(_values(headers, b"x-forwarded-for")),
        )
        if request.method != b"GET":
            return _reject(400, f"expected GET, got {_quote(request.method)}")
        if request.http_version != b"1.1":
            return _reject(400, f"expected HTTP/1.1, got HTTP/{_quote(request.http_version)}")
        if _values(headers, b"transfer-encoding") or any(
            v != b"0" for v in _values(headers, b"content-length")
        ):
            return _reject(400, "a WebSocket upgrade request has no body")
        if b"websocket" not in _tokens(headers, b"upgrade", lower=True) or (
            b"upgrade" not in _tokens(headers, b"connection", lower=True)
        ):
            return _reject(
                400,
                "not a WebSocket upgrade request "
                "(expected Upgrade: websocket and Connection: Upgrade)",
            )
        versions = _values(headers, b"sec-websocket-version")
        version_header = [("Sec-WebSocket-Version", WEBSOCKET_VERSION)]
        if not versions:
            return _reject(400, "missing Sec-WebSocket-Version", version_header)
        if versions != [WEBSOCKET_VERSION.encode()]:
            offered = ", ".join(_quote(v) for v in versions)
            return _reject(
                426,
                f"unsupported WebSocket version {offered}; "
                f"this server speaks version {WEBSOCKET_VERSION}",
                version_header,
            )
        key = _only(headers, b"sec-websocket-key")
        if key is None or not _valid_key(key):
            return _reject(400, "missing or invalid Sec-WebSocket-Key")
        if len(origins) > 1:
            return _reject(400, "more than one Origin header")
        allowed = self._policy.allowed_origins
        if allowed and origins and normalize_origin(origins[0].decode("latin-1")) not in allowed:
            return _reject(403, f"origin not allowed: {_quote(origins[0])}")
        for subprotocol in self._policy.subprotocols:
            if subprotocol in proposed:
                return subprotocol, key
        return self._unsupported_subprotocol(key, proposed)

    def _unsupported_subprotocol(self, key: bytes, proposed: tuple[str, ...]) -> Rejected:
        """Accept the upgrade only to close it at once with 4503 and the reason.

        Browsers hide an HTTP refusal from the page (it sees a bare 1006), but show it
        a close frame's code and reason. The ``101`` names the first subprotocol
        offered, if any, since a browser fails a handshake whose answer names none
        of those it offered."""
        offered = ", ".join(proposed) or "none"
        reason = (
            f"unsupported protocol version (offered: {offered}); "
            f"this server speaks: {', '.join(self._policy.subprotocols)}"
        )
        if len(reason.encode()) > _MAX_CLOSE_REASON_BYTES:
            cut = reason.encode()[: _MAX_CLOSE_REASON_BYTES - 3]
            reason = cut.decode("utf-8", "ignore") + "..."
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: " + generate_accept_token(key).decode("ascii"),
            *(["Sec-WebSocket-Protocol: " + proposed[0]] if proposed else []),
        ]
        head = "".join(line + "\r\n" for line in lines) + "\r\n"
        code = CloseCode.UNSUPPORTED_PROTOCOL
        response = head.encode("latin-1") + encode_close(code, reason)
        return Rejected(101, reason, response, close_code=code)

    def _accept(self, subprotocol: str, key: bytes) -> Accepted:
        leftover, _ = self._connection.trailing_data
        response = (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + generate_accept_token(key) + b"\r\n"
            b"Sec-WebSocket-Protocol: " + subprotocol.encode("ascii") + b"\r\n"
            b"\r\n"
        )
        return Accepted(subprotocol=subprotocol, response=response, leftover=leftover)


_DEFAULT_POLICY = HandshakePolicy()


def _values(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """The values of every header ``name`` (h11 gives names in lower case)."""
    return [value for key, value in headers if key == name]


def _only(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of header ``name`` if it appears exactly once."""
    values = _values(headers, name)
    return values[0] if len(values) == 1 else None


def _tokens(
    headers: Sequence[tuple[bytes, bytes]], name: bytes, *, lower: bool = False
) -> list[bytes]:
    """The comma-separated items of every header ``name``, without blanks or empty items."""
    items = []
    for value in _values(headers, name):
        for piece in value.split(b","):
            item = piece.strip(b" \t")
            if item:
                items.append(item.lower() if lower else item)
    return items


def _valid_key(key: bytes) -> bool:
    """``Sec-WebSocket-Key`` must be 16 bytes in base64 (RFC 6455 4.1, 4.2.1)."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 3] + "..."


def _quote(value: bytes) -> str:
    """The peer's bytes for a reason line: printable, and cut if long."""
    return _cut(value.decode("ascii", "backslashreplace"))


def too_many_connections(retry_after_s: float) -> Rejected:
    """The ``429`` for a client address over its connection limit."""
    seconds = max(1, math.ceil(retry_after_s))
    return _reject(
        429,
        f"too many new connections from this address; retry after {seconds} s",
        [("Retry-After", str(seconds))],
    )


def _head_too_large(limit: int) -> Rejected:
    return _reject(431, f"request head larger than {limit} bytes")


def _reject(
    status: int,
    reason: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    peer_closed: bool = False,
) -> Rejected:
    """A complete HTTP response for ``status`` whose body is ``reason`` and a newline."""
    body = (reason + "\n").encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    head = "".join(line + "\r\n" for line in lines) + "\r\n"
    return Rejected(status, reason, head.encode("ascii") + body, peer_closed)
