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
``get_max_seqs`` / ``pull_messages`` and ``pull_notifications``. A lost close is
made good at the heartbeat: each node closes the sessions it holds that its
session set in Redis no longer lists.
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
from protocol import messages as m
from protocol.codec import ServerCodec, encode_server_message
from protocol.errors import CloseCode, ProtocolError
from storage import Storage

if TYPE_CHECKING:
    from actors.hub import Hub
    from actors.supervisor import Supervisor

log = logging.getLogger(__name__)

TARGETED_PUSH_MAX_USERS = 16
"""Pushes to at most this many users look up which nodes hold them; larger ones go
to every live node."""

ENDED_ELSEWHERE = "session ended elsewhere"
"""Why the heartbeat closes a session that was ended without this node being told."""
_ENDED_ELSEWHERE_FRAME = encode_server_message(
    m.Kicked(close_code=CloseCode.KICKED, reason=ENDED_ELSEWHERE)
)


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
    rid: int
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

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        envelope = SessionReply(self.session_id, rid, frame, ends_sign_in)
        self.link.publish_or_drop(self.origin, envelope)

    def push(self, frame: bytes) -> None:
        self.link.publish_or_drop(self.origin, SessionPush(self.session_id, frame))

    def signed_in(self, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        envelope = SessionSignedIn(self.session_id, user_id, platform, token_id, frame)
        self.link.publish_or_drop(self.origin, envelope)

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        envelope = CloseSession(self.session_id, code, reason, last_frame)
        self.link.publish_or_drop(self.origin, envelope)


class ClusterLink:
    """One per node. ``relay`` and ``close_session`` run in actor threads; ``run``
    in trio, each heartbeat in a worker thread; the listener in a thread of its own."""

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
        self._unlisted_at_last_beat: frozenset[str] = frozenset()
        """Local signed-in sessions the last heartbeat found missing from this node's
        session set (used by the heartbeat's worker thread only)."""
        self.published = 0
        self.received = 0
        self.dropped = 0
        """Envelopes not sent because Redis was out of reach (``publish_or_drop``)."""

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

    def publish_or_drop(self, node_id: str, envelope: Envelope) -> None:
        """Send an envelope that nothing here can answer for if it is lost: with Redis
        out of reach, the envelope is dropped with a log line instead of failing the
        actor that sends it. A reply or close lost so is made up for on the other
        node: a request unanswered for ``session.request_deadline`` is answered
        ``UNAVAILABLE`` there, a session ended here is closed at its heartbeat, and a
        device that missed a push sees the gap in seqs."""
        try:
            self.publish(node_id, envelope)
        except redis.RedisError as exc:
            self.dropped += 1
            log.warning(
                "dropped %s for node %s: storage unavailable (%s)",
                type(envelope).__name__,
                node_id,
                exc,
            )

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
        and every other node gets the push for many. With Redis out of reach the push
        is dropped with a log line: the message is stored already, and the devices on
        those nodes see the gap in seqs and pull."""
        try:
            self._relay(user_ids, frame, exclude_session, holding)
        except redis.RedisError as exc:
            self.dropped += 1
            log.warning("dropped a push to other nodes: storage unavailable (%s)", exc)

    def _relay(
        self,
        user_ids: Sequence[str],
        frame: bytes,
        exclude_session: str | None,
        holding: Collection[str] | None,
    ) -> None:
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
        self.publish_or_drop(node_id, CloseSession(session_id, code, reason, last_frame))

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
                token,
                hub.session_reply,
                envelope.session_id,
                envelope.rid,
                envelope.frame,
                envelope.ends_sign_in,
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
        """Renew this node's heartbeat, close its sessions that were ended elsewhere,
        and clean up after gone nodes. Runs in a worker thread (``trio.to_thread``),
        one beat at a time."""
        presence = self._storage.presence
        held = self._signed_in_sessions()
        beat = presence.heartbeat(self.node_timeout_s, int(time.time() * 1000))
        if beat.was_known:
            self._close_unlisted(held, beat.listed)
        else:
            # Other nodes may have given this node up and removed its sessions, which
            # were not ended for that: write them back rather than close them.
            presence.restore(self._signed_in_sessions())
            self._unlisted_at_last_beat = frozenset()
        for node in presence.dead_nodes():
            removed = presence.forget_node(node)
            log.info("node %s is gone; removed %d of its sessions from presence", node, removed)
        self.other_nodes = tuple(n for n in presence.live_nodes() if n != self.node_id)

    def _signed_in_sessions(self) -> list[tuple[str, str, int, str]]:
        """The hub's signed-in sessions, read in trio. Runs in a worker thread."""
        if self._hub is None:
            return []
        return trio.from_thread.run_sync(self._hub.signed_in_sessions, trio_token=self._token)

    def _close_unlisted(
        self, held: Sequence[tuple[str, str, int, str]], listed: Collection[tuple[str, str]]
    ) -> None:
        """Close, with the ``kicked`` push and 4500, the local signed-in sessions
        (``held``) that this node's session set (``listed``) no longer lists. Runs in
        the heartbeat's worker thread.

        Whoever removes a session from the set (a sign-in that displaces it, a
        password change, a logout) also closes it, but a close published to this node
        can be lost; this enforces the removal then.

        ``held`` must be read from the hub before ``listed`` is read from Redis. A
        session enters the hub only after its sign-in step, which adds it to the set,
        has returned (and, for a sign-in run by another node, after that node has
        published the signed-in state here). So every session in ``held`` was in the
        set before ``listed`` was read, and is missing from ``listed`` only if it was
        removed since. Read the other way round, a session signing in between the two
        reads would be in ``held`` and not in ``listed``, and be closed.

        A session is closed only when two beats in a row find it missing. By then the
        close sent by whoever removed it is long due, so this one never overtakes it
        (that close may carry another code and a last frame: ``TOKEN_REVOKED`` for a
        password change, ``LOGGED_OUT`` and the answer for a logout). A session that
        has closed meanwhile is no longer in the hub; closing it again is a no-op.
        """
        unlisted = frozenset(
            session_id for user_id, session_id, _, _ in held if (user_id, session_id) not in listed
        )
        ended = unlisted & self._unlisted_at_last_beat
        self._unlisted_at_last_beat = unlisted
        if not ended:
            return
        log.warning("closing %d session(s) ended elsewhere whose close was lost", len(ended))
        hub = self._hub
        assert hub is not None
        for session_id in ended:
            call_in_trio(
                self._token,
                hub.close_session,
                session_id,
                CloseCode.KICKED,
                ENDED_ELSEWHERE,
                _ENDED_ELSEWHERE_FRAME,
            )
