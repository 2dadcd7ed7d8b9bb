"""``/users``: create one or many (an import), read and change a profile, online status."""

from __future__ import annotations

import trio

from actors.user import actor as user
from api.context import ApiContext
from api.routing import ApiRoute
from api.schemas import (
    ImportResult,
    ItemFailure,
    NewUser,
    OnlineStatuses,
    ProfileChange,
    UserIds,
    UserImport,
)
from protocol import admin
from protocol import messages as m
from protocol.base import UserId
from protocol.errors import ErrorCode, ProtocolError

IMPORTS_AT_ONCE = 8
"""Accounts an import creates at a time: a password hash takes ~29 ms of CPU, and each
creation must be answered within ``session.request_deadline``."""
E = ErrorCode
USER = (("user_id", UserId),)


async def _create(context: ApiContext, new: NewUser) -> None:
    request = admin.CreateUser(
        rid=1,
        password=new.password,
        nickname=new.nickname,
        face_url=new.face_url,
        ex=new.ex,
    )
    await context.calls.call(user.KIND, new.user_id, request, new.user_id)


async def profile(context: ApiContext, user_id: str) -> m.UserProfile:
    reply = await context.calls.call(user.KIND, user_id, m.GetSelf(rid=1), user_id)
    assert isinstance(reply, m.Profile)
    return reply.profile


async def create_user(context: ApiContext, body: NewUser, path: dict[str, str]) -> m.UserProfile:
    """Create a user (no password: the user signs in only with tokens from the API)."""
    await _create(context, body)
    return await profile(context, body.user_id)


async def import_users(context: ApiContext, body: UserImport, path: dict[str, str]) -> ImportResult:
    """Create up to 1,000 users; each one that cannot be made (its id is taken) is
    listed in ``failed`` and the others are created. A body with a user id twice is
    refused whole."""
    ids = [u.user_id for u in body.users]
    if len(set(ids)) != len(ids):
        raise ProtocolError(E.INVALID_FIELD, "users: a user id is listed twice")
    failures: dict[str, ItemFailure] = {}
    limiter = trio.CapacityLimiter(IMPORTS_AT_ONCE)

    async def one(new: NewUser) -> None:
        async with limiter:
            try:
                await _create(context, new)
            except ProtocolError as exc:
                failures[new.user_id] = ItemFailure(
                    id=new.user_id, code=int(exc.code), name=exc.code.name, message=exc.message
                )

    async with trio.open_nursery() as nursery:
        for new in body.users:
            nursery.start_soon(one, new)
    return ImportResult(
        created=[i for i in ids if i not in failures],
        failed=[failures[i] for i in ids if i in failures],
    )


async def get_user(context: ApiContext, body: None, path: dict[str, str]) -> m.UserProfile:
    """A user's profile."""
    return await profile(context, path["user_id"])


async def update_user(
    context: ApiContext, body: ProfileChange, path: dict[str, str]
) -> m.UserProfile:
    """Change profile fields, as the user's own ``set_profile`` does (the user's
    devices and friends get the same pushes and notifications)."""
    user_id = path["user_id"]
    request = m.SetProfile(rid=1, nickname=body.nickname, face_url=body.face_url, ex=body.ex)
    reply = await context.calls.call(user.KIND, user_id, request, user_id)
    assert isinstance(reply, m.Profile)
    return reply.profile


async def online_status(context: ApiContext, body: UserIds, path: dict[str, str]) -> OnlineStatuses:
    """The platforms each of up to 100 users is online on (sessions on live nodes)."""
    wanted = list(dict.fromkeys(body.user_ids))
    online = await context.services.storage.presence.online_platforms(wanted)
    return OnlineStatuses(statuses=[m.UserOnline(user_id=u, platforms=online[u]) for u in wanted])


ROUTES = (
    ApiRoute(
        "POST", "/users", create_user, "Create a user", m.UserProfile, NewUser,
        status=201, errors=(E.USER_EXISTS,), tag="users",
    ),
    ApiRoute(
        "POST", "/users/import", import_users, "Create many users", ImportResult, UserImport,
        tag="users",
    ),
    ApiRoute(
        "POST", "/users/online_status", online_status, "Online status of users",
        OnlineStatuses, UserIds, tag="users",
    ),
    ApiRoute(
        "GET", "/users/{user_id}", get_user, "Get a user's profile", m.UserProfile,
        params=USER, errors=(E.USER_NOT_FOUND,), tag="users",
    ),
    ApiRoute(
        "PATCH", "/users/{user_id}", update_user, "Change a user's profile", m.UserProfile,
        ProfileChange, params=USER, errors=(E.USER_NOT_FOUND,), tag="users",
    ),
)  # fmt: skip
