"""``/groups``: create a group with its members, add and remove members, dismiss it.
Each runs in the group's actor as the command of its owner would: the API acts as
the group's owner, read from the stored group (a command that finds the ownership
changed since is refused ``PERMISSION_DENIED`` and changes nothing)."""

from __future__ import annotations

from actors.group import actor as group
from actors.node import routing
from api.context import ApiContext
from api.routing import ApiRoute
from api.schemas import Done, MembersAdded, MembersToAdd, MembersToRemove, NewGroup
from protocol import messages as m
from protocol.base import GroupId
from protocol.errors import ErrorCode, ProtocolError

E = ErrorCode
GROUP = (("group_id", GroupId),)


async def _owner(context: ApiContext, group_id: str) -> str:
    found = await context.services.storage.groups.infos([group_id])
    if group_id not in found:
        raise ProtocolError(E.GROUP_NOT_FOUND, f"no group {group_id!r}")
    record, _ = found[group_id]
    if record.status == "dismissed":
        raise ProtocolError(E.GROUP_DISMISSED, f"group {group_id!r} is dismissed")
    return record.owner_user_id


async def create_group(context: ApiContext, body: NewGroup, path: dict[str, str]) -> m.GroupInfo:
    """Create a group owned by ``owner_user_id`` with its first members and admins,
    as that user's ``create_group`` does (members get the same notifications)."""
    owner = body.owner_user_id
    if not await context.services.storage.accounts.exists(owner):
        raise ProtocolError(E.USER_NOT_FOUND, f"no user {owner!r}")
    request = m.CreateGroup(
        rid=1,
        name=body.name,
        group_id=body.group_id,
        face_url=body.face_url,
        intro=body.intro,
        notification=body.notification,
        ex=body.ex,
        join_policy=body.join_policy,
        member_user_ids=body.member_user_ids,
        admin_user_ids=body.admin_user_ids,
    )
    kind, group_id = routing.route(request, owner)  # makes an id when none is given
    reply = await context.calls.call(kind, group_id, request, owner)
    assert isinstance(reply, m.Groups)
    return reply.items[0]


async def add_members(
    context: ApiContext, body: MembersToAdd, path: dict[str, str]
) -> MembersAdded:
    """Add up to 100 users as ordinary members (the owner's invitation: they join at
    once, whatever the join policy)."""
    group_id = path["group_id"]
    owner = await _owner(context, group_id)
    request = m.InviteToGroup(rid=1, group_id=group_id, user_ids=body.user_ids)
    reply = await context.calls.call(group.KIND, group_id, request, owner)
    assert isinstance(reply, m.InviteResult)
    return MembersAdded(group_id=group_id, joined=reply.joined)


async def remove_members(context: ApiContext, body: MembersToRemove, path: dict[str, str]) -> Done:
    """Remove up to 100 members (not the owner), as the owner's kick."""
    group_id = path["group_id"]
    owner = await _owner(context, group_id)
    request = m.KickGroupMembers(
        rid=1, group_id=group_id, user_ids=body.user_ids, reason=body.reason
    )
    await context.calls.call(group.KIND, group_id, request, owner)
    return Done()


async def dismiss_group(context: ApiContext, body: None, path: dict[str, str]) -> Done:
    """End the group for good, as the owner's ``dismiss_group``."""
    group_id = path["group_id"]
    owner = await _owner(context, group_id)
    await context.calls.call(group.KIND, group_id, m.DismissGroup(rid=1, group_id=group_id), owner)
    return Done()


ROUTES = (
    ApiRoute(
        "POST", "/groups", create_group, "Create a group", m.GroupInfo, NewGroup,
        status=201, errors=(E.USER_NOT_FOUND, E.GROUP_EXISTS, E.GROUP_FULL), tag="groups",
    ),
    ApiRoute(
        "POST", "/groups/{group_id}/members", add_members, "Add members", MembersAdded,
        MembersToAdd, params=GROUP,
        errors=(E.GROUP_NOT_FOUND, E.GROUP_DISMISSED, E.ALREADY_MEMBER, E.GROUP_FULL,
                E.USER_NOT_FOUND),
        tag="groups",
    ),
    ApiRoute(
        "POST", "/groups/{group_id}/members/remove", remove_members, "Remove members", Done,
        MembersToRemove, params=GROUP,
        errors=(E.GROUP_NOT_FOUND, E.GROUP_DISMISSED, E.NOT_GROUP_MEMBER, E.PERMISSION_DENIED),
        tag="groups",
    ),
    ApiRoute(
        "DELETE", "/groups/{group_id}", dismiss_group, "Dismiss a group", Done, params=GROUP,
        errors=(E.GROUP_NOT_FOUND, E.GROUP_DISMISSED), tag="groups",
    ),
)  # fmt: skip
