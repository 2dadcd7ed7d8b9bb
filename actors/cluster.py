"""What makes several nodes on one Redis behave as one service: node heartbeats,
clean-up after nodes that are gone, and delivery to sessions held by other
nodes over Redis pub/sub.

Each node listens on its own channel ``<prefix>node:<id>:inbox``. A push to
users goes to the local sessions directly and, when other nodes are alive, one
publication per node that holds a session of those users (looked up in
presence; for pushes to many users, every live node). Closing a session held by
another node (a kick) is published to that node.

Redis pub/sub delivers at most once: a publication sent while a node is
restarting or reconnecting is lost. Clients recover what they missed with
``get_max_seqs`` / ``pull_messages`` and ``pull_notifications``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
import redis
import trio

from actors.bridge import call_in_trio
from storage import Storage

if TYPE_CHECKING:
    from actors.hub import Hub

log = logging.getLogger(__name__)

TARGETED_PUSH_MAX_USERS = 16
"""Pushes to at most this many users look up which nodes hold them; larger ones go
to every live node."""


class Deliver(msgspec.Struct, frozen=True, tag="deliver", array_like=True):
    user_ids: list[str]
    frame: bytes
    exclude_session: str | None


class CloseSession(msgspec.Struct, frozen=True, tag="close", array_like=True):
    session_id: str
    code: int
    reason: str
    last_frame: bytes | None


Envelope = Deliver | CloseSession
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Envelope).decode


class ClusterLink:
    """One per node. ``relay`` and ``close_session`` run in actor threads; ``run``
    in trio; the listener in a thread of its own."""

    def __init__(
        self,
        storage: Storage,
        node_id: str,
        trio_token: trio.lowlevel.TrioToken,
        node_timeout_s: int,
    ) -> None:
        self._storage = storage
        self.node_id = node_id
        self._token = trio_token
        self.node_timeout_s = node_timeout_s
        self.other_nodes: tuple[str, ...] = ()
        """Live nodes other than this one, as of the last heartbeat (replaced whole)."""
        self._hub: Hub | None = None
        self._stop = threading.Event()
        self.published = 0
        self.received = 0

    def attach(self, hub: Hub) -> None:
        self._hub = hub

    def inbox(self, node_id: str) -> str:
        return f"{self._storage.keys.node(node_id)}:inbox"

    # -- sending (actor threads) ------------------------------------------------

    def relay(self, user_ids: Sequence[str], frame: bytes, exclude_session: str | None) -> None:
        """Publish a push to the other nodes that hold sessions of ``user_ids``."""
        others = self.other_nodes
        if not others or not user_ids:
            return
        if len(user_ids) <= TARGETED_PUSH_MAX_USERS:
            holding = self._storage.presence.nodes_of(user_ids)
            targets = [n for n in others if n in holding]
        else:
            targets = list(others)
        if not targets:
            return
        payload = _encode(Deliver(list(user_ids), frame, exclude_session))
        pipe = self._storage.redis.pipeline(transaction=False)
        for node in targets:
            pipe.publish(self.inbox(node), payload)
        pipe.execute()
        self.published += len(targets)

    def close_session(
        self, node_id: str, session_id: str, code: int, reason: str, last_frame: bytes | None
    ) -> None:
        """Close a session wherever it is held."""
        if node_id == self.node_id:
            assert self._hub is not None
            call_in_trio(self._token, self._hub.close_session, session_id, code, reason, last_frame)
            return
        payload = _encode(CloseSession(session_id, code, reason, last_frame))
        self._storage.redis.publish(self.inbox(node_id), payload)
        self.published += 1

    # -- receiving (listener thread) ------------------------------------------------

    def _listen(self) -> None:
        """Runs in its own thread until stopped; reconnects when Redis goes away."""
        delay = 0.1
        while not self._stop.is_set():
            pubsub = self._storage.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.inbox(self.node_id))
                delay = 0.1
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.1)
                    if message is not None and message["type"] == "message":
                        self._on_envelope(message["data"])
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("pub/sub connection lost (%s); reconnecting", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()

    def _on_envelope(self, data: bytes) -> None:
        try:
            envelope = _decode(data)
        except msgspec.DecodeError:
            log.error("undecodable cluster envelope dropped")
            return
        hub = self._hub
        assert hub is not None
        self.received += 1
        if isinstance(envelope, Deliver):
            call_in_trio(
                self._token, hub.push, envelope.user_ids, envelope.frame, envelope.exclude_session
            )
        else:
            call_in_trio(
                self._token,
                hub.close_session,
                envelope.session_id,
                envelope.code,
                envelope.reason,
                envelope.last_frame,
            )

    # -- lifetime (trio) ------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, clean up gone nodes, and listen, until cancelled."""
        listener = threading.Thread(
            target=self._listen, name=f"cluster-{self.node_id}", daemon=True
        )
        listener.start()
        try:
            await self._beat()
            task_status.started()
            while True:
                await trio.sleep(max(self.node_timeout_s / 3, 0.2))
                await self._beat()
        finally:
            self._stop.set()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(listener.join, 5.0)

    async def _beat(self) -> None:
        try:
            await trio.to_thread.run_sync(self._beat_in_thread)
        except redis.RedisError as exc:
            log.warning("node heartbeat failed: %s", exc)

    def _beat_in_thread(self) -> None:
        presence = self._storage.presence
        still_known = presence.heartbeat(self.node_timeout_s, int(time.time() * 1000))
        if not still_known and self._hub is not None:
            # Other nodes may have given this node up and removed its sessions.
            sessions = trio.from_thread.run_sync(
                self._hub.signed_in_sessions, trio_token=self._token
            )
            presence.restore(sessions)
        for node in presence.dead_nodes():
            removed = presence.forget_node(node)
            log.info("node %s is gone; removed %d of its sessions from presence", node, removed)
        self.other_nodes = tuple(n for n in presence.live_nodes() if n != self.node_id)
