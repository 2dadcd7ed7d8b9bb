"""The node's table of live sessions by user, for pushing to users' devices.

It lives in the trio thread: connections add and remove themselves there, and
actors reach it only through :meth:`Hub.push_soon` (``run_sync_soon``), so a
push from an actor thread costs one hop into trio and no more. One encoded
frame is queued to every session it goes to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import trio

from actors.bridge import call_in_trio


class PushTarget(Protocol):
    session_id: str

    def deliver_push(self, frame: bytes) -> None: ...


class Hub:
    def __init__(self, trio_token: trio.lowlevel.TrioToken) -> None:
        self._token = trio_token
        self._sessions: dict[str, dict[str, PushTarget]] = {}

    # -- trio thread -----------------------------------------------------------

    def add(self, user_id: str, target: PushTarget) -> None:
        self._sessions.setdefault(user_id, {})[target.session_id] = target

    def remove(self, user_id: str, target: PushTarget) -> None:
        sessions = self._sessions.get(user_id)
        if sessions is not None and sessions.get(target.session_id) is target:
            del sessions[target.session_id]
            if not sessions:
                del self._sessions[user_id]

    def push(self, user_ids: Sequence[str], frame: bytes, exclude_session: str | None) -> None:
        for user_id in user_ids:
            for session_id, target in list(self._sessions.get(user_id, {}).items()):
                if session_id != exclude_session:
                    target.deliver_push(frame)

    def session_count(self, user_id: str) -> int:
        return len(self._sessions.get(user_id, ()))

    # -- any thread ------------------------------------------------------------

    def push_soon(
        self, user_ids: Sequence[str], frame: bytes, exclude_session: str | None = None
    ) -> None:
        """Push ``frame`` to every local session of ``user_ids`` (but ``exclude_session``)."""
        call_in_trio(self._token, self.push, tuple(user_ids), frame, exclude_session)
