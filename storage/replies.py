"""Reading Redis replies: redis-py hands back bytes (the clients do not decode), Lua
steps may return numbers, and a missing field or key is None."""

from __future__ import annotations


def text(value: bytes | str | int | None) -> str:
    """A reply as text: bytes decoded as UTF-8, a number as its digits, None as ""."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
