"""The node's table of live sessions, by user and by session id, for pushing to
users' devices and closing sessions.

It lives on the node's event loop with the connections and the actors:
connections add and remove themselves, and actors push with
:meth:`Hub.push_soon`, which queues one encoded frame to every local session it
goes to and returns. Sessions held by other nodes are reached through the
:class:`actors.cluster.link.ClusterLink`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from actors.cluster.link import ClusterLink
from actors.runtime.messages import Outbox


class PushTarget(Outbox, Protocol):
    """A local session as the hub sees it (a ``Connection``): its outbox and who it is."""

    user_id: str | None
    platform: int | None
    token_id: str


class Hub:
    def __init__(self, cluster: ClusterLink) -> None:
        self._cluster = cluster
        self._by_user: dict[str, dict[str, PushTarget]] = {}
        self._by_session: dict[str, PushTarget] = {}
        self.pushes_delivered = 0
        """Pushes queued to local sessions (one per session a push reached)."""

    def open_session(self, target: PushTarget) -> None:
        """A session was accepted (replies from other nodes can now reach it)."""
        self._by_session[target.session_id] = target

    def close_session_entry(self, target: PushTarget) -> None:
        """A session ended."""
        if target.user_id is not None:
            self.remove(target.user_id, target)
        if self._by_session.get(target.session_id) is target:
            del self._by_session[target.session_id]

    def add(self, user_id: str, target: PushTarget) -> None:
        """A session signed in as ``user_id`` (pushes to the user now reach it)."""
        self._by_user.setdefault(user_id, {})[target.session_id] = target
        self._by_session[target.session_id] = target

    def remove(self, user_id: str, target: PushTarget) -> None:
        sessions = self._by_user.get(user_id)
        if sessions is not None and sessions.get(target.session_id) is target:
            del sessions[target.session_id]
            if not sessions:
                del self._by_user[user_id]

    def session_reply(self, session_id: str, rid: int, frame: bytes, ends_sign_in: bool) -> None:
        target = self._by_session.get(session_id)
        if target is not None:
            target.reply(rid, frame, ends_sign_in)

    def session_push(self, session_id: str, frame: bytes) -> None:
        target = self._by_session.get(session_id)
        if target is not None:
            self.pushes_delivered += 1
            target.push(frame)

    def session_signed_in(
        self, session_id: str, rid: int, user_id: str, platform: int, token_id: str, frame: bytes
    ) -> None:
        target = self._by_session.get(session_id)
        if target is not None:
            target.signed_in(rid, user_id, platform, token_id, frame)

    def push(self, user_ids: Sequence[str], frame: bytes, exclude_session: str | None) -> None:
        """Queue ``frame`` to every local session of ``user_ids`` but ``exclude_session``."""
        delivered = 0
        for user_id in dict.fromkeys(user_ids):
            for session_id, target in list(self._by_user.get(user_id, {}).items()):
                if session_id != exclude_session:
                    delivered += 1
                    target.push(frame)
        self.pushes_delivered += delivered

    def close_session(
        self, session_id: str, code: int, reason: str, last_frame: bytes | None
    ) -> None:
        """Send ``last_frame`` (if any) and close a local session; no-op if it is gone."""
        target = self._by_session.get(session_id)
        if target is not None:
            target.close(code, reason, last_frame)

    @property
    def signed_in_count(self) -> int:
        """Signed-in local sessions."""
        return sum(len(sessions) for sessions in self._by_user.values())

    def session_count(self, user_id: str) -> int:
        return len(self._by_user.get(user_id, ()))

    def signed_in_sessions(self) -> list[tuple[str, str, int, str]]:
        """(user, session, platform, token id) of every signed-in local session."""
        return [
            (user_id, t.session_id, t.platform, t.token_id)
            for user_id, sessions in self._by_user.items()
            for t in sessions.values()
            if t.platform is not None
        ]

    def push_soon(
        self,
        user_ids: Sequence[str],
        frame: bytes,
        exclude_session: str | None = None,
        holding: Collection[str] | None = None,
    ) -> None:
        """Push ``frame`` to every session of ``user_ids`` but ``exclude_session``, on
        this node and the others, without waiting. ``holding``: the nodes holding
        sessions of these users, if the caller knows."""
        users = tuple(dict.fromkeys(user_ids))
        self.push(users, frame, exclude_session)
        self._cluster.relay(users, frame, exclude_session, holding)
