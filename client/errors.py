"""Exceptions raised by the Parley client SDK."""

from __future__ import annotations

from protocol.errors import ErrorCode


class ParleyError(Exception):
    """The server answered a request with a typed error; nothing was changed."""

    def __init__(
        self,
        code: int,
        name: str,
        message: str,
        app_code: int = 0,
        app_message: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message
        self.app_code = app_code
        """``REFUSED_BY_APP``: the app server's own code for its refusal (0 otherwise)."""
        self.app_message = app_message
        """``REFUSED_BY_APP``: the app server's message, meant for the user."""
        self.retry_after = retry_after
        """Seconds to wait before sending the request again, when the server said
        (``RATE_LIMITED``); ``None`` otherwise."""

    @property
    def error(self) -> ErrorCode | None:
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None


class ConnectionLost(Exception):
    """The connection ended before the reply arrived; the request may or may not have run."""

    def __init__(self, close_code: int | None, reason: str | None = None) -> None:
        super().__init__(f"connection closed (code {close_code}): {reason or ''}".rstrip(": "))
        self.close_code = close_code
        self.reason = reason


class ClientClosed(Exception):
    """The client is closed: it was closed by its owner, or the server ended it for good."""
