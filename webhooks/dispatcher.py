"""A node's webhooks: before-calls awaited by the actor handling the command, and
after-calls made by worker tasks from a bounded queue.

The calls are made with ``httpx.AsyncClient`` (on trio, through anyio): one client
of one keep-alive connection per before-call slot and per after-call worker, all
sharing one TLS context. One client with a pool of connections for all would be
simpler, but httpcore's pool scans every connection (a ``poll`` system call each)
for every request and retries when another task took the connection it chose: at
64 calls in flight that cost 1.9-3.9 ms of CPU per call here, against 0.7 ms with a
connection per client (bench/FINDINGS.md, "Webhooks"). At most
``webhooks.max_in_flight`` before-calls are awaiting their answer at once
(``trio.CapacityLimiter``, one free client each); a call's ``timeout`` bounds its
whole wait, its turn included. After-calls go to one of ``webhooks.workers`` queues
chosen by a key (the conversation for messages, else the user or group), so the calls of one
conversation are made one at a time, in the order of their actions, each retried
with back-off until it succeeds or its attempts are used up. A full queue drops the
call (logged, counted): the action and its pushes never wait for an after-call.

With no callback enabled (the default) ``Webhooks.on`` is False and callers test
only that attribute.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import trio
from prometheus_client import CollectorRegistry

from protocol.errors import ErrorCode, ProtocolError
from settings import WebhookSettings
from webhooks import catalog
from webhooks import metrics as outcomes
from webhooks.answers import BadAnswer, Verdict, read_verdict
from webhooks.metrics import WebhookMetrics
from webhooks.signing import encode_body, new_call_id, signed_request

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Callback:
    """An enabled callback, its settings resolved."""

    name: str
    url: str
    timeout: float
    failed_continue: bool
    content_types: frozenset[int]


@dataclass(frozen=True)
class AfterCall:
    callback: Callback
    call_id: str
    body: bytes


class CallFailed(Exception):
    """A call got no verdict; ``outcome`` says why (a metrics outcome)."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


def enabled_callbacks(settings: WebhookSettings) -> dict[str, Callback]:
    callbacks = {}
    for name in sorted(catalog.ALL):
        resolved = settings.resolved(name)
        if resolved.enable:
            callbacks[name] = Callback(
                name,
                resolved.url,
                resolved.timeout,
                resolved.failed_continue,
                frozenset(resolved.content_types),
            )
    return callbacks


class Webhooks:
    def __init__(
        self, settings: WebhookSettings, node_id: str, registry: CollectorRegistry
    ) -> None:
        self._settings = settings
        self._node_id = node_id
        self._callbacks = enabled_callbacks(settings)
        self.on = bool(self._callbacks)
        """Whether any callback is enabled: the one test on the paths of actions."""
        self._secret = settings.secret.encode()
        self._limiter = trio.CapacityLimiter(settings.max_in_flight)
        self._idle_clients: list[httpx.AsyncClient] = []
        """The before-call slots' clients not in use; one per free limiter token."""
        capacity = max(1, settings.queue_size // settings.workers)
        channels = [trio.open_memory_channel[AfterCall](capacity) for _ in range(settings.workers)]
        self._queues = [send for send, _ in channels]
        self._worker_inboxes = [receive for _, receive in channels]
        self.metrics = WebhookMetrics(registry, self.queue_length)

    def queue_length(self) -> int:
        return sum(queue.statistics().current_buffer_used for queue in self._queues)

    def wants(self, name: str, content_type: int | None = None) -> bool:
        """Whether callback ``name`` is enabled (for this content type, if it filters)."""
        callback = self._callbacks.get(name)
        if callback is None:
            return False
        return (
            content_type is None
            or not callback.content_types
            or (content_type in callback.content_types)
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The HTTP client and the after-call workers, until cancelled."""
        if not self.on:
            task_status.started()
            return
        tls = ssl.create_default_context()
        try:
            async with contextlib.AsyncExitStack() as clients:
                for _ in range(self._settings.max_in_flight):
                    self._idle_clients.append(await clients.enter_async_context(_client(tls)))
                async with trio.open_nursery() as workers:
                    for inbox in self._worker_inboxes:
                        client = await clients.enter_async_context(_client(tls))
                        workers.start_soon(self._work, client, inbox)
                    task_status.started()
        finally:
            self._idle_clients.clear()
            left = self.queue_length()
            if left:
                log.warning("node stopping: %d after-calls not made", left)

    # -- before ---------------------------------------------------------------------

    async def before(self, name: str, body: Mapping[str, Any]) -> Verdict | None:
        """Ask the app about an action, if callback ``name`` is enabled. Returns the
        verdict that allows it (perhaps with changed content), or None when there is
        nothing to ask or the call failed and ``failed_continue`` is set. Raises
        ``ProtocolError``: ``REFUSED_BY_APP`` with the app's code and message, or
        ``CALLBACK_FAILED`` when the call failed and ``failed_continue`` is not set."""
        callback = self._callbacks.get(name)
        if callback is None:
            return None
        call_id = new_call_id()
        payload = self._payload(name, call_id, body)
        started = trio.current_time()
        verdict: Verdict | None = None
        failure = CallFailed(outcomes.TIMEOUT, f"no answer within {callback.timeout} s")
        with trio.move_on_after(callback.timeout):
            async with self._limiter:
                try:
                    response = await self._post_before(callback, call_id, payload)
                except CallFailed as exc:
                    failure = exc
                else:
                    try:
                        verdict = read_verdict(response.status_code, response.content)
                    except BadAnswer as exc:
                        status_ok = response.status_code == 200
                        outcome = outcomes.BAD_ANSWER if status_ok else outcomes.BAD_STATUS
                        failure = CallFailed(outcome, str(exc))
        seconds = trio.current_time() - started
        if verdict is None:
            self.metrics.call(name, failure.outcome, seconds)
            if callback.failed_continue:
                log.warning("%s failed (%s); going on (failed_continue)", name, failure)
                return None
            log.warning("%s failed (%s); refusing the action", name, failure)
            raise ProtocolError(
                ErrorCode.CALLBACK_FAILED, f"the app's server did not answer {name}: {failure}"
            )
        if not verdict.allow:
            self.metrics.call(name, outcomes.REFUSED, seconds)
            raise ProtocolError(
                ErrorCode.REFUSED_BY_APP,
                f"refused by the app ({name}): {verdict.message}",
                app_code=verdict.code,
                app_message=verdict.message,
            )
        self.metrics.call(name, outcomes.OK, seconds)
        return verdict

    def bad_answer(self, name: str, reason: str) -> None:
        """The caller found an allowing verdict unusable (e.g. changed content it
        cannot store): count it, and refuse unless ``failed_continue``."""
        callback = self._callbacks[name]
        self.metrics.calls.labels(name, outcomes.BAD_ANSWER).inc()
        if callback.failed_continue:
            log.warning("%s answered unusable content (%s); going on unchanged", name, reason)
            return
        raise ProtocolError(
            ErrorCode.CALLBACK_FAILED, f"the app's server answered {name} badly: {reason}"
        )

    # -- after ----------------------------------------------------------------------

    def after(self, name: str, body: Mapping[str, Any], order_key: str) -> None:
        """Queue after-callback ``name`` (if enabled) and return at once. Calls with
        the same ``order_key`` are made in the order queued."""
        callback = self._callbacks.get(name)
        if callback is None:
            return
        call_id = new_call_id()
        call = AfterCall(callback, call_id, self._payload(name, call_id, body))
        queue = self._queues[zlib.crc32(order_key.encode()) % len(self._queues)]
        try:
            queue.send_nowait(call)
        except trio.WouldBlock:
            self.metrics.dropped.labels(name, outcomes.QUEUE_FULL).inc()
            log.warning("webhook queue full: %s %s dropped", name, call_id)

    async def _work(
        self, client: httpx.AsyncClient, inbox: trio.MemoryReceiveChannel[AfterCall]
    ) -> None:
        async for call in inbox:
            await self._deliver(client, call)

    async def _deliver(self, client: httpx.AsyncClient, call: AfterCall) -> None:
        callback = call.callback
        attempts = 1 + self._settings.retries
        for attempt in range(attempts):
            if attempt:
                delay = self._settings.retry_backoff * 2 ** (attempt - 1)
                await trio.sleep(min(delay, MAX_BACKOFF_S))
            started = trio.current_time()
            outcome = outcomes.TIMEOUT
            with trio.move_on_after(callback.timeout):
                try:
                    response = await self._post(client, callback, call.call_id, call.body)
                    outcome = (
                        outcomes.OK if 200 <= response.status_code < 300 else outcomes.BAD_STATUS
                    )
                except CallFailed as exc:
                    outcome = exc.outcome
            self.metrics.call(callback.name, outcome, trio.current_time() - started)
            if outcome == outcomes.OK:
                return
        self.metrics.dropped.labels(callback.name, outcomes.GAVE_UP).inc()
        log.warning(
            "%s %s given up after %d attempts (last: %s)",
            callback.name,
            call.call_id,
            attempts,
            outcome,
        )

    # -- the HTTP call ------------------------------------------------------------------

    def _payload(self, name: str, call_id: str, body: Mapping[str, Any]) -> bytes:
        envelope = {
            "callback": name,
            "call_id": call_id,
            "node_id": self._node_id,
            "time": int(time.time() * 1000),
        }
        return encode_body({**envelope, **body})

    async def _post_before(
        self, callback: Callback, call_id: str, payload: bytes
    ) -> httpx.Response:
        """A before-call on a free slot's client (the caller holds a limiter token)."""
        if not self._idle_clients:
            raise CallFailed(outcomes.UNREACHABLE, "the node's webhook clients are not running")
        client = self._idle_clients.pop()
        try:
            return await self._post(client, callback, call_id, payload)
        finally:
            self._idle_clients.append(client)

    async def _post(
        self, client: httpx.AsyncClient, callback: Callback, call_id: str, payload: bytes
    ) -> httpx.Response:
        request = signed_request(self._secret, callback.name, call_id, payload, int(time.time()))
        try:
            return await client.post(
                callback.url,
                content=request.body,
                headers=request.headers,
                timeout=callback.timeout,
            )
        except httpx.TimeoutException as exc:
            raise CallFailed(outcomes.TIMEOUT, f"timed out: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise CallFailed(outcomes.UNREACHABLE, f"{type(exc).__name__}: {exc}") from None


def _client(tls: ssl.SSLContext) -> httpx.AsyncClient:
    """A client of one keep-alive connection; no proxy or .netrc from the environment:
    calls go straight to the app's server."""
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(limits=one, verify=tls, follow_redirects=False, trust_env=False)
