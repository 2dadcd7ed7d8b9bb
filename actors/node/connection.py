"""The connection actor: one trio task group per WebSocket session.

The session's own task reads and decodes frames and routes commands; a flusher
task writes what the kernel did not take at once; a timer task sends pings,
closes silent sessions and enforces the sign-in deadline. Everything here runs on
the node's event loop. A connection is the ``Outbox`` (``actors.runtime.messages``)
of its session: actors send replies, pushes and closes to it directly, and each
frame goes to the socket at once (``actors.node.websocket``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from actors.limits.bucket import TokenBucket
from actors.limits.metrics import LimitMetrics
from actors.node import routing
from actors.node.hub import Hub
from actors.node.websocket import (
    BinaryMessage,
    Close,
    Disconnected,
    Event,
    PendingFull,
    ProtocolViolation,
    WebSocket,
)
from actors.runtime.credentials import TokenSigner
from actors.runtime.logs import log_event
from actors.runtime.messages import Command, SessionClosed, SessionRef
from actors.runtime.metrics import ActorMetrics
from actors.runtime.replies import error_frame
from actors.runtime.steps import now_ms
from actors.runtime.supervisor import Supervisor
from actors.user import actor as user
from protocol import messages as m
from protocol.codec import ServerCodec
from protocol.errors import CloseCode, ErrorCode, ProtocolError
from settings import LimitSettings, SessionSettings

log = logging.getLogger(__name__)

_SIGN_IN_COMMANDS = (m.Register, m.Login, m.TokenLogin)
_CODEC = ServerCodec()
"""One decoder and encoder for every session of the node (they are reusable, and all
sessions run on one loop)."""
SIGN_IN_CLOCK_MARGIN_S = 1.0
"""The node running a sign-in stops carrying it out this much before its session
answers it ``UNAVAILABLE`` (at most half the deadline), so that node clocks this far
apart never let a sign-in succeed after its session has given up on it."""
SIGN_IN_TOO_LATE = (
    "the server node that owns this user did not answer in time (it may be restarting"
    " or failing over); the sign-in did not take effect: try again"
)
NO_ANSWER_IN_TIME = (
    "no answer in time from the server node that handles this request; it may or may not"
    " have taken effect (repeat send_message with the same client_msg_id, and read the"
    " state again before repeating a request that is not idempotent)"
)


@dataclass(frozen=True)
class ConnectionContext:
    """What all connections of a node share (read-only)."""

    settings: SessionSettings
    supervisor: Supervisor
    hub: Hub
    signer: TokenSigner
    node_id: str
    metrics: ActorMetrics
    """Where the requests a session refuses itself are counted."""
    limits: LimitSettings
    limit_metrics: LimitMetrics


class Connection:
    """One session, and its outbox. Every method runs on the node's event loop."""

    def __init__(
        self, ws: WebSocket, context: ConnectionContext, session_id: str, address: str
    ) -> None:
        self._ws = ws
        self._context = context
        self._settings = context.settings
        self._codec = _CODEC
        self.session_id = session_id
        self.address = address
        self.user_id: str | None = None
        self.platform: int | None = None
        self.token_id = ""
        self.close_code: int | None = None
        self._awaiting: dict[int, float] = {}
        """Requests routed to actors and not answered yet: rid -> when (trio clock) it
        was read, oldest first. A sign-in in progress is kept in ``_sign_in`` instead."""
        self._sign_in: tuple[int, float] | None = None
        """The sign-in awaiting its answer: (rid, trio time by which the session answers
        it ``UNAVAILABLE`` itself). One at a time."""
        self._timer_sleep: trio.CancelScope | None = None
        self._users_contacted: set[str] = set()
        self._last_seen = trio.current_time()
        self._closing = False
        """Our close frame is sent (or the session is ending): nothing more is read
        as a command or sent."""
        self._finished = False
        self._nursery: trio.Nursery | None = None
        self._ref = SessionRef(session_id, address, self)
        limits = context.limits
        self._requests: TokenBucket | None = (
            TokenBucket(limits.requests_per_second, limits.request_burst, self._last_seen)
            if limits.requests_per_second > 0
            else None
        )
        """The session's request limit; None when disabled."""
        self._refused_in_a_row = 0

    # -- lifetime --------------------------------------------------------------

    async def run(self) -> None:
        self._context.hub.open_session(self)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._ws.run_flusher)
                nursery.start_soon(self._timers)
                await self._reader()
                # Frames already sent (a close among them) still reach the peer.
                with trio.move_on_after(self._settings.handshake_timeout):
                    await self._ws.drain()
                nursery.cancel_scope.cancel()
        finally:
            self._finished = True
            self._ws.close_socket()
            self._release()

    def _release(self) -> None:
        supervisor = self._context.supervisor
        self._context.hub.close_session_entry(self)
        if self.user_id is not None:
            log_event(
                log,
                "sign-out",
                user=self.user_id,
                platform=self.platform,
                session=self.session_id,
                node=self._context.node_id,
                code=self.close_code,
            )
            supervisor.detach(user.KIND, self.user_id)
            self._users_contacted.add(self.user_id)
        for user_id in self._users_contacted:
            signed_in = user_id == self.user_id
            supervisor.tell(user.KIND, user_id, SessionClosed(self.session_id, signed_in))

    def _start_close(self, code: int, reason: str) -> None:
        """Send our close frame, then give the peer ``handshake_timeout`` to answer
        with its own before the socket is closed."""
        if self._closing or self._finished:
            return
        self._closing = True
        if self.close_code is None:
            self.close_code = code
        self._ws.send_close(code, reason)
        if self._nursery is not None:
            self._nursery.start_soon(self._close_deadline)

    async def _close_deadline(self) -> None:
        await trio.sleep(self._settings.handshake_timeout)
        self._ws.close_socket()  # the reader ends with Disconnected

    # -- tasks ----------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            try:
                events = await self._ws.receive()
            except Disconnected:
                return
            except ProtocolViolation as violation:
                # Fail the connection (RFC 6455 7.1.7): our close frame, then the TCP
                # close once what was sent has gone, without waiting for the peer's.
                self._handle(violation.events)
                self._start_close(violation.close_code, violation.reason)
                return
            self._last_seen = trio.current_time()
            if self._handle(events):
                return

    def _handle(self, events: Sequence[Event]) -> bool:
        """Act on decoded events; True once the close handshake is complete."""
        for event in events:
            if isinstance(event, BinaryMessage):
                if not self._closing:
                    self._on_frame(event.data)
            elif isinstance(event, Close):
                if not self._closing:
                    # The peer closes: answer with its code (RFC 6455 5.5.1).
                    code = event.code if event.code is not None else CloseCode.NORMAL
                    self.close_code = code
                    self._closing = True
                    self._ws.send_close(event.code, "")
                return True
        return False

    async def _timers(self) -> None:
        """The session's timers in one task (a task each cost memory per connection):
        the deadline of a sign-in in progress, the session's sign-in deadline, and a
        ping every ``ping_interval``."""
        settings = self._settings
        opened = trio.current_time()
        next_ping = opened + settings.ping_interval
        sign_in_by = opened + settings.auth_timeout
        while True:
            wake = next_ping
            if self.user_id is None:
                wake = min(wake, sign_in_by)
            if self._sign_in is not None:
                wake = min(wake, self._sign_in[1])
            with trio.move_on_at(wake) as self._timer_sleep:
                await trio.sleep_forever()
            self._timer_sleep = None
            now = trio.current_time()
            if self._sign_in is not None and now >= self._sign_in[1]:
                self._answer_sign_in_overdue()
            if self.user_id is None and now >= sign_in_by:
                self.close(CloseCode.AUTH_TIMEOUT, "not signed in in time")
                return
            if now < next_ping:
                continue
            next_ping += settings.ping_interval
            if now - self._last_seen >= settings.idle_timeout:
                self.close(CloseCode.HEARTBEAT_TIMEOUT, "no heartbeat")
                return
            self._answer_overdue()
            self._ws.send_ping()

    # -- inbound frames ------------------------------------------------------------

    def _on_frame(self, frame: bytes) -> None:
        requests = self._requests
        if requests is not None:
            wait = requests.take(self._last_seen)  # when the frame was read
            if wait:
                self._refuse_request(frame, wait)
                return
            self._refused_in_a_row = 0
        request = None
        try:
            request = self._codec.decode(frame)
            self._route(request)
        except ProtocolError as exc:
            refused = type(request) if request is not None else None
            self._context.metrics.refused(refused, exc.code.name)
            self._enqueue(error_frame(exc.rid, exc.code, exc.message))

    def _refuse_request(self, frame: bytes, wait: float) -> None:
        """Answer a request over the session's limit with ``RATE_LIMITED``; after
        ``limits.flood_refusals`` of them in a row, close the session instead."""
        self._context.limit_metrics.refused["requests"] += 1
        self._refused_in_a_row += 1
        limits = self._context.limits
        if limits.flood_refusals and self._refused_in_a_row >= limits.flood_refusals:
            log.info("session %s: flooding; closing", self.session_id)
            self.close(CloseCode.FLOODING, "too many requests")
            return
        try:
            rid = self._codec.decode(frame).rid
        except ProtocolError as exc:
            rid = exc.rid
        message = (
            f"too many requests: at most {limits.requests_per_second:g} per second"
            f" (bursts of {limits.request_burst}) per session"
        )
        retry_after_ms = math.ceil(wait * 1000)
        self._enqueue(
            error_frame(rid, ErrorCode.RATE_LIMITED, message, retry_after_ms=retry_after_ms)
        )

    def _route(self, request: m.Request) -> None:
        rid = request.rid
        if isinstance(request, m.Ping):
            pong = m.Pong(rid=rid, server_time=now_ms())
            self._enqueue(self._codec.encode(pong))
            return
        max_pending = self._settings.max_pending
        if len(self._awaiting) + (self._sign_in is not None) >= max_pending:
            self._answer_overdue()
            if len(self._awaiting) + (self._sign_in is not None) >= max_pending:
                raise ProtocolError(
                    ErrorCode.TOO_MANY_PENDING, f"more than {max_pending} requests in flight", rid
                )
        if isinstance(request, _SIGN_IN_COMMANDS):
            if self.user_id is not None:
                raise ProtocolError(ErrorCode.ALREADY_AUTHENTICATED, "already signed in", rid)
            target = self._sign_in_target(request)
            answer_by_ms = 0
            if isinstance(request, m.Register):
                self._await_reply(rid)
            else:
                answer_by_ms = self._start_sign_in(rid)
            self._users_contacted.add(target)
            command = Command(self._ref, request, answer_by_ms=answer_by_ms)
            self._context.supervisor.tell(user.KIND, target, command)
            return
        if self.user_id is None:
            tag = request.__struct_config__.tag
            raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, f"sign in before sending {tag}", rid)
        kind, entity_id = routing.route(request, self.user_id)
        self._await_reply(rid)
        command = Command(self._ref, request, self.user_id, self.platform)
        self._context.supervisor.tell(kind, entity_id, command)

    def _start_sign_in(self, rid: int) -> int:
        """Count sign-in ``rid`` as in progress until its answer, or until
        ``sign_in_deadline`` has passed; the wall-clock time (ms) after which the node
        running it must not carry it out."""
        if self._sign_in is not None:
            raise ProtocolError(
                ErrorCode.ALREADY_AUTHENTICATED, "a sign-in is already in progress", rid
            )
        deadline = self._settings.sign_in_deadline
        due = trio.current_time() + deadline
        self._sign_in = (rid, due)
        if self._timer_sleep is not None:
            self._timer_sleep.deadline = min(self._timer_sleep.deadline, due)
        margin = min(SIGN_IN_CLOCK_MARGIN_S, deadline / 2)
        return now_ms() + int((deadline - margin) * 1000)

    def _answer_sign_in_overdue(self) -> None:
        """Answer ``UNAVAILABLE`` to the sign-in that got no answer in time. The node
        running it no longer carries it out (``Command.answer_by_ms``); if its success
        comes all the same, ``signed_in`` closes the session."""
        assert self._sign_in is not None
        rid = self._sign_in[0]
        self._sign_in = None
        log.info("session %s: sign-in got no answer in time", self.session_id)
        self._enqueue(error_frame(rid, ErrorCode.UNAVAILABLE, SIGN_IN_TOO_LATE))

    def _sign_in_target(self, request: m.Register | m.Login | m.TokenLogin) -> str:
        if isinstance(request, m.TokenLogin):
            return self._context.signer.verify(request.token, request.rid).user_id
        return request.user_id

    def _await_reply(self, rid: int) -> None:
        """Count request ``rid`` as pending until its reply, or until it is overdue."""
        if rid in self._awaiting:
            # Two requests with one rid: their replies could not be told apart.
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, f"rid: {rid} is already awaiting its reply", rid
            )
        self._awaiting[rid] = self._last_seen  # when the frame was read

    def _answer_overdue(self) -> None:
        """Answer ``UNAVAILABLE`` to every request that has awaited its reply for
        ``request_deadline`` or longer, and stop counting it as pending; its reply, if it
        ever comes, is dropped. Such a request was lost with a node that died, or on its
        way over pub/sub, or is stuck behind a very slow actor: it may or may not have
        taken effect."""
        awaiting = self._awaiting
        cutoff = trio.current_time() - self._settings.request_deadline
        overdue: list[int] = []
        for rid, read_at in awaiting.items():  # oldest first
            if read_at > cutoff:
                break
            overdue.append(rid)
        if not overdue:
            return
        log.info("session %s: %d requests got no answer in time", self.session_id, len(overdue))
        for rid in overdue:
            del awaiting[rid]
            self._enqueue(error_frame(rid, ErrorCode.UNAVAILABLE, NO_ANSWER_IN_TIME))

    # -- outbound: the session's Outbox -------------------------------------------------

    def _enqueue(self, frame: bytes) -> None:
        if self._finished or self._closing:
            return
        try:
            self._ws.send_message(frame)
        except PendingFull:
            log_event(
                log,
                "slow-consumer",
                user=self.user_id,
                platform=self.platform,
                session=self.session_id,
                node=self._context.node_id,
                queued=self._settings.outbound_queue,
            )
            self.close(CloseCode.SLOW_CONSUMER, "client does not read fast enough")

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        if ends_sign_in:
            if self._sign_in is None or rid not in (self._sign_in[0], 0):
                return  # already answered UNAVAILABLE: no answer came in time
            self._sign_in = None
        elif self._awaiting.pop(rid, None) is None:
            return  # already answered UNAVAILABLE: no answer came in time
        self._enqueue(frame)

    def push(self, frame: bytes) -> None:
        self._enqueue(frame)

    def signed_in(self, rid: int, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        if self._finished:
            # The sign-in registered a session that has ended: take it out again.
            self._context.supervisor.tell(user.KIND, user_id, SessionClosed(self.session_id))
            return
        if self._sign_in is None or rid not in (self._sign_in[0], 0):
            # A success after this session answered the sign-in UNAVAILABLE (the node
            # running it ignored its deadline, or its clock is far off): the client
            # believes it is not signed in, the server that it is. Close, so both agree;
            # the close takes the session out of presence, and the client signs in again.
            self._users_contacted.add(user_id)
            self.close(CloseCode.AUTH_TIMEOUT, "sign-in answered after its deadline")
            return
        self._sign_in = None
        self.user_id = user_id
        self.platform = platform
        self.token_id = token_id
        log_event(
            log,
            "sign-in",
            user=user_id,
            platform=platform,
            session=self.session_id,
            node=self._context.node_id,
            address=self.address,
        )
        self._context.supervisor.attach(user.KIND, user_id)
        self._context.hub.add(user_id, self)
        self._enqueue(frame)

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        """Send ``last_frame`` (if any) and the close frame, after what was sent before;
        nothing is sent after them."""
        if last_frame is not None:
            self._enqueue(last_frame)
        self._start_close(code, reason)
