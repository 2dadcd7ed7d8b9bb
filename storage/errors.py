"""What a storing step answers instead of storing: the two refusals every store shares."""

from __future__ import annotations


class StepRefused(Exception):
    """A check of a storing step failed and nothing was written. ``reason`` names the
    check (``ALREADY_FRIENDS``, ``BLOCKED_BY_PEER``, ``GROUP_EXISTS``,
    ``USER_NOT_FOUND``, ...); ``user_id`` names the user it was about, where a step
    checks several."""

    def __init__(self, reason: str, user_id: str = "") -> None:
        super().__init__(reason, user_id)
        self.reason = reason
        self.user_id = user_id


class StaleRead(Exception):
    """What the step was given as read (a record, a group's revision) changed before it
    wrote, and nothing was written: read again and retry."""
