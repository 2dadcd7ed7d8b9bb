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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import redis
import trio

from actors.bridge import call_in_trio
from actors.messages import Command, SessionRef
from protocol.codec import ServerCodec
from protocol.errors import ProtocolError
from storage import Storage

if TYPE_CHECKING:
    from actors.hub import Hub
    from actors.supervisor import Supervisor

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


class Forward(msgspec.Struct, frozen=True, tag="forward", array_like=True):
    """A command for an entity owned by the receiving node."""

    kind: str
    entity_id: str
    request: bytes
    session_id: str
    address: str
    origin: str
    user_id: str | None
    platform: int | None
    hops: int


class SessionReply(msgspec.Struct, frozen=True, tag="reply", array_like=True):
    session_id: str
    frame: bytes
    ends_sign_in: bool


class SessionPush(msgspec.Struct, frozen=True, tag="push", array_like=True):
    session_id: str
    frame: bytes


class SessionSignedIn(msgspec.Struct, frozen=True, tag="signed_in", array_like=True):
    session_id: str
    user_id: str
    platform: int
    token_id: str
    frame: bytes


class Membership(msgspec.Struct, frozen=True, tag="membership", array_like=True):
    """Broadcast by a node when it starts (``joined``) and when it stops."""

    node_id: str
    joined: bool


Envelope = (
    Deliver | CloseSession | Forward | SessionReply | SessionPush | SessionSignedIn | Membership
)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Envelope).decode
_requests = ServerCodec()


@dataclass(frozen=True, eq=False)
class RemoteOutbox:
    """The outbox of a session held by another node: everything is published to it."""

    session_id: str
    origin: str
    link: ClusterLink

    def reply(self, frame: bytes, ends_sign_in: bool = False) -> None:
        self.link.publish(self.origin, SessionReply(self.session_id, frame, ends_sign_in))

    def push(self, frame: bytes) -> None:
        self.link.publish(self.origin, SessionPush(self.session_id, frame))

    def signed_in(self, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        envelope = SessionSignedIn(self.session_id, user_id, platform, token_id, frame)
        self.link.publish(self.origin, envelope)

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        self.link.publish(self.origin, CloseSession(self.session_id, code, reason, last_frame))


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
        self._supervisor: Supervisor | None = None
        self._stop = threading.Event()
        self.published = 0
        self.received = 0

    def attach(self, hub: Hub) -> None:
        self._hub = hub

    def attach_supervisor(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def node_of(self, session: SessionRef) -> str:
        """The node that holds a session."""
        outbox = session.outbox
        return outbox.origin if isinstance(outbox, RemoteOutbox) else self.node_id

    def publish(self, node_id: str, envelope: Envelope) -> None:
        """Send an envelope to a node. Runs in the caller's (an actor's) thread."""
        self._storage.redis.publish(self.inbox(node_id), _encode(envelope))
        self.published += 1

    def forward(self, kind: str, entity_id: str, owner: str, command: Command) -> None:
        """Send a command to the node that owns its entity. Runs in an actor thread."""
        session = command.session
        origin = self.node_of(session)
        self.publish(
            owner,
            Forward(
                kind,
                entity_id,
                _encode(command.request),
                session.session_id,
                session.address,
                origin,
                command.user_id,
                command.platform,
                command.hops + 1,
            ),
        )

    def inbox(self, node_id: str) -> str:
        return f"{self._storage.keys.node(node_id)}:inbox"

    def broadcast_channel(self) -> str:
        return f"{self._storage.keys.prefix}cluster"

    # -- sending (actor threads) ------------------------------------------------

    def relay(
        self,
        user_ids: Sequence[str],
        frame: bytes,
        exclude_session: str | None,
        holding: Collection[str] | None = None,
    ) -> None:
        """Publish a push to the other nodes that hold sessions of ``user_ids``.

        ``holding``: those nodes, when the caller has just read them (e.g. in the step
        that stored the message); otherwise they are looked up here for a few users,
        and every other node gets the push for many."""
        others = self.other_nodes
        if not others or not user_ids:
            return
        if holding is not None:
            targets = [n for n in others if n in holding]
        elif len(user_ids) <= TARGETED_PUSH_MAX_USERS:
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
        self.publish(node_id, CloseSession(session_id, code, reason, last_frame))

    # -- receiving (listener thread) ------------------------------------------------

    def _listen(self) -> None:
        """Runs in its own thread until stopped; reconnects when Redis goes away."""
        delay = 0.1
        while not self._stop.is_set():
            pubsub = self._storage.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.inbox(self.node_id), self.broadcast_channel())
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
        token = self._token
        if isinstance(envelope, Membership):
            if envelope.node_id != self.node_id:
                others = set(self.other_nodes)
                if envelope.joined:
                    others.add(envelope.node_id)
                else:
                    others.discard(envelope.node_id)
                self.other_nodes = tuple(sorted(others))
        elif isinstance(envelope, Deliver):
            call_in_trio(
                token, hub.push, envelope.user_ids, envelope.frame, envelope.exclude_session
            )
        elif isinstance(envelope, CloseSession):
            call_in_trio(
                token,
                hub.close_session,
                envelope.session_id,
                envelope.code,
                envelope.reason,
                envelope.last_frame,
            )
        elif isinstance(envelope, SessionReply):
            call_in_trio(
                token, hub.session_reply, envelope.session_id, envelope.frame, envelope.ends_sign_in
            )
        elif isinstance(envelope, SessionPush):
            call_in_trio(token, hub.session_push, envelope.session_id, envelope.frame)
        elif isinstance(envelope, SessionSignedIn):
            call_in_trio(
                token,
                hub.session_signed_in,
                envelope.session_id,
                envelope.user_id,
                envelope.platform,
                envelope.token_id,
                envelope.frame,
            )
        else:
            self._on_forward(envelope)

    def _on_forward(self, forward: Forward) -> None:
        supervisor = self._supervisor
        assert supervisor is not None
        try:
            request = _requests.decode(forward.request)
        except ProtocolError as exc:
            log.error("undecodable forwarded command dropped: %s", exc.message)
            return
        outbox = RemoteOutbox(forward.session_id, forward.origin, self)
        command = Command(
            SessionRef(forward.session_id, forward.address, outbox),
            request,
            forward.user_id,
            forward.platform,
            forward.hops,
        )
        call_in_trio(self._token, supervisor.tell, forward.kind, forward.entity_id, command)

    # -- lifetime (trio) ------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, clean up gone nodes, and listen, until cancelled."""
        listener = threading.Thread(
            target=self._listen, name=f"cluster-{self.node_id}", daemon=True
        )
        listener.start()
        try:
            # A node restarted under the same id must not leave its old sessions online.
            await trio.to_thread.run_sync(self._storage.presence.forget_node, self.node_id)
            await self._beat()
            await trio.to_thread.run_sync(self._announce, True)
            task_status.started()
            while True:
                await trio.sleep(max(self.node_timeout_s / 3, 0.2))
                await self._beat()
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await trio.to_thread.run_sync(self._announce, False)
                except redis.RedisError as exc:
                    log.warning("could not announce leaving: %s", exc)
            self._stop.set()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(listener.join, 5.0)

    def _announce(self, joined: bool) -> None:
        payload = _encode(Membership(self.node_id, joined))
        self._storage.redis.publish(self.broadcast_channel(), payload)

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
