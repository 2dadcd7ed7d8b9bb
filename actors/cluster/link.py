"""What makes several nodes on one Redis behave as one service: node heartbeats,
clean-up after nodes that are gone, and delivery to sessions held by other
nodes over Redis pub/sub.

Each node listens on its own channel ``<prefix>{n:<id>}:inbox``. A push to
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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import redis
import trio

from actors.cluster.envelopes import (
    CloseSession,
    Deliver,
    Envelope,
    Forward,
    InboxProbe,
    Membership,
    SessionPush,
    SessionReply,
    SessionSignedIn,
    decode_envelope,
    encode_envelope,
)
from actors.cluster.forwarded import ForwardedRequests
from actors.cluster.identity import NodeRefused, describe_record
from actors.cluster.remote_outbox import RemoteOutbox
from actors.runtime.logs import log_event
from actors.runtime.messages import Command, SessionRef
from actors.runtime.steps import now_ms
from protocol import messages as m
from protocol.codec import ForwardedRequest, ServerCodec, encode_server_message
from protocol.errors import CloseCode, ProtocolError
from storage import Storage, Subscriptions
from storage.pubsub import SubscriptionLost

log = logging.getLogger(__name__)

TARGETED_PUSH_MAX_USERS = 16
"""Pushes to at most this many users look up which nodes hold them; larger ones go
to every live node."""
SUBSCRIBE_WAIT_S = 10.0
"""How long a starting node waits for its first subscription (it starts anyway, and
the listener keeps trying, if Redis does not answer by then)."""
LISTENER_BATCH = 256
"""Envelopes the listener thread hands to the loop at most in one callback."""

ENDED_ELSEWHERE = "session ended elsewhere"
"""Why the heartbeat closes a session that was ended without this node being told."""
_ENDED_ELSEWHERE_FRAME = encode_server_message(
    m.Kicked(close_code=CloseCode.KICKED, reason=ENDED_ELSEWHERE)
)
_requests = ServerCodec(ForwardedRequest)


class LocalSessions(Protocol):
    """The node's live sessions (the hub), as the cluster link reaches them."""

    def push(self, user_ids: Sequence[str], frame: bytes, exclude_session: str | None) -> None: ...

    def close_session(
        self, session_id: str, code: int, reason: str, last_frame: bytes | None
    ) -> None: ...

    def session_reply(
        self, session_id: str, rid: int, frame: bytes, ends_sign_in: bool
    ) -> None: ...

    def session_push(self, session_id: str, frame: bytes) -> None: ...

    def session_signed_in(
        self, session_id: str, rid: int, user_id: str, platform: int, token_id: str, frame: bytes
    ) -> None: ...

    def signed_in_sessions(self) -> list[tuple[str, str, int, str]]: ...


class CommandSink(Protocol):
    """Where forwarded commands go (the supervisor)."""

    def tell(self, kind: str, entity_id: str, message: Any) -> None: ...


@dataclass(frozen=True, eq=False)
class _Relay:
    user_ids: tuple[str, ...]
    frame: bytes
    exclude_session: str | None
    holding: Collection[str] | None


class ClusterLink:
    """One per node; everything runs on the node's event loop except the pub/sub
    listener, a thread of its own that hands envelopes to the loop in batches."""

    def __init__(
        self, storage: Storage, node_id: str, node_timeout_s: int, request_deadline_s: float
    ) -> None:
        self._storage = storage
        self.node_id = node_id
        self.node_timeout_s = node_timeout_s
        self.other_nodes: tuple[str, ...] = ()
        """Live nodes other than this one, as of the last heartbeat (replaced whole)."""
        self._sessions: LocalSessions | None = None
        self._commands: CommandSink | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        """Set once the listener has subscribed the first time."""
        self._resubscribe = threading.Event()
        """Set by the heartbeat when this node's inbox probe reached no subscriber."""
        self._relays: list[_Relay] = []
        self._relay_wakeup = trio.Event()
        self._unlisted_at_last_beat: frozenset[str] = frozenset()
        """Local signed-in sessions the last heartbeat found missing from this node's
        session set."""
        self.published = 0
        self.received = 0
        self.dropped = 0
        """Envelopes not sent because Redis was out of reach (``publish_or_drop``)."""
        self.resubscribed_by_probe = 0
        """Times the heartbeat's inbox probe found no subscriber (``_probe_inbox``)."""
        self.forwarded = ForwardedRequests(request_deadline_s)

    def attach(self, sessions: LocalSessions, commands: CommandSink) -> None:
        """The node's hub and supervisor, which envelopes from other nodes reach."""
        self._sessions = sessions
        self._commands = commands

    def node_of(self, session: SessionRef) -> str:
        """The node that holds a session."""
        outbox = session.outbox
        return outbox.origin if isinstance(outbox, RemoteOutbox) else self.node_id

    def inbox(self, node_id: str) -> str:
        return self._storage.keys.node_inbox(node_id)

    def broadcast_channel(self) -> str:
        return self._storage.keys.broadcast_channel()

    # -- sending ------------------------------------------------------------------

    async def publish(self, node_id: str, envelope: Envelope) -> int:
        """Send an envelope to a node: how many subscribers got it (0: the node is not
        listening); raises if Redis is out of reach."""
        receivers = await self._storage.publish(self.inbox(node_id), encode_envelope(envelope))
        self.published += 1
        return receivers

    def publish_or_drop(self, node_id: str, envelope: Envelope) -> None:
        """Send an envelope that nothing here can answer for if it is lost, without
        waiting: with Redis out of reach, the envelope is dropped with a log line
        instead of failing the actor that sends it. A reply or close lost so is
        made up for on the other node: a request unanswered for
        ``session.request_deadline`` is answered ``UNAVAILABLE`` there, a session
        ended here is closed at its heartbeat, and a device that missed a push sees
        the gap in seqs."""
        kind = type(envelope).__name__

        def dropped(exc: Exception) -> None:
            self.dropped += 1
            log.warning("dropped %s for node %s: storage unavailable (%s)", kind, node_id, exc)

        self._storage.publish_detached(
            self.inbox(node_id), encode_envelope(envelope), on_error=dropped
        )
        self.published += 1

    async def forward(self, kind: str, entity_id: str, owner: str, command: Command) -> bool:
        """Send a command to the node that owns its entity; False if no node was
        subscribed to that node's inbox (it is gone, or subscribing again after a
        failover): the command was lost, and is to be answered ``UNAVAILABLE``."""
        session = command.session
        envelope = Forward(
            kind,
            entity_id,
            encode_envelope(command.request),
            session.session_id,
            session.address,
            self.node_of(session),
            command.user_id,
            command.platform,
            command.hops + 1,
            command.answer_by_ms,
        )
        # Counted as waiting before the publish: the reply may come back before the
        # publish's own answer does.
        local = not isinstance(session.outbox, RemoteOutbox)
        if local:
            self.forwarded.add(command)
        try:
            receivers = await self.publish(owner, envelope)
        except BaseException:
            if local:
                self.forwarded.replied(session.session_id, command.request.rid)
            raise
        if not receivers and local:
            self.forwarded.replied(session.session_id, command.request.rid)
        return bool(receivers)

    def relay(
        self,
        user_ids: Sequence[str],
        frame: bytes,
        exclude_session: str | None,
        holding: Collection[str] | None = None,
    ) -> None:
        """Publish a push to the other nodes that hold sessions of ``user_ids``, without
        waiting; pushes leave in the order they were relayed.

        ``holding``: those nodes, when the caller has just read them (e.g. in the step
        that stored the message); otherwise they are looked up for a few users, and
        every other node gets the push for many. With Redis out of reach the push is
        dropped with a log line: what it carries is stored already, and the devices
        on those nodes see the gap in seqs and pull."""
        if not user_ids:
            return
        if not self.other_nodes and not (holding and any(n != self.node_id for n in holding)):
            return
        self._relays.append(_Relay(tuple(user_ids), frame, exclude_session, holding))
        self._relay_wakeup.set()

    async def _run_relays(self) -> None:
        while True:
            await self._relay_wakeup.wait()
            self._relay_wakeup = trio.Event()
            batch, self._relays = self._relays, []
            targets = await self._targets_of(batch)
            for relay, nodes in zip(batch, targets, strict=True):
                envelope = Deliver(list(relay.user_ids), relay.frame, relay.exclude_session)
                for node in nodes:
                    self.publish_or_drop(node, envelope)

    async def _targets_of(self, batch: list[_Relay]) -> list[list[str]]:
        """The nodes each relay goes to; the presence look-ups of a batch travel together."""
        others = self.other_nodes
        found: list[Collection[str] | None] = [r.holding for r in batch]

        async def look_up(index: int) -> None:
            try:
                found[index] = await self._storage.presence.nodes_of(batch[index].user_ids)
            except redis.RedisError as exc:
                self.dropped += 1
                found[index] = ()
                log.warning("dropped a push to other nodes: storage unavailable (%s)", exc)

        async with trio.open_nursery() as nursery:
            for index, relay in enumerate(batch):
                if relay.holding is None and len(relay.user_ids) <= TARGETED_PUSH_MAX_USERS:
                    nursery.start_soon(look_up, index)
        # A node presence names gets the push even when this node has not heard of it
        # yet: it announces itself when it starts, which reaches this node a moment
        # after, and its first sessions may already be there.
        return [
            list(others) if nodes is None else [n for n in nodes if n != self.node_id]
            for nodes in found
        ]

    def close_session(
        self, node_id: str, session_id: str, code: int, reason: str, last_frame: bytes | None
    ) -> None:
        """Close a session wherever it is held."""
        if node_id == self.node_id:
            assert self._sessions is not None
            self._sessions.close_session(session_id, code, reason, last_frame)
            return
        self.publish_or_drop(node_id, CloseSession(session_id, code, reason, last_frame))

    # -- receiving (listener thread, then the loop) -------------------------------

    def _listen(self) -> None:
        """Runs in its own thread until stopped; subscribes again when Redis goes away
        (at once when a channel's slot moved to another master of a cluster).
        Envelopes reach the loop in batches: one callback for all that were waiting."""
        delay, lost = 0.0, False
        token = self._token
        assert token is not None
        channels = [self.inbox(self.node_id), self.broadcast_channel()]
        while not self._stop.is_set():
            subscriptions: Subscriptions | None = None
            try:
                self._resubscribe.clear()
                subscriptions = self._storage.subscribe(channels)
                self._subscribed.set()
                if lost:
                    self._reply_path_lost(token, "subscribed again")
                delay, lost = 0.0, False
                resubscriptions = 0
                while not self._stop.is_set():
                    if self._resubscribe.is_set():
                        raise SubscriptionLost(
                            "this node's inbox probe reached no subscriber"
                            " (subscribed on a replica, or the subscription was lost)"
                        )
                    batch = subscriptions.read(LISTENER_BATCH)
                    if subscriptions.resubscriptions != resubscriptions:
                        resubscriptions = subscriptions.resubscriptions
                        log.warning("pub/sub connection lost and made again")
                        self._reply_path_lost(token, "pub/sub connection lost and made again")
                    if batch:
                        try:
                            token.run_sync_soon(self._on_envelopes, batch)
                        except trio.RunFinishedError:
                            return
            except SubscriptionLost as exc:
                log.warning("%s; subscribing again", exc)
                lost = True
                self._reply_path_lost(token, str(exc))
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                # ResponseError: CLUSTERDOWN while a failed master's slots have none yet.
                log.warning("pub/sub connection lost (%s); reconnecting", exc)
                lost = True
                self._reply_path_lost(token, f"pub/sub connection lost: {exc}")
                self._stop.wait(delay)
                delay = min(max(delay * 2, 0.1), 1.0)
            finally:
                if subscriptions is not None:
                    subscriptions.close()

    def _reply_path_lost(self, token: trio.lowlevel.TrioToken, why: str) -> None:
        """From the listener thread: replies published meanwhile were lost."""
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(self.forwarded.reply_path_lost, why)

    def _on_envelopes(self, batch: list[bytes]) -> None:
        for data in batch:
            try:
                self._on_envelope(data)
            except Exception:
                log.exception("cluster envelope failed")

    def _on_envelope(self, data: bytes) -> None:
        try:
            envelope = decode_envelope(data)
        except msgspec.DecodeError:
            log.error("undecodable cluster envelope dropped")
            return
        if isinstance(envelope, InboxProbe):
            return
        sessions = self._sessions
        assert sessions is not None
        self.received += 1
        if isinstance(envelope, Membership):
            if envelope.node_id != self.node_id:
                others = set(self.other_nodes)
                if envelope.joined:
                    others.add(envelope.node_id)
                    log_event(log, "node-join", node=envelope.node_id, seen_by=self.node_id)
                else:
                    others.discard(envelope.node_id)
                    log_event(
                        log,
                        "node-leave",
                        node=envelope.node_id,
                        seen_by=self.node_id,
                        why="stopped",
                    )
                self.other_nodes = tuple(sorted(others))
        elif isinstance(envelope, Deliver):
            sessions.push(envelope.user_ids, envelope.frame, envelope.exclude_session)
        elif isinstance(envelope, CloseSession):
            sessions.close_session(
                envelope.session_id, envelope.code, envelope.reason, envelope.last_frame
            )
        elif isinstance(envelope, SessionReply):
            self.forwarded.replied(envelope.session_id, envelope.rid)
            sessions.session_reply(
                envelope.session_id, envelope.rid, envelope.frame, envelope.ends_sign_in
            )
        elif isinstance(envelope, SessionPush):
            sessions.session_push(envelope.session_id, envelope.frame)
        elif isinstance(envelope, SessionSignedIn):
            self.forwarded.replied(envelope.session_id, envelope.rid)
            sessions.session_signed_in(
                envelope.session_id,
                envelope.rid,
                envelope.user_id,
                envelope.platform,
                envelope.token_id,
                envelope.frame,
            )
        else:
            self._on_forward(envelope)

    def _on_forward(self, forward: Forward) -> None:
        commands = self._commands
        assert commands is not None
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
            forward.answer_by_ms,
        )
        commands.tell(forward.kind, forward.entity_id, command)

    # -- lifetime -------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, clean up gone nodes, relay pushes and listen, until cancelled."""
        self._token = trio.lowlevel.current_trio_token()
        listener = threading.Thread(
            target=self._listen, name=f"cluster-{self.node_id}", daemon=True
        )
        listener.start()
        try:
            # Subscribed before announcing: a node that joins right after this one
            # announces itself on the broadcast channel, and pushes to it would
            # otherwise not be relayed until this node's next heartbeat.
            await trio.to_thread.run_sync(
                self._subscribed.wait, SUBSCRIBE_WAIT_S, abandon_on_cancel=True
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_relays)
                # A node restarted under the same id must not leave its old sessions online.
                presence = self._storage.presence
                await self._storage.followups.replay_node(self.node_id)
                await presence.forget_node(self.node_id, presence.instance, keep_key=True)
                await self._beat()
                await self._announce(True)
                task_status.started()
                while True:
                    await trio.sleep(max(self.node_timeout_s / 3, 0.2))
                    await self._beat()
        finally:
            with trio.CancelScope(shield=True):
                try:
                    with trio.move_on_after(5):
                        await self._announce(False)
                except redis.RedisError as exc:
                    log.warning("could not announce leaving: %s", exc)
            self._stop.set()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(listener.join, 5.0)

    async def _announce(self, joined: bool) -> None:
        payload = encode_envelope(Membership(self.node_id, joined))
        await self._storage.publish(self.broadcast_channel(), payload)

    async def _beat(self) -> None:
        """Renew this node's heartbeat, close its sessions that were ended elsewhere,
        and clean up after gone nodes."""
        sessions = self._sessions
        assert sessions is not None
        presence = self._storage.presence
        try:
            held = sessions.signed_in_sessions()
            beat = await presence.heartbeat(self.node_timeout_s, now_ms())
            if beat.taken_by is not None:
                raise NodeRefused(
                    f"server.node_id: node id {self.node_id!r} was claimed by another running"
                    f" node ({describe_record(beat.taken_by)}); this one stops"
                )
            if beat.was_known:
                self._close_unlisted(held, beat.listed)
            else:
                # Other nodes may have given this node up and removed its sessions,
                # which were not ended for that: write them back rather than close them.
                await presence.restore(sessions.signed_in_sessions())
                self._unlisted_at_last_beat = frozenset()
            for node in await presence.dead_nodes():
                await self._storage.followups.replay_node(node)
                removed = await presence.forget_node(node)
                if removed >= 0:
                    log_event(
                        log,
                        "node-leave",
                        node=node,
                        seen_by=self.node_id,
                        why="heartbeat expired",
                        sessions_removed=removed,
                    )
            self.other_nodes = tuple(n for n in await presence.live_nodes() if n != self.node_id)
            await self._probe_inbox()
        except redis.RedisError as exc:
            log.warning("node heartbeat failed: %s", exc)

    async def _probe_inbox(self) -> None:
        """Publish to this node's own inbox; no receiver means that the other nodes'
        forwards to it are refused (``OWNER_NOT_LISTENING``), or, if the subscription
        was lost without a word, that their pushes are lost: the listener subscribes
        again. On a Redis Cluster a subscription can sit on a replica of the
        channel's slot (made through a slot map that still named the old master of a
        failover, back as a replica): the replica gets the publications, but an
        ``SPUBLISH`` counts only the subscribers of the server it ran on."""
        probe = encode_envelope(InboxProbe())
        if await self._storage.publish(self.inbox(self.node_id), probe) == 0:
            log.warning("this node's inbox probe reached no subscriber; subscribing again")
            self.resubscribed_by_probe += 1
            self._resubscribe.set()

    def _close_unlisted(
        self, held: Sequence[tuple[str, str, int, str]], listed: Collection[tuple[str, str]]
    ) -> None:
        """Close, with the ``kicked`` push and 4500, the local signed-in sessions
        (``held``) that this node's session set (``listed``) no longer lists.

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
        sessions = self._sessions
        assert sessions is not None
        for session_id in ended:
            sessions.close_session(
                session_id, CloseCode.KICKED, ENDED_ELSEWHERE, _ENDED_ELSEWHERE_FRAME
            )
