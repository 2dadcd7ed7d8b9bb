"""User accounts, tokens and login-failure counters in Redis.

Every method that touches Redis is awaited on the node's trio loop; its commands
travel in the loop tick's pipeline (``storage.pipelined``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.replies import text
from storage.scripts import Scripts

PROFILE_FIELDS = ("nickname", "face_url", "ex")


@dataclass(frozen=True)
class AccountRecord:
    user_id: str
    password_hash: str
    nickname: str
    face_url: str
    ex: str
    created_at: int
    version: int


@dataclass(frozen=True)
class PublicProfile:
    user_id: str
    nickname: str
    face_url: str
    ex: str


class CorruptRecordError(RuntimeError):
    """A stored record cannot be read back; the entity's actor must not use it."""


def _account(user_id: str, raw: dict[bytes, bytes]) -> AccountRecord | None:
    if not raw:
        return None
    try:
        return AccountRecord(
            user_id=user_id,
            password_hash=raw[b"password_hash"].decode(),
            nickname=text(raw.get(b"nickname")),
            face_url=text(raw.get(b"face_url")),
            ex=text(raw.get(b"ex")),
            created_at=int(raw[b"created_at"]),
            version=int(raw[b"version"]),
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"account {user_id!r}: {exc!r}") from exc


class AccountStore:
    def __init__(self, client: PipelinedRedis, keys: Keys, scripts: Scripts) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts

    # -- accounts ---------------------------------------------------------

    async def load(self, user_id: str) -> AccountRecord | None:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.account(user_id)))
        return _account(user_id, raw)

    async def load_for_token(self, user_id: str, token_id: str) -> AccountRecord | None:
        """The account, if the token ``token_id`` is still valid for it (not revoked by
        logout, kick or password change); one round trip for both."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._keys.account(user_id))
        pipe.hexists(self._keys.tokens(user_id), token_id)
        raw, valid = await pipe.execute()
        return _account(user_id, raw) if valid else None

    async def exists(self, user_id: str) -> bool:
        """Whether the user has an account (one ``EXISTS``; accounts are never deleted)."""
        return bool(await self._redis.exists(self._keys.account(user_id)))

    async def create(self, record: AccountRecord) -> bool:
        """Store a new account; False when the user id is taken."""
        fields = [
            "password_hash", record.password_hash,
            "nickname", record.nickname,
            "face_url", record.face_url,
            "ex", record.ex,
            "created_at", record.created_at,
            "version", record.version,
        ]  # fmt: skip
        created = await self._scripts.run(
            "create_account", [self._keys.account(record.user_id)], fields
        )
        return bool(created)

    async def update_profile(self, user_id: str, changes: dict[str, str]) -> int:
        """Apply profile changes; returns the new version (-1: no such account)."""
        args: list[str] = []
        for name, value in changes.items():
            if name not in PROFILE_FIELDS:
                raise ValueError(f"not a profile field: {name}")
            args += [name, value]
        return int(await self._scripts.run("update_profile", [self._keys.account(user_id)], args))

    async def change_password(self, user_id: str, password_hash: str) -> int:
        """Replace the password and revoke all tokens atomically; returns the new version."""
        keys = [self._keys.account(user_id), self._keys.tokens(user_id)]
        return int(await self._scripts.run("change_password", keys, [password_hash]))

    async def public_profiles(self, user_ids: Sequence[str]) -> dict[str, PublicProfile]:
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hmget(self._keys.account(user_id), "created_at", *PROFILE_FIELDS)
        found: dict[str, PublicProfile] = {}
        for user_id, (created, nickname, face_url, ex) in zip(
            user_ids, await pipe.execute(), strict=True
        ):
            if created is not None:
                found[user_id] = PublicProfile(user_id, text(nickname), text(face_url), text(ex))
        return found

    # -- tokens -----------------------------------------------------------

    async def add_token(
        self,
        user_id: str,
        token_id: str,
        platform: int,
        expires_at_ms: int,
        now_ms: int,
        revoke: Iterable[str] = (),
    ) -> None:
        """Record a token (dropping expired ones) and revoke others, in one step."""
        args = [token_id, f"{platform}:{expires_at_ms}", now_ms, *revoke]
        await self._scripts.run("add_token", [self._keys.tokens(user_id)], args)

    async def revoke_tokens(self, user_id: str, token_ids: Iterable[str]) -> None:
        ids = list(token_ids)
        if ids:
            await self._redis.hdel(self._keys.tokens(user_id), *ids)

    async def revoke_all_tokens(self, user_id: str) -> None:
        await self._redis.delete(self._keys.tokens(user_id))

    # -- login failures ---------------------------------------------------

    def _failure_keys(self, user_id: str, address: str, known: bool) -> list[str]:
        """The counters a failed login counts in: the user id's and the address's for
        an existing account; for an unknown user id, that address's unknown-id counter."""
        keys = self._keys
        if known:
            return [keys.login_failures_user(user_id), keys.login_failures_address(address)]
        return [keys.login_failures_unknown(address)]

    async def login_failures(self, user_id: str, address: str, known: bool) -> list[int]:
        """Failed logins in the current windows of ``_failure_keys`` (in that order)."""
        group = self._redis.pipeline(transaction=False)
        for key in self._failure_keys(user_id, address, known):
            group.get(key)  # one command per key: they are in different slots
        return [int(count or 0) for count in await group.execute()]

    async def login_failure_wait_ms(self, user_id: str, address: str, known: bool) -> int:
        """Milliseconds until the longest-lived of those windows ends (0 if none runs)."""
        waits = [await self._redis.pttl(key) for key in self._failure_keys(user_id, address, known)]
        return max(0, *waits)

    async def count_login_failure(
        self, user_id: str, address: str, known: bool, window_s: int
    ) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in self._failure_keys(user_id, address, known):
            self._scripts.add(pipe, "count_failure", [key], [window_s])
        await pipe.execute()

    async def clear_login_failures(self, user_id: str) -> None:
        await self._redis.delete(self._keys.login_failures_user(user_id))
