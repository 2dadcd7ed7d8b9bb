"""Password hashing (argon2id) and signed session tokens (JWT, HS256).

Hashing is slow by design (~29 ms of CPU at the default cost): it runs in worker
threads, at most ``HASHING_THREADS`` at a time, so the event loop never waits on
it. Token signing is cheap and runs on the loop.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import argon2
import jwt
import trio

from protocol.errors import ErrorCode, ProtocolError

HASHING_THREADS = 2
"""Password hashes computed at once: one per core of the machine the node was sized
for; more would only queue in the kernel instead of here."""


class PasswordHasher:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the user does not exist, so a wrong user id
        # costs as much time as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        self._limiter = trio.CapacityLimiter(HASHING_THREADS)

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password``, computed in a worker thread."""
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches (False when there is no hash), in a worker thread."""
        return await trio.to_thread.run_sync(
            self._verify, password_hash, password, limiter=self._limiter
        )

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and bool(
                password_hash
            )
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    platform: int
    token_id: str
    expires_at_ms: int


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenSigner:
    """Issues and checks tokens; revocation is checked separately against Redis."""

    algorithm = "HS256"

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def issue(self, user_id: str, platform: int) -> IssuedToken:
        now = int(time.time())
        expires = now + self._ttl_s
        token_id = secrets.token_urlsafe(12)
        payload = {"sub": user_id, "pid": platform, "jti": token_id, "iat": now, "exp": expires}
        token = jwt.encode(payload, self._secret, algorithm=self.algorithm)
        return IssuedToken(token, TokenClaims(user_id, platform, token_id, expires * 1000))

    def verify(self, token: str, rid: int = 0) -> TokenClaims:
        """Claims of a well-signed, unexpired token; ``ProtocolError`` otherwise."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                options={"require": ["sub", "pid", "jti", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise ProtocolError(ErrorCode.TOKEN_EXPIRED, "token has expired", rid) from None
        except jwt.InvalidTokenError as exc:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, f"token rejected: {exc}", rid) from None
        user_id, platform, token_id = payload["sub"], payload["pid"], payload["jti"]
        if not (
            isinstance(user_id, str) and isinstance(platform, int) and isinstance(token_id, str)
        ):
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "token claims have wrong types", rid)
        return TokenClaims(user_id, platform, token_id, int(payload["exp"]) * 1000)
