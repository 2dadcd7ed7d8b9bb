"""Unmeasured set-up done straight in Redis with the server's own storage layer.

Accounts get a real argon2id hash made once with the server's default
parameters and reused for every account (hashing 5,000 passwords would take
minutes and measure nothing). Tokens are signed with the cluster's signing key
(the one the server keeps in Redis) and recorded exactly as a login records
them. Friendships are made by the same Lua steps an accepted friend application
runs, notifications included. The storage layer is awaitable and auto-pipelined:
the steps for many users run concurrently, so they share Redis round trips.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

from actors.delivery.notify import stored_form
from actors.runtime.credentials import PasswordHasher, TokenSigner
from actors.user.relations import application_info, friend_info
from protocol import messages as m
from protocol.notifications import NotificationType
from protocol.platforms import Platform
from protocol.relations import ACCEPTED, PENDING
from settings import AuthSettings
from storage import AccountRecord, ApplicationRecord, FriendRecord, Storage

SEEDING_NODE = "bench-seeding"
CONCURRENT_STEPS = 256
"""Seeding steps in flight at once (they share pipelines)."""
T = TypeVar("T")


@asynccontextmanager
async def open_storage(redis_url: str, prefix: str) -> AsyncIterator[Storage]:
    storage = Storage(redis_url, prefix, SEEDING_NODE)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(storage.run)
            await storage.ping()
            yield storage
            nursery.cancel_scope.cancel()
    finally:
        storage.close()


def with_storage(redis_url: str, prefix: str, work: Callable[[Storage], Awaitable[T]]) -> T:
    """Run ``work`` on the server's storage layer, from code that is not async."""

    async def main() -> T:
        async with open_storage(redis_url, prefix) as storage:
            return await work(storage)

    return trio.run(main)


async def each(items: Sequence[str], step: Callable[[str], Awaitable[None]]) -> None:
    """``step`` for every item, ``CONCURRENT_STEPS`` at a time."""
    limit = trio.Semaphore(CONCURRENT_STEPS)

    async def one(item: str) -> None:
        async with limit:
            await step(item)

    async with trio.open_nursery() as nursery:
        for item in items:
            await limit.acquire()
            limit.release()
            nursery.start_soon(one, item)


def default_password_hash(password: str) -> str:
    """An argon2id hash of ``password`` with the server's default parameters."""
    auth = AuthSettings()
    hasher = PasswordHasher(auth.argon2_time_cost, auth.argon2_memory_kib, auth.argon2_parallelism)
    return trio.run(hasher.hash, password)


async def create_accounts(storage: Storage, user_ids: Sequence[str], password_hash: str) -> int:
    """Create the accounts that do not exist yet; returns how many were created."""
    now = int(time.time() * 1000)
    created = 0

    async def create(user_id: str) -> None:
        nonlocal created
        record = AccountRecord(user_id, password_hash, user_id, "", "", now, 1)
        created += await storage.accounts.create(record)

    await each(user_ids, create)
    return created


async def mint_tokens(
    storage: Storage, user_ids: Sequence[str], platform: int = Platform.LINUX
) -> list[str]:
    """A valid session token per user, as ``login`` would issue and record it."""
    signer = TokenSigner(await storage.token_secret(), AuthSettings().token_ttl)
    now = int(time.time() * 1000)
    tokens: dict[str, str] = {}

    async def mint(user_id: str) -> None:
        issued = signer.issue(user_id, platform)
        claims = issued.claims
        await storage.accounts.add_token(
            user_id, claims.token_id, claims.platform, claims.expires_at_ms, now
        )
        tokens[user_id] = issued.token

    await each(user_ids, mint)
    return [tokens[user_id] for user_id in user_ids]


async def befriend(storage: Storage, owner: str, applicant: str) -> None:
    """``applicant`` applies to ``owner`` and ``owner`` accepts, as the two Lua steps do."""
    relations = storage.relations
    now = int(time.time() * 1000)
    application = ApplicationRecord(applicant, owner, "", PENDING, "", now, 0)
    applied = m.FriendApplicationDetail(application=application_info(application))
    await relations.apply(
        application, stored_form(NotificationType.FRIEND_APPLICATION, applied, now)
    )
    found = await relations.received_application(owner, applicant)
    if found is None:
        raise RuntimeError(f"the application from {applicant} to {owner} was not stored")
    read, stored = found
    handled = ApplicationRecord(applicant, owner, "", ACCEPTED, "", stored.created_at, now)
    mine = FriendRecord(applicant, "", "", now)
    theirs = FriendRecord(owner, "", "", now)
    result = m.FriendApplicationDetail(application=application_info(handled))
    added_mine = m.FriendDetail(owner_user_id=owner, friend=friend_info(mine))
    added_theirs = m.FriendDetail(owner_user_id=applicant, friend=friend_info(theirs))
    await relations.respond(
        read, handled, now, mine, theirs,
        stored_form(NotificationType.FRIEND_APPLICATION_APPROVED, result, now),
        stored_form(NotificationType.FRIEND_ADDED, added_mine, now),
        stored_form(NotificationType.FRIEND_ADDED, added_theirs, now),
    )  # fmt: skip
