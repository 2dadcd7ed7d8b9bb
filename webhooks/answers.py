"""Reading the app's answer to a before-callback. Pure.

The answer is HTTP 200 with a JSON object::

    {"allow": true}
    {"allow": false, "code": 4711, "message": "links are not allowed here"}
    {"allow": true, "content": {"type": 101, "text": "***"}, "ex": "checked"}

``allow`` is required; ``code`` and ``message`` go to the client with a refusal;
``content`` and ``ex`` (send callbacks only) replace the message's. Anything else (an
other status, a body that is not JSON, or not of this shape) is a failed call, which
``failed_continue`` decides.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

MAX_ANSWER_BYTES = 65536


class BadAnswer(Exception):
    """The app's server answered, but not with a verdict; the message says how."""


class Verdict(msgspec.Struct, frozen=True):
    allow: bool
    code: int = 0
    message: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    content: dict[str, Any] | None = None
    ex: str | None = None


_decoder = msgspec.json.Decoder(Verdict)


def read_verdict(status: int, body: bytes) -> Verdict:
    """The verdict in an answer; ``BadAnswer`` if the answer is not one."""
    if status != 200:
        raise BadAnswer(f"HTTP status {status}")
    if len(body) > MAX_ANSWER_BYTES:
        raise BadAnswer(f"answer of {len(body)} bytes (at most {MAX_ANSWER_BYTES})")
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadAnswer(f"not a verdict: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadAnswer(f"not JSON: {exc}") from None
