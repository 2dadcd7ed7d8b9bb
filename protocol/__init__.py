"""The Parley wire protocol, free of I/O: messages, codecs, error and close codes."""

from protocol.codec import ClientCodec, ServerCodec, encode_server_message
from protocol.errors import CloseCode, ErrorCode, ProtocolError, should_reconnect
from protocol.messages import PROTOCOL_VERSION, SUPPORTED_SUBPROTOCOLS
from protocol.platforms import Platform

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_SUBPROTOCOLS",
    "ClientCodec",
    "CloseCode",
    "ErrorCode",
    "Platform",
    "ProtocolError",
    "ServerCodec",
    "encode_server_message",
    "should_reconnect",
]
