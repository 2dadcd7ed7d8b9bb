"""The server API's authentication: ``Authorization: Bearer <secret>`` with one of the
secrets of ``http.api_secrets``. Every listed secret is accepted, so a secret is
rotated by listing the new one beside the old one, moving every backend to the new
one, then removing the old one (docs/SERVER_API.md)."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from protocol.errors import ErrorCode, ProtocolError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="parley"'}


def check_bearer(request: Request, secrets: tuple[bytes, ...]) -> None:
    """Raise ``NOT_AUTHENTICATED`` unless the request carries one of ``secrets``.

    Each secret is compared in constant time, and all of them are compared, so the
    answer's timing tells neither how much of a secret matched nor which one did."""
    if not secrets:
        raise ProtocolError(
            ErrorCode.NOT_AUTHENTICATED, "the server API is disabled: no http.api_secrets set"
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ProtocolError(
            ErrorCode.NOT_AUTHENTICATED, "send the API secret as 'Authorization: Bearer <secret>'"
        )
    candidate = given.strip().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(candidate, secret)
    if not matched:
        raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, "wrong API secret")
