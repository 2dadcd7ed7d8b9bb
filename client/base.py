"""What the SDK's method groups need from the client that includes them."""

from __future__ import annotations

from typing import TypeVar

from protocol import messages as m

R = TypeVar("R", bound=m.Reply)


class RequestSender:
    """Base of the method groups (friends, groups, messages, ...) of ``ParleyClient``."""

    def next_rid(self) -> int:
        raise NotImplementedError

    async def request(self, request: m.ClientMessage, expect: type[R]) -> R:
        raise NotImplementedError
