"""The async (trio) Python client for Parley.

    async with open_client("ws://127.0.0.1:8080") as client:
        await client.register("alice", "secret-pw")
        await client.login("alice", "secret-pw", Platform.LINUX)
        async for event in client.events():
            print(event)

Every request is a typed method that returns the reply (or raises
:class:`ParleyError`). Pushes and connection events come from ``events()``.
When the connection drops with a transient close code, the client reconnects
with exponential back-off and signs in again with its token.
"""

from __future__ import annotations

import itertools
import logging
import random
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    connect_websocket_url,
    wrap_client_stream,
)

from client.chat import ChatMethods
from client.errors import ClientClosed, ConnectionLost, ParleyError
from client.events import Disconnected, Reconnected
from client.groups import GroupMethods
from client.relations import RelationMethods
from protocol import messages as m
from protocol.codec import ClientCodec
from protocol.errors import ErrorCode, should_reconnect
from protocol.platforms import Platform

log = logging.getLogger(__name__)

Event = (
    m.Kicked
    | m.SelfUpdated
    | m.Notification
    | m.NewMessage
    | m.Typing
    | m.ReadReceipt
    | m.ReadStateChanged
    | m.ConversationChanged
    | Disconnected
    | Reconnected
)
R = TypeVar("R", bound=m.Reply)
RESUME_TIMEOUT_S = 12.0
"""How long a sign-in after a reconnect waits for its answer before it is sent again:
longer than the server's own deadline for answering a sign-in (10 s,
``session.sign_in_deadline``), so that a lost connection, not a slow node, ends it."""
_RESUME_AGAIN = (ErrorCode.UNAVAILABLE, ErrorCode.ALREADY_AUTHENTICATED)


class _Waiter:
    __slots__ = ("done", "error", "reply")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: m.Reply | None = None
        self.error: BaseException | None = None


class ParleyClient(RelationMethods, ChatMethods, GroupMethods):
    """A session with a Parley server. Create it with :func:`open_client`."""

    def __init__(
        self,
        url: str,
        *,
        reconnect: bool = True,
        request_timeout: float = 30.0,
        max_frame_bytes: int = 16 << 20,
        event_buffer: int = 10_000,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        subprotocols: Sequence[str] = m.SUPPORTED_SUBPROTOCOLS,
        fallback_urls: Sequence[str] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.ssl_context = ssl_context
        """For ``wss://`` URLs: the TLS settings (e.g. a private CA to trust); ``None``
        uses the system's trusted certificates."""
        self.fallback_urls = list(fallback_urls)
        """Other nodes of the same service, tried in turn when reconnecting."""
        self.reconnect = reconnect
        self.request_timeout = request_timeout
        self.max_frame_bytes = max_frame_bytes
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.subprotocols = list(subprotocols)
        self.user_id: str | None = None
        self.platform: int | None = None
        self.token: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._codec = ClientCodec()
        self._rids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._ws: WebSocketConnection | None = None
        self._ready = trio.Event()
        self._closed = trio.Event()
        self._events_in, self._events_out = trio.open_memory_channel[Event](event_buffer)
        self._nursery: trio.Nursery | None = None

    # -- lifetime ------------------------------------------------------------------

    async def connect(self, nursery: trio.Nursery) -> None:
        """Open the first connection; the client's background task runs in ``nursery``."""
        self._nursery = nursery
        ws = await self._connect()
        self._ready.set()
        nursery.start_soon(self._run, ws)

    async def _connect(self, attempt: int = 0) -> WebSocketConnection:
        assert self._nursery is not None
        urls = [self.url, *self.fallback_urls]
        url = urls[attempt % len(urls)]
        options: dict[str, Any] = {
            "subprotocols": self.subprotocols,
            "max_message_size": self.max_frame_bytes,
            "message_queue_size": 64,
        }
        if urlsplit(url).scheme == "wss":
            ws = await self._connect_tls(url, options)
        else:
            ws = await connect_websocket_url(self._nursery, url, **options)
        self._ws = ws
        return ws

    async def _connect_tls(self, url: str, options: dict[str, Any]) -> WebSocketConnection:
        """The TLS handshake first, then the WebSocket over it: trio-websocket's own
        ``wss://`` connect never returns when the TLS handshake fails (an untrusted
        certificate); here it raises ``trio.BrokenResourceError`` (its cause says why)."""
        assert self._nursery is not None
        parts = urlsplit(url)
        host = parts.hostname or ""
        context = self.ssl_context or ssl.create_default_context()
        stream = await trio.open_ssl_over_tcp_stream(host, parts.port or 443, ssl_context=context)
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return await wrap_client_stream(self._nursery, stream, parts.netloc, resource, **options)

    async def _run(self, ws: WebSocketConnection) -> None:
        attempt = 0
        while True:
            await self._read(ws)
            code, reason = self.close_code, self.close_reason
            self._ws = None
            self._ready = trio.Event()
            self._fail_waiters(ConnectionLost(code, reason))
            again = self.reconnect and should_reconnect(code) and not self._closed.is_set()
            self._emit(Disconnected(code, reason, again))
            if not again:
                self._closed.set()
                self._events_in.close()
                return
            ws, attempt = await self._reconnect(attempt)

    async def _reconnect(self, attempt: int) -> tuple[WebSocketConnection, int]:
        delay = self.backoff_initial
        while True:
            attempt += 1
            await trio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.backoff_max)
            try:
                ws = await self._connect(attempt)
            except (OSError, HandshakeError, trio.TooSlowError, trio.BrokenResourceError) as exc:
                log.debug("reconnect attempt %d failed: %r", attempt, exc)
                continue
            assert self._nursery is not None
            if self.token is not None:
                # Requests wait until the session is signed in again.
                self._nursery.start_soon(self._resume, ws, attempt)
            else:
                self._ready.set()
                self._emit(Reconnected(attempt))
            return ws, attempt

    async def _resume(self, ws: WebSocketConnection, attempt: int) -> None:
        token = self.token
        assert token is not None
        delay = self.backoff_initial
        # A sign-in can be lost in a cluster that is losing a node: try until the
        # server answers, for as long as this connection lasts.
        while ws is self._ws:
            request = m.TokenLogin(rid=self.next_rid(), token=token)
            try:
                with trio.fail_after(min(self.request_timeout, RESUME_TIMEOUT_S)):
                    self._signed_in(await self._request_on(ws, request, m.LoginOk))
            except (trio.TooSlowError, ConnectionLost):
                await trio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.backoff_max)
                continue
            except ParleyError as exc:
                if exc.error in _RESUME_AGAIN:
                    # The node that owns this user did not answer in time (it may be
                    # failing over; nothing took effect), or the sign-in sent before
                    # is still awaiting its answer: try again.
                    await trio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, self.backoff_max)
                    continue
                log.warning("could not resume the session: %s", exc)
                if ws is self._ws:
                    self._ready.set()  # requests now get the server's own answer
                return
            except ClientClosed as exc:
                log.warning("could not resume the session: %s", exc)
                if ws is self._ws:
                    self._ready.set()  # requests now get the server's own answer
                return
            if ws is self._ws:
                self._ready.set()
                self._emit(Reconnected(attempt))
            return

    async def _read(self, ws: WebSocketConnection) -> None:
        try:
            while True:
                data = await ws.get_message()
                if isinstance(data, bytes):
                    try:
                        message = self._codec.decode(data)
                    except msgspec.ValidationError as exc:
                        # A newer server may send what this SDK does not know: skip it.
                        log.debug("ignored a server message this client does not know: %s", exc)
                        continue
                    self._dispatch(message)
        except ConnectionClosed as exc:
            self.close_code = exc.reason.code if exc.reason else None
            self.close_reason = exc.reason.reason if exc.reason else None

    def _dispatch(self, message: m.ServerMessage) -> None:
        if isinstance(message, m.Reply):
            waiter = self._waiters.pop(message.rid, None)
            if waiter is not None:
                waiter.reply = message
                waiter.done.set()
            elif isinstance(message, m.Error):
                log.warning("error for no request: %s %s", message.name, message.message)
            return
        self._emit(message)

    def _emit(self, event: Event) -> None:
        try:
            self._events_in.send_nowait(event)
        except trio.WouldBlock:
            log.warning("event buffer full; dropped %s", type(event).__name__)
        except trio.ClosedResourceError:
            pass

    def _fail_waiters(self, error: BaseException) -> None:
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.error = error
            waiter.done.set()

    async def aclose(self, code: int = 1000) -> None:
        """Close the connection and stop reconnecting."""
        self._closed.set()
        ws = self._ws
        if ws is not None:
            with trio.move_on_after(5):
                await ws.aclose(code)
        self._fail_waiters(ClientClosed("client closed"))

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- requests ----------------------------------------------------------------------

    def next_rid(self) -> int:
        return next(self._rids)

    async def send_raw(self, frame: bytes | str) -> None:
        """Send a frame as is (for tests of the server's error handling)."""
        ws = await self._connected()
        await ws.send_message(frame)

    async def _connected(self) -> WebSocketConnection:
        with trio.fail_after(self.request_timeout):
            while True:
                if self._closed.is_set():
                    raise ClientClosed("client closed")
                await self._ready.wait()
                if self._ws is not None:
                    return self._ws
                # The connection dropped just after it was ready: wait for the next one.
                await trio.sleep(0)

    async def request(self, request: m.ClientMessage, expect: type[R]) -> R:
        """Send ``request`` (its ``rid`` must come from :meth:`next_rid`) and await its reply."""
        return await self._request_on(await self._connected(), request, expect)

    async def _request_on(
        self, ws: WebSocketConnection, request: m.ClientMessage, expect: type[R]
    ) -> R:
        waiter = _Waiter()
        self._waiters[request.rid] = waiter
        try:
            await ws.send_message(self._codec.encode(request))
        except ConnectionClosed as exc:
            self._waiters.pop(request.rid, None)
            raise ConnectionLost(exc.reason.code if exc.reason else None) from None
        try:
            with trio.fail_after(self.request_timeout):
                await waiter.done.wait()
        finally:
            self._waiters.pop(request.rid, None)
        if waiter.error is not None:
            raise waiter.error
        reply = waiter.reply
        if isinstance(reply, m.Error):
            retry_after = None if reply.retry_after_ms is None else reply.retry_after_ms / 1000
            raise ParleyError(
                reply.code,
                reply.name,
                reply.message,
                reply.app_code,
                reply.app_message,
                retry_after,
            )
        if not isinstance(reply, expect):
            raise TypeError(f"expected {expect.__name__}, got {type(reply).__name__}")
        return reply

    # -- events -----------------------------------------------------------------------

    def events(self) -> AsyncIterator[Event]:
        """Server pushes and connection events, in arrival order."""
        return self._events_out.__aiter__()

    async def next_event(self, kind: type[Any] | None = None, timeout: float = 10.0) -> Any:
        """The next event (of ``kind``, skipping others); ``trio.TooSlowError`` on timeout."""
        with trio.fail_after(timeout):
            async for event in self._events_out:
                if kind is None or isinstance(event, kind):
                    return event
        raise ClientClosed("no more events")

    # -- commands ----------------------------------------------------------------------

    async def ping(self) -> int:
        """Round trip to the server; returns the server's clock in ms."""
        reply = await self.request(m.Ping(rid=self.next_rid()), m.Pong)
        return reply.server_time

    async def register(
        self, user_id: str, password: str, *, nickname: str = "", face_url: str = "", ex: str = ""
    ) -> None:
        request = m.Register(
            rid=self.next_rid(),
            user_id=user_id,
            password=password,
            nickname=nickname,
            face_url=face_url,
            ex=ex,
        )
        await self.request(request, m.Registered)

    async def login(self, user_id: str, password: str, platform: int = Platform.LINUX) -> m.LoginOk:
        request = m.Login(
            rid=self.next_rid(),
            user_id=user_id,
            password=password,
            platform=platform,  # type: ignore[arg-type]
        )
        return self._signed_in(await self.request(request, m.LoginOk))

    async def login_with_token(self, token: str) -> m.LoginOk:
        request = m.TokenLogin(rid=self.next_rid(), token=token)
        return self._signed_in(await self.request(request, m.LoginOk))

    def _signed_in(self, reply: m.LoginOk) -> m.LoginOk:
        self.user_id = reply.user_id
        self.platform = reply.platform
        self.token = reply.token
        return reply

    async def logout(self) -> None:
        """Revoke the token and end the session; the client does not reconnect."""
        self.token = None
        await self.request(m.Logout(rid=self.next_rid()), m.Ok)

    async def change_password(self, old_password: str, new_password: str) -> str:
        """Change the password; returns (and keeps) the new token."""
        request = m.ChangePassword(
            rid=self.next_rid(), old_password=old_password, new_password=new_password
        )
        reply = await self.request(request, m.TokenIssued)
        self.token = reply.token
        return reply.token

    async def get_self(self) -> m.UserProfile:
        return (await self.request(m.GetSelf(rid=self.next_rid()), m.Profile)).profile

    async def set_profile(
        self, *, nickname: str | None = None, face_url: str | None = None, ex: str | None = None
    ) -> m.UserProfile:
        request = m.SetProfile(rid=self.next_rid(), nickname=nickname, face_url=face_url, ex=ex)
        return (await self.request(request, m.Profile)).profile

    async def get_users(self, user_ids: Sequence[str]) -> m.Users:
        return await self.request(m.GetUsers(rid=self.next_rid(), user_ids=list(user_ids)), m.Users)

    async def get_online_status(self, user_ids: Sequence[str]) -> dict[str, list[int]]:
        request = m.GetOnlineStatus(rid=self.next_rid(), user_ids=list(user_ids))
        reply = await self.request(request, m.OnlineStatus)
        return {status.user_id: status.platforms for status in reply.statuses}


@asynccontextmanager
async def open_client(url: str, **options: Any) -> AsyncIterator[ParleyClient]:
    """Connect to ``url`` and yield a client; closes it on exit."""
    async with trio.open_nursery() as nursery:
        client = ParleyClient(url, **options)
        await client.connect(nursery)
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()
