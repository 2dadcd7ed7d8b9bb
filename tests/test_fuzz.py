"""Fuzzing a live node: bad input gets a typed error, never a crash, never a state change.

Four Hypothesis tests feed a running node (a) arbitrary bytes, (b) msgpack maps
whose ``t`` names no command, (c) every client command with wrong types, missing
fields or out-of-range values, and (d) well-typed commands that need a signed-in
session, sent on a session that never signed in. Every frame must get exactly
one reply, an ``error`` with the documented code and the request id the frame
carried (when it carried a readable one) -- or, for a valid request, its normal
reply -- and must change nothing in Redis. Separate tests check that a text frame
is closed with 1003 and an oversize frame with 1009, and that neither disturbs a
signed-in "witness" session.

Design
------
pytest-trio runs each Hypothesis example of an async test in a fresh
``trio.run``, so a node started by the trio fixtures cannot outlive one example,
and starting a node per example would be far too slow. Instead
:class:`LiveNode` runs one node, one signed-in witness SDK client and one raw,
never-signed-in WebSocket session (subprotocol ``parley.v1``) in their own
``trio.run`` on a background thread. The fuzz tests are plain sync functions
whose inner ``@given`` function sends each generated frame into that loop with
``trio.from_thread.run`` and waits (under ``trio.fail_after``) for its one
reply. So all examples share one node and one raw connection, while Hypothesis
keeps shrinking and its example database. Each example compares a Redis
snapshot taken just before and just after its frame, so a state-changing input
is shrunk on its own; if an input gets the raw session closed, that example
fails and the next one opens a new session, so shrinking stays meaningful.
After the last example the test checks that the witness still answers
``get_self`` and ``ping``, that the raw session still answers ``ping`` (and was
never reopened), and that Redis equals the snapshot taken before the first
frame. The node's sign-in deadline and keep-alive pings are pushed past the run
so the unsigned raw session cannot be closed by them mid-run.

The expected replies are derived from the protocol's documentation and the
message definitions (read with ``msgspec.inspect``, so new commands are fuzzed
without editing this file), never by running the server's codec: a value is
"wrong" because the spec says so. A frame that is not well-formed msgpack
(truncated, trailing bytes, a string that is not UTF-8) has no readable request
id, so its error carries rid 0. Frames nested more
deeply than the decoder's recursion limit are refused whole (``BAD_FRAME``,
rid 0); the generated nesting depths stay far from that limit on either side,
because where exactly it bites depends on the stack depth of the caller.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import threading
import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import pytest
import redis
import trio
import trio_websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import inspect as mi
from trio_websocket import ConnectionClosed

import server
from client import ParleyClient
from protocol import messages as m
from protocol.codec import ClientCodec
from protocol.errors import CloseCode, ErrorCode
from settings import SessionSettings, Settings
from tests import support
from tests.support import Connect, signed_in

T = TypeVar("T")

PROTOCOL = m.PROTOCOL_VERSION
MAX_RID = 2**53
INT_MIN = -(2**63)
"""The smallest integer msgpack can carry."""
INT_MAX = 2**64 - 1
"""The largest integer msgpack can carry."""
REPLY_TIMEOUT = 10.0
WITNESS = "witness"
WITNESS_PASSWORD = "password-1"

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

CLIENT_TYPES: list[mi.StructType] = []
for _cls in typing.get_args(m.ClientMessage):
    _info = mi.type_info(_cls)
    assert isinstance(_info, mi.StructType)
    CLIENT_TYPES.append(_info)
CLIENT_TAGS = frozenset(str(info.tag) for info in CLIENT_TYPES)
SIGNED_IN_ONLY = [t for t in CLIENT_TYPES if t.cls not in m.UNAUTHENTICATED_COMMANDS]
SERVER_TAGS = [
    str(info.tag)
    for cls in typing.get_args(m.ServerMessage)
    if isinstance(info := mi.type_info(cls), mi.StructType)
]


# --------------------------------------------------------------------------
# Redis snapshots
# --------------------------------------------------------------------------

Snapshot = support.Snapshot


def snapshot(client: redis.Redis, prefix: str) -> Snapshot:
    """Every stored key under ``prefix`` (heartbeats and leases are not state)."""
    return support.stored_state(client, prefix)


# --------------------------------------------------------------------------
# The node under test, in its own trio loop
# --------------------------------------------------------------------------


class LiveNode:
    """A node, a signed-in witness client and a raw unsigned session, running in
    ``trio.run`` on a background thread; the test thread drives them with :meth:`call`."""

    def __init__(self, node_settings: Settings) -> None:
        self._settings = node_settings
        self._thread = threading.Thread(target=self._thread_main, name="fuzz-node", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._codec = ClientCodec()
        self._rids = itertools.count(1_000_000)
        self.url = ""
        self.witness: ParleyClient | None = None
        self.raw: Any = None
        """The raw ``trio_websocket.WebSocketConnection``; ``None`` after the server closed it."""
        self.raw_opened = 0
        self.raw_close: tuple[int | None, str | None] | None = None

    # -- lifetime (test thread) ------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"node not ready after {timeout} s")
        if self._failure is not None:
            raise RuntimeError("the node failed to start") from self._failure

    def stop(self, timeout: float = 30.0) -> None:
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"node thread still running after {timeout} s"
        if self._failure is not None:
            raise RuntimeError("the node's trio loop failed") from self._failure

    def call(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``afn(*args)`` in the node's loop and return its result."""
        assert self._token is not None, "node not started"
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            node: server.RunningNode = await nursery.start(server.serve, self._settings)
            self.url = node.url
            witness = ParleyClient(node.url, reconnect=False, request_timeout=REPLY_TIMEOUT)
            with trio.fail_after(30):
                await witness.connect(nursery)
                await signed_in(witness, WITNESS, password=WITNESS_PASSWORD)
                self.witness = witness
                await self._open_raw()
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()
            with trio.move_on_after(20):
                await witness.aclose()
                if self.raw is not None:
                    await self.raw.aclose()
                await node.stop()
            nursery.cancel_scope.cancel()

    async def _open_raw(self) -> None:
        assert self._nursery is not None
        with trio.fail_after(REPLY_TIMEOUT):
            raw = await trio_websocket.connect_websocket_url(
                self._nursery, self.url, subprotocols=[PROTOCOL]
            )
        assert raw.subprotocol == PROTOCOL
        self.raw = raw
        self.raw_opened += 1

    # -- in the node's loop ------------------------------------------------------------

    async def _exchange(self, frame: bytes | str) -> bytes:
        if self.raw is None:
            await self._open_raw()
        raw = self.raw
        try:
            with trio.fail_after(REPLY_TIMEOUT):
                await raw.send_message(frame)
                reply = await raw.get_message()
        except ConnectionClosed as exc:
            self.raw = None
            reason = exc.reason
            self.raw_close = (reason.code, reason.reason) if reason else (None, None)
            raise AssertionError(f"the server closed the session: {self.raw_close}") from None
        except trio.TooSlowError:
            self.raw = None
            await raw.aclose()
            raise AssertionError(f"no reply within {REPLY_TIMEOUT} s") from None
        assert isinstance(reply, bytes), f"text reply {reply!r}"
        return reply

    async def _witness_round_trip(self) -> tuple[m.UserProfile, int]:
        assert self.witness is not None
        with trio.fail_after(2 * REPLY_TIMEOUT):
            return await self.witness.get_self(), await self.witness.ping()

    # -- checks (test thread) ----------------------------------------------------------

    def exchange(self, frame: bytes | str) -> m.ServerMessage:
        """Send one frame on the raw session and decode the one reply."""
        return self._codec.decode(self.call(self._exchange, frame))

    def check_healthy(self) -> None:
        """The witness and the raw session both still work."""
        profile, server_time = self.call(self._witness_round_trip)
        assert profile.user_id == WITNESS
        assert server_time > 0
        rid = next(self._rids)
        pong = self.exchange(msgspec.msgpack.encode(m.Ping(rid=rid)))
        assert isinstance(pong, m.Pong) and pong.rid == rid, pong
        assert self.raw_opened == 1, f"the raw session was closed and reopened: {self.raw_close}"


@pytest.fixture
def live(redis_url: str, prefix: str) -> Iterator[LiveNode]:
    # No sign-in deadline and no keep-alive pings during the run: the unsigned raw session
    # must stay open, and trio-websocket draws ping payloads from the global ``random``,
    # which Hypothesis watches while it generates (from the other thread).
    quiet = {"auth_timeout": 600.0, "ping_interval": 600.0, "idle_timeout": 1200.0}
    node = LiveNode(support.node_settings(redis_url, prefix, session=quiet))
    node.start()
    try:
        yield node
    finally:
        node.stop()


# --------------------------------------------------------------------------
# What a reply must be
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One frame to send and the replies that would be correct."""

    message: Any
    """What was encoded (for the report; ``None`` for raw bytes)."""
    frame: bytes
    codes: frozenset[int]
    """Acceptable error codes."""
    rids: frozenset[int]
    """Acceptable ``rid`` of the reply."""
    reply: type[m.Reply] | None = None
    """Acceptable non-error reply, for a valid request."""


def readable_rid(message: Any) -> int:
    """The request id a map carries, or 0 if it carries none that the spec allows."""
    if not isinstance(message, dict):
        return 0
    rid = message.get("rid")
    if type(rid) is int and 1 <= rid <= MAX_RID:
        return rid
    return 0


_NOT_MSGPACK = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What decoding a frame that is not (readable) msgpack raises: malformed or truncated
bytes, a string that is not UTF-8, nesting beyond the recursion limit."""


def is_random_frame(frame: bytes) -> bool:
    """Whether ``frame`` is no request for a known command, so :func:`unknown_command_case`
    predicts its reply."""
    try:
        message = msgspec.msgpack.decode(frame)
    except _NOT_MSGPACK:
        return True
    if not isinstance(message, dict):
        return True
    tag = message.get("t")
    return not (isinstance(tag, str) and tag in CLIENT_TAGS)


def unknown_command_case(frame: bytes, message: Any = None) -> Case:
    """Expectation for a frame that is not a request for any known command: ``BAD_FRAME``
    with rid 0 if it is no well-formed msgpack map, else ``UNKNOWN_COMMAND`` with the rid
    it carries (``BAD_FRAME`` is also fine for a map without ``t``)."""
    bad_frame = frozenset({ErrorCode.BAD_FRAME})
    try:
        decoded = msgspec.msgpack.decode(frame)
    except _NOT_MSGPACK:
        return Case(message, frame, bad_frame, frozenset({0}))
    if not isinstance(decoded, dict):
        return Case(message, frame, bad_frame, frozenset({0}))
    rid = readable_rid(decoded)
    if decoded.get("t") is None:
        either = frozenset({ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_COMMAND})
        return Case(message, frame, either, frozenset({rid}))
    return Case(message, frame, frozenset({ErrorCode.UNKNOWN_COMMAND}), frozenset({rid}))


def encode(message: Any) -> bytes:
    return msgspec.msgpack.encode(message)


# --------------------------------------------------------------------------
# Strategies: garbage, and values read off the message definitions
# --------------------------------------------------------------------------

_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT_MIN, INT_MAX),
    st.sampled_from([0, -1, 1, 10, 2**31, 2**53, 2**53 + 1, INT_MIN, INT_MAX]),
    st.floats(),
    st.text(max_size=16),
    st.binary(max_size=16),
)
garbage: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-3, 3)), children, max_size=4),
    ),
    max_leaves=12,
)
"""Any msgpack value, nested."""
_odd_keys: st.SearchStrategy[Any] = st.one_of(
    st.integers(INT_MIN, INT_MAX), st.binary(max_size=4), st.none(), st.booleans(), st.floats()
)
"""Map keys that are no strings (so can name no field)."""

_BAD_ID_CHARS = ["\n", "\r", "\t", " ", "\x00", "/", ":", "{", "}", "*", "é", "用", "\u200b", "+"]
_LIST_TYPES = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)


def _str_ok(info: mi.StrType, value: str) -> bool:
    if info.min_length is not None and len(value) < info.min_length:
        return False
    if info.max_length is not None and len(value) > info.max_length:
        return False
    return info.pattern is None or re.fullmatch(info.pattern, value) is not None


def _int_bounds(info: mi.IntType) -> tuple[int, int]:
    low = INT_MIN
    if info.ge is not None:
        low = info.ge
    elif info.gt is not None:
        low = info.gt + 1
    high = INT_MAX
    if info.le is not None:
        high = info.le
    elif info.lt is not None:
        high = info.lt - 1
    return low, high


def valid_values(info: mi.Type) -> st.SearchStrategy[Any]:
    """Values the spec allows for a field of type ``info``."""
    if isinstance(info, mi.StrType):
        low = info.min_length or 0
        high = max(low, min(info.max_length if info.max_length is not None else 40, 40))
        if info.pattern is not None:
            base = st.from_regex(info.pattern, fullmatch=True)
        else:
            base = st.text(min_size=low, max_size=high)
        return base.filter(lambda s: _str_ok(info, s))
    if isinstance(info, mi.IntType):
        assert info.multiple_of is None, "extend valid_values for multiple_of"
        low, high = _int_bounds(info)
        return st.integers(low, high)
    if isinstance(info, mi.FloatType):
        return st.floats(
            allow_nan=False, allow_infinity=False, min_value=info.ge, max_value=info.le
        )
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.AnyType):
        return garbage
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.BytesType):
        return st.binary(min_size=info.min_length or 0, max_size=info.max_length or 32)
    if isinstance(info, _LIST_TYPES):
        low = info.min_length or 0
        high = max(low, min(info.max_length if info.max_length is not None else 4, 4))
        return st.lists(valid_values(info.item_type), min_size=low, max_size=high)
    if isinstance(info, mi.DictType):
        low = info.min_length or 0
        high = max(low, min(info.max_length if info.max_length is not None else 4, 4))
        return st.dictionaries(
            valid_values(info.key_type), valid_values(info.value_type), min_size=low, max_size=high
        )
    if isinstance(info, mi.UnionType):
        return st.one_of([valid_values(t) for t in info.types])
    if isinstance(info, mi.StructType):
        return valid_message(info)
    raise NotImplementedError(f"tests/test_fuzz.py has no strategy for {info!r}")


def valid_message(info: mi.StructType) -> st.SearchStrategy[dict[str, Any]]:
    """A well-typed map for struct ``info`` (optional fields sometimes omitted)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        message: dict[str, Any] = {}
        if info.tag_field is not None:
            message[info.tag_field] = info.tag
        for field in info.fields:
            if field.required or draw(st.booleans()):
                message[field.encode_name] = draw(valid_values(field.type))
        return message

    return build()


def accepts_type(info: mi.Type, value: Any) -> bool:
    """Whether ``value`` has a msgpack type a field of ``info`` could accept (constraints
    aside). ``True`` for types this file does not know, so they are never called wrong."""
    if isinstance(info, mi.StrType):
        return isinstance(value, str)
    if isinstance(info, mi.IntType):
        return type(value) is int
    if isinstance(info, mi.FloatType):
        return type(value) in (int, float)
    if isinstance(info, mi.BoolType):
        return type(value) is bool
    if isinstance(info, mi.NoneType):
        return value is None
    if isinstance(info, mi.LiteralType):
        return any(type(value) is type(v) and value == v for v in info.values)
    if isinstance(info, mi.BytesType):
        return isinstance(value, bytes)
    if isinstance(info, _LIST_TYPES):
        return isinstance(value, list)
    if isinstance(info, mi.DictType | mi.StructType):
        return isinstance(value, dict)
    if isinstance(info, mi.UnionType):
        return any(accepts_type(t, value) for t in info.types)
    return True


def can_be_invalid(info: mi.Type) -> bool:
    if isinstance(info, mi.AnyType):
        return False
    if isinstance(info, mi.UnionType):
        return all(can_be_invalid(t) for t in info.types)
    return True


def _longer_than(limit: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda unit, extra: unit * (limit // len(unit) + 1) + extra,
        st.text(min_size=1, max_size=4),
        st.text(max_size=8),
    )


def _with_bad_char(info: mi.StrType) -> st.SearchStrategy[str]:
    return st.builds(
        lambda text, bad, at: text[: at % (len(text) + 1)] + bad + text[at % (len(text) + 1) :],
        valid_values(info),
        st.one_of(st.sampled_from(_BAD_ID_CHARS), st.characters()),
        st.integers(0, 100),
    )


def _rejected_by_all(infos: list[mi.Type]) -> Callable[[Any], bool]:
    def rejected(value: Any) -> bool:
        return not any(accepts_type(info, value) for info in infos)

    return rejected


def edge_values(info: mi.Type) -> list[st.SearchStrategy[Any]]:
    """Values of an acceptable type that break the field's constraints."""
    edges: list[st.SearchStrategy[Any]] = []
    if isinstance(info, mi.StrType):
        if info.min_length:
            edges.append(st.text(max_size=info.min_length - 1))
        if info.max_length is not None:
            edges.append(_longer_than(info.max_length))
        if info.pattern is not None:
            edges.append(_with_bad_char(info))
        return [edge.filter(lambda s: not _str_ok(info, s)) for edge in edges]
    if isinstance(info, mi.IntType):
        low, high = _int_bounds(info)
        if low > INT_MIN:
            edges += [st.just(low - 1), st.integers(INT_MIN, low - 1)]
        if high < INT_MAX:
            edges += [st.just(high + 1), st.integers(high + 1, INT_MAX)]
        return edges
    if isinstance(info, mi.LiteralType):
        ints = [v for v in info.values if type(v) is int]
        if ints:
            near = [v + d for v in ints for d in (-1, 1)] + [0, -1, 2**31, INT_MAX]
            edges.append(
                st.one_of(st.sampled_from(near), st.integers(INT_MIN, INT_MAX)).filter(
                    lambda v: v not in ints
                )
            )
        strs = [v for v in info.values if isinstance(v, str)]
        if strs:
            edges.append(st.text(max_size=16).filter(lambda v: v not in strs))
        return edges
    if isinstance(info, _LIST_TYPES):
        if info.min_length:
            edges.append(st.just([]))
        if info.max_length is not None:
            limit = info.max_length
            edges.append(
                st.builds(
                    lambda item, extra: [item] * (limit + extra),
                    valid_values(info.item_type),
                    st.integers(1, 3),
                )
            )
        if can_be_invalid(info.item_type):
            edges.append(
                st.builds(
                    lambda items, bad, at: [*items[:at], bad, *items[at:]],
                    st.lists(valid_values(info.item_type), max_size=3),
                    invalid_values(info.item_type),
                    st.integers(0, 3),
                )
            )
        return edges
    if isinstance(info, mi.UnionType):
        for member in info.types:
            others = [t for t in info.types if t is not member]
            edges += [edge.filter(_rejected_by_all(others)) for edge in edge_values(member)]
        return edges
    if isinstance(info, mi.StructType):
        return [wrong_message(info)]
    return edges


def invalid_values(info: mi.Type) -> st.SearchStrategy[Any]:
    """Values the spec rejects for a field of type ``info``: wrong type or out of range."""
    wrong_type = garbage.filter(lambda v: not accepts_type(info, v))
    return st.one_of([wrong_type, *edge_values(info)])


def wrong_message(info: mi.StructType) -> st.SearchStrategy[dict[Any, Any]]:
    """A map for struct ``info`` with at least one missing required field or invalid value,
    plus possibly unknown fields holding nested garbage."""
    fields = {field.encode_name: field for field in info.fields}
    mutations = [("missing", f.encode_name) for f in info.fields if f.required] + [
        ("invalid", f.encode_name) for f in info.fields if can_be_invalid(f.type)
    ]
    assert mutations, f"{info.cls.__name__} cannot be made invalid"
    reserved = {*fields, info.tag_field}

    @st.composite
    def build(draw: st.DrawFn) -> dict[Any, Any]:
        message: dict[Any, Any] = draw(valid_message(info))
        # Break the rid in about a quarter of the cases, so most errors must echo it.
        others = [mutation for mutation in mutations if mutation[1] != "rid"]
        pool = mutations if not others or draw(st.integers(0, 3)) == 0 else others
        chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        for kind, name in chosen:
            if kind == "missing":
                message.pop(name, None)
            else:
                message[name] = draw(invalid_values(fields[name].type))
        unknown = st.text(max_size=12).filter(lambda k: k not in reserved)
        extra = draw(st.dictionaries(st.one_of(unknown, _odd_keys), garbage, max_size=3))
        return {**message, **extra}

    return build()


# -- (a) arbitrary bytes -----------------------------------------------------------

_MAP_HEADERS = [
    b"\x80",
    b"\x81",
    b"\x82",
    b"\x83",
    b"\x8f",
    b"\xde\x00\x02",
    b"\xdf\x00\x00\x00\x01",
]
_any_request = st.one_of([valid_message(info) for info in CLIENT_TYPES]).map(encode)


def _nested(depth: int, kind: str, inside: dict[str, Any]) -> bytes:
    """A map of ``inside`` plus a field ``v`` nested ``depth`` arrays or maps deep, built
    as bytes (encoding such an object would hit the encoder's own recursion limit)."""
    opener = b"\x91" if kind == "array" else b"\x81\xa1k"
    header = bytes([0x80 | (len(inside) + 1)])
    fields = b"".join(encode(key) + encode(value) for key, value in inside.items())
    return header + fields + encode("v") + opener * depth + b"\xc0"


_deep_frames = st.builds(
    _nested,
    st.one_of(st.integers(1, 200), st.integers(5_000, 20_000)),
    st.sampled_from(["array", "map"]),
    st.fixed_dictionaries({}, optional={"t": _scalars, "rid": st.integers(1, MAX_RID)}),
)

random_frames: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=512),
    garbage.map(encode),
    st.builds(bytes.__add__, st.sampled_from(_MAP_HEADERS), st.binary(max_size=64)),
    _deep_frames,
    # A valid request cut short, or followed by trailing bytes: never valid msgpack.
    st.builds(lambda frame, cut: frame[: cut % len(frame)], _any_request, st.integers(0, 10_000)),
    st.builds(bytes.__add__, _any_request, st.binary(min_size=1, max_size=16)),
).filter(is_random_frame)

random_byte_cases = random_frames.map(unknown_command_case)

# -- (b) unknown commands ------------------------------------------------------------

_near_tags = [
    variant
    for tag in sorted(CLIENT_TAGS)
    for variant in (tag.upper(), tag.title(), f" {tag}", f"{tag} ", f"{tag}\x00", f"{tag}\n")
] + [tag.replace("_", "-") for tag in CLIENT_TAGS if "_" in tag]
_unknown_tags: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=24),
    st.sampled_from([*SERVER_TAGS, *_near_tags, "", "request", "t"]),
    st.sampled_from(sorted(CLIENT_TAGS)).map(str.encode),
    garbage,
).filter(lambda t: not (isinstance(t, str) and t in CLIENT_TAGS))
_any_rid: st.SearchStrategy[Any] = st.one_of(st.integers(1, MAX_RID), garbage)


@st.composite
def _unknown_command(draw: st.DrawFn) -> dict[Any, Any]:
    message: dict[Any, Any] = draw(
        st.dictionaries(
            st.text(max_size=12).filter(lambda k: k not in ("t", "rid")), garbage, max_size=4
        )
    )
    if draw(st.integers(0, 9)):  # mostly with a ``t``
        message["t"] = draw(_unknown_tags)
    if draw(st.integers(0, 3)):  # mostly with a ``rid``
        message["rid"] = draw(_any_rid)
    if not draw(st.integers(0, 9)):  # sometimes with keys that are no strings
        message.update(draw(st.dictionaries(_odd_keys, garbage, min_size=1, max_size=2)))
    return message


unknown_command_cases = _unknown_command().map(lambda msg: unknown_command_case(encode(msg), msg))

# -- (c) known commands, wrong fields ---------------------------------------------------


def _invalid_field_case(message: dict[Any, Any]) -> Case:
    return Case(
        message,
        encode(message),
        frozenset({ErrorCode.INVALID_FIELD}),
        frozenset({readable_rid(message)}),
    )


wrong_field_cases = st.one_of([wrong_message(info) for info in CLIENT_TYPES]).map(
    _invalid_field_case
)

# -- (d) well-typed commands before sign-in ---------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_json: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=12)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_jwt_header = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["HS256", "HS512", "none", "RS256", 5, None, ["HS256"]])},
        optional={"typ": _json, "kid": _json, "b64": _json, "crit": _json},
    ),
)
_jwt_claims = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "sub": st.one_of(st.just(WITNESS), _json),
            "pid": _json,
            "jti": _json,
            "exp": st.one_of(st.integers(0, 2**40), _json),
            "iat": _json,
            "nbf": _json,
        },
    ),
)
_jwt_like = st.builds(
    lambda header, claims, sig: ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(sig)]
    ),
    _jwt_header,
    _jwt_claims,
    st.binary(max_size=40),
)
_bad_tokens = st.one_of(_jwt_like, st.text(min_size=1, max_size=200)).filter(
    lambda token: 1 <= len(token) <= 2048
)


def _not_signed_in_case(message: dict[str, Any]) -> Case:
    return Case(
        message,
        encode(message),
        frozenset({ErrorCode.NOT_AUTHENTICATED}),
        frozenset({message["rid"]}),
    )


def _token_login_case(pair: tuple[int, str]) -> Case:
    rid, token = pair
    message = {"t": "token_login", "rid": rid, "token": token}
    return Case(message, encode(message), frozenset({ErrorCode.TOKEN_INVALID}), frozenset({rid}))


def _ping_case(rid: int) -> Case:
    message = {"t": "ping", "rid": rid}
    return Case(message, encode(message), frozenset(), frozenset({rid}), reply=m.Pong)


unsigned_session_cases = st.one_of(
    st.one_of([valid_message(info) for info in SIGNED_IN_ONLY]).map(_not_signed_in_case),
    st.tuples(st.integers(1, MAX_RID), _bad_tokens).map(_token_login_case),
    st.integers(1, MAX_RID).map(_ping_case),
)


# --------------------------------------------------------------------------
# The fuzz tests
# --------------------------------------------------------------------------


def run_fuzz(
    live: LiveNode, redis_client: redis.Redis, prefix: str, cases: st.SearchStrategy[Case]
) -> None:
    """Send every generated case on the shared raw session and check its reply and the
    state; then check that the node, the witness and the raw session are unharmed."""
    baseline = snapshot(redis_client, prefix)
    assert any(b":account" in key for key in baseline), "the witness account is missing"

    @FUZZ
    @given(case=cases)
    def one(case: Case) -> None:
        before = snapshot(redis_client, prefix)
        reply = live.exchange(case.frame)
        if case.reply is not None and isinstance(reply, case.reply):
            assert reply.rid in case.rids, reply
        else:
            assert isinstance(reply, m.Error), f"expected an error, got {reply!r}"
            assert reply.code in case.codes, reply
            assert reply.name == ErrorCode(reply.code).name, reply
            assert reply.rid in case.rids, reply
        assert snapshot(redis_client, prefix) == before, "the frame changed Redis state"

    one()
    live.check_healthy()
    assert snapshot(redis_client, prefix) == baseline


def test_arbitrary_bytes(live: LiveNode, redis_client: redis.Redis, prefix: str) -> None:
    run_fuzz(live, redis_client, prefix, random_byte_cases)


def test_unknown_commands(live: LiveNode, redis_client: redis.Redis, prefix: str) -> None:
    run_fuzz(live, redis_client, prefix, unknown_command_cases)


def test_known_commands_with_wrong_fields(
    live: LiveNode, redis_client: redis.Redis, prefix: str
) -> None:
    run_fuzz(live, redis_client, prefix, wrong_field_cases)


def test_well_typed_commands_before_sign_in(
    live: LiveNode, redis_client: redis.Redis, prefix: str
) -> None:
    run_fuzz(live, redis_client, prefix, unsigned_session_cases)


# --------------------------------------------------------------------------
# Frames that end the session, and known deviations
# --------------------------------------------------------------------------


async def _signed_in_witness(url: str, connect: Connect) -> ParleyClient:
    witness = await connect(url)
    with trio.fail_after(30):
        await signed_in(witness, WITNESS, password=WITNESS_PASSWORD)
    return witness


async def _check_witness(witness: ParleyClient) -> None:
    with trio.fail_after(2 * REPLY_TIMEOUT):
        assert (await witness.get_self()).user_id == WITNESS
        assert await witness.ping() > 0


async def _take_snapshot(redis_client: redis.Redis, prefix: str) -> Snapshot:
    return await trio.to_thread.run_sync(snapshot, redis_client, prefix)


async def _close_code_after(url: str, frames: list[bytes | str]) -> int | None:
    """Send ``frames`` on a new session, each but the last answered; return the close code
    the last one gets."""
    async with trio_websocket.open_websocket_url(url, subprotocols=[PROTOCOL]) as ws:
        assert ws.subprotocol == PROTOCOL
        with trio.fail_after(REPLY_TIMEOUT):
            for frame in frames[:-1]:
                await ws.send_message(frame)
                reply = _decode(await ws.get_message())
                assert isinstance(reply, m.Error) and reply.code == ErrorCode.BAD_FRAME, reply
            await ws.send_message(frames[-1])
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(10):
                    await ws.get_message()
    reason = closed.value.reason
    return reason.code if reason is not None else None


async def test_text_frame_is_closed_with_1003(
    node: server.RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
) -> None:
    witness = await _signed_in_witness(node.url, connect)
    before = await _take_snapshot(redis_client, prefix)
    assert await _close_code_after(node.url, ['{"t": "ping", "rid": 1}']) == (
        CloseCode.UNSUPPORTED_DATA
    )
    await _check_witness(witness)
    assert await _take_snapshot(redis_client, prefix) == before


async def test_oversize_frame_is_closed_with_1009(
    node: server.RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
) -> None:
    witness = await _signed_in_witness(node.url, connect)
    before = await _take_snapshot(redis_client, prefix)
    limit = SessionSettings().max_frame_bytes  # the default, 64 KiB
    # A frame of exactly the limit is still read (and rejected as not a request).
    frames: list[bytes | str] = [b"\xc1" * limit, b"\xc1" * (limit + 1)]
    assert await _close_code_after(node.url, frames) == CloseCode.MESSAGE_TOO_BIG
    await _check_witness(witness)
    assert await _take_snapshot(redis_client, prefix) == before


def _decode(frame: bytes | str) -> m.ServerMessage:
    assert isinstance(frame, bytes), f"text frame from the server: {frame!r}"
    return ClientCodec().decode(frame)


async def _raw_exchange(url: str, frame: bytes) -> m.ServerMessage:
    async with trio_websocket.open_websocket_url(url, subprotocols=[PROTOCOL]) as ws:
        with trio.fail_after(REPLY_TIMEOUT):
            await ws.send_message(frame)
            return _decode(await ws.get_message())


async def test_user_id_with_trailing_newline_is_rejected(
    node: server.RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
) -> None:
    """Regression: ``$`` in the user-id pattern used to let ``"witness\\n"`` register."""
    witness = await _signed_in_witness(node.url, connect)
    before = await _take_snapshot(redis_client, prefix)
    lookalike = {"t": "register", "rid": 7, "user_id": f"{WITNESS}\n", "password": "password-2"}
    reply = await _raw_exchange(node.url, encode(lookalike))
    await _check_witness(witness)
    assert await _take_snapshot(redis_client, prefix) == before, "a look-alike account was created"
    assert isinstance(reply, m.Error) and reply.code == ErrorCode.INVALID_FIELD, reply
    assert reply.rid == 7, reply


async def test_rid_is_read_from_map_with_non_string_key(node: server.RunningNode) -> None:
    """Regression: a map with a non-string key used to be answered with rid 0."""
    reply = await _raw_exchange(node.url, encode({"t": "ping", "rid": 5, 1: 0}))
    assert isinstance(reply, m.Reply) and reply.rid == 5, reply


async def test_string_that_is_not_utf8_gets_an_error(
    node: server.RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
) -> None:
    """Regression: a string that is not UTF-8 used to end the session (close 1000)."""
    witness = await _signed_in_witness(node.url, connect)
    before = await _take_snapshot(redis_client, prefix)
    frames = [
        b"\x82\xa1t\xa2\xff\xfe\xa3rid\x05",  # {"t": <not UTF-8>, "rid": 5}
        b"\x82\xa1t\xa4ping\xa3rid\xa1\x80",  # {"t": "ping", "rid": <not UTF-8>}
    ]
    async with trio_websocket.open_websocket_url(node.url, subprotocols=[PROTOCOL]) as ws:
        with trio.fail_after(REPLY_TIMEOUT):
            for frame in frames:
                await ws.send_message(frame)
                reply = _decode(await ws.get_message())
                assert isinstance(reply, m.Error), reply
                assert reply.code in (ErrorCode.BAD_FRAME, ErrorCode.INVALID_FIELD), reply
            await ws.send_message(encode({"t": "ping", "rid": 9}))
            pong = _decode(await ws.get_message())
            assert isinstance(pong, m.Pong) and pong.rid == 9, pong
    await _check_witness(witness)
    assert await _take_snapshot(redis_client, prefix) == before
