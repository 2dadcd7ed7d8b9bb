"""Encoding and decoding of frames, one reusable codec per direction.

Decoding errors become :class:`protocol.errors.ProtocolError` with the code
that tells the peer what was wrong: ``BAD_FRAME`` when the bytes are not a
msgpack map, ``UNKNOWN_COMMAND`` when ``t`` names no known message, and
``INVALID_FIELD`` when a field has the wrong type or value. The request id is
recovered from a rejected frame whenever the frame carries a readable one, so
the error can be matched to the request that caused it.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec

from protocol.admin import AdminRequest
from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import ClientMessage, Request, ServerMessage

ForwardedRequest = ClientMessage | AdminRequest
"""What one node may forward to another: a client's command, or one of the server
API's (which no client may send)."""


def _salvage(frame: bytes) -> tuple[int, Any]:
    """The request id and tag of a rejected frame, where they can be read."""
    try:
        envelope = msgspec.msgpack.decode(frame)
    except Exception:  # any frame may arrive here; none may escape
        return 0, None
    if not isinstance(envelope, dict):
        return 0, None
    rid = envelope.get("rid", 0)
    if isinstance(rid, bool) or not isinstance(rid, int) or not 0 < rid <= 2**53:
        rid = 0
    return rid, envelope.get("t")


class ServerCodec:
    """The server's side: decodes client frames, encodes server messages.
    ``requests``: the union it accepts (``ForwardedRequest`` between nodes)."""

    def __init__(self, requests: Any = ClientMessage) -> None:
        self._decoder: msgspec.msgpack.Decoder[Request] = msgspec.msgpack.Decoder(requests)
        self._encoder = msgspec.msgpack.Encoder()
        self._tags = frozenset(str(t.__struct_config__.tag) for t in get_args(requests))

    def decode(self, frame: bytes) -> Request:
        try:
            return self._decoder.decode(frame)
        except msgspec.ValidationError as exc:
            rid, tag = _salvage(frame)
            if tag is None and rid == 0:
                raise ProtocolError(ErrorCode.BAD_FRAME, f"not a request: {exc}") from None
            if not isinstance(tag, str) or tag not in self._tags:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_COMMAND, f"unknown command {tag!r}", rid
                ) from None
            raise ProtocolError(ErrorCode.INVALID_FIELD, str(exc), rid) from None
        except msgspec.DecodeError as exc:
            raise ProtocolError(ErrorCode.BAD_FRAME, f"malformed msgpack: {exc}") from None
        except RecursionError:
            raise ProtocolError(ErrorCode.BAD_FRAME, "msgpack nested too deeply") from None
        except UnicodeDecodeError as exc:
            rid, _ = _salvage(frame)
            raise ProtocolError(
                ErrorCode.BAD_FRAME, f"string is not UTF-8: {exc.reason}", rid
            ) from None

    def encode(self, message: ServerMessage) -> bytes:
        return self._encoder.encode(message)


class ClientCodec:
    """The client's side: encodes requests, decodes server frames."""

    def __init__(self) -> None:
        self._decoder = msgspec.msgpack.Decoder[ServerMessage](ServerMessage)
        self._encoder = msgspec.msgpack.Encoder()

    def decode(self, frame: bytes) -> ServerMessage:
        return self._decoder.decode(frame)

    def encode(self, message: ClientMessage) -> bytes:
        return self._encoder.encode(message)


def encode_server_message(message: msgspec.Struct) -> bytes:
    """Encode with the module-level encoder; safe to call from any thread."""
    return msgspec.msgpack.encode(message)
