"""Group life cycle and settings: create, set info, dismiss, mute-all, transfer
ownership, set roles. Every method runs in the group actor's task on the node's
event loop; a change is committed through the actor (awaited)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from msgspec.structs import replace

from actors.group.state import (
    ACTIVE,
    ADMIN,
    DISMISSED,
    MEMBER,
    OWNER,
    Change,
    GroupCommands,
    group_info,
    member_info,
    request_as,
    sender,
)
from actors.runtime.messages import Command
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from protocol.groups import JOINED_BY_CREATION
from protocol.notifications import NotificationType as N
from storage import GroupRecord, MemberRecord

_INFO_FIELDS = ("name", "face_url", "intro", "notification", "ex", "join_policy")


class GroupAdminCommands(GroupCommands):
    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.CreateGroup: self.create,
            m.SetGroupInfo: self.set_info,
            m.DismissGroup: self.dismiss,
            m.MuteGroup: self.mute_all,
            m.UnmuteGroup: self.mute_all,
            m.TransferGroupOwner: self.transfer,
            m.SetGroupMemberRole: self.set_role,
        }

    async def create(self, command: Command) -> m.Reply:
        request = request_as(command, m.CreateGroup)
        if self._actor.state is not None:
            raise ProtocolError(ErrorCode.GROUP_EXISTS, f"group {self.group_id!r} exists")
        creator = sender(command)
        everyone = [creator, *request.admin_user_ids, *request.member_user_ids]
        if len(set(everyone)) != len(everyone):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                "a user is listed twice (the creator joins as owner and must not be listed)",
            )
        limit = self._services.settings.groups.max_group_size
        if len(everyone) > limit:
            raise ProtocolError(ErrorCode.GROUP_FULL, f"a group has at most {limit} members")
        change = Change(self.group_id, None)
        now = change.now
        info = GroupRecord(
            self.group_id, request.name, request.face_url, request.intro, request.notification,
            request.ex, creator, creator, request.join_policy, ACTIVE, False, now,
            now if request.notification else 0, creator if request.notification else "",
        )  # fmt: skip
        change.step.put_info(info)
        roles = {creator: OWNER, **dict.fromkeys(request.admin_user_ids, ADMIN)}
        for index, user_id in enumerate(everyone):
            if user_id != creator:
                change.step.require_account(user_id)
            inviter = "" if user_id == creator else creator
            role = roles.get(user_id, MEMBER)
            record = MemberRecord(
                user_id, role, "", "", "", now, JOINED_BY_CREATION, inviter, 0,
                change.step.join_seq(index),
            )  # fmt: skip
            change.step.put_member(record, insert=True)
            change.step.put_joined(record, insert=True)
        group = group_info(info, len(everyone))
        change.notify(N.GROUP_CREATED, m.GroupDetail(group=group, op_user_id=creator), everyone)
        await self._commit(change, command)
        return m.Groups(rid=request.rid, items=[group])

    async def set_info(self, command: Command) -> m.Reply:
        request = request_as(command, m.SetGroupInfo)
        state = self._state()
        actor = sender(command)
        state.require_role(actor, ADMIN)
        given = {f: v for f in _INFO_FIELDS if (v := getattr(request, f)) is not None}
        if not given:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "nothing to change")
        changed = {f: v for f, v in given.items() if getattr(state.info, f) != v}
        if not changed:
            return m.Groups(rid=request.rid, items=[state.info_record()])
        change = Change(self.group_id, state)
        info = replace(state.info, **changed)
        if "notification" in changed:
            info = replace(info, notification_updated_at=change.now, notification_user_id=actor)
        change.step.put_info(info)
        members = state.member_ids()
        change.step.touch_joined(state.members.values())
        group = group_info(info, len(members))
        detail = m.GroupDetail(group=group, op_user_id=actor)
        if "notification" in changed:
            change.notify(N.GROUP_ANNOUNCEMENT_SET, detail, members)
        others = set(changed) - {"notification"}
        if others == {"name"}:
            change.notify(N.GROUP_NAME_SET, detail, members)
        elif others:
            change.notify(N.GROUP_INFO_SET, detail, members)
        await self._commit(change, command)
        return m.Groups(rid=request.rid, items=[group])

    async def dismiss(self, command: Command) -> m.Reply:
        state = self._state()
        actor = sender(command)
        state.require_role(actor, OWNER)
        change = Change(self.group_id, state)
        info = replace(state.info, status=DISMISSED)
        change.step.put_info(info)
        members = state.member_ids()
        for user_id in members:
            change.step.delete_member(user_id)
            change.step.delete_joined(user_id)
        detail = m.GroupDetail(group=group_info(info, 0), op_user_id=actor)
        change.notify(N.GROUP_DISMISSED, detail, members)
        await self._commit(change, command)
        return m.Ok(rid=command.request.rid)

    async def mute_all(self, command: Command) -> m.Reply:
        """``mute_group`` and ``unmute_group``."""
        state = self._state()
        actor = sender(command)
        state.require_role(actor, ADMIN)
        mute = isinstance(command.request, m.MuteGroup)
        if state.mute_all == mute:
            return m.Ok(rid=command.request.rid)
        change = Change(self.group_id, state)
        info = replace(state.info, mute_all=mute)
        change.step.put_info(info)
        members = state.member_ids()
        change.step.touch_joined(state.members.values())
        detail = m.GroupDetail(group=group_info(info, len(members)), op_user_id=actor)
        change.notify(N.GROUP_MUTED if mute else N.GROUP_UNMUTED, detail, members)
        await self._commit(change, command)
        return m.Ok(rid=command.request.rid)

    async def transfer(self, command: Command) -> m.Reply:
        request = request_as(command, m.TransferGroupOwner)
        state = self._state()
        actor = sender(command)
        owner = state.require_role(actor, OWNER)
        target = state.target(request.new_owner_user_id)
        if target.user_id == actor:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "you already own this group")
        change = Change(self.group_id, state)
        new_owner = replace(target, role=OWNER)
        old_owner = replace(owner, role=MEMBER)
        info = replace(state.info, owner_user_id=new_owner.user_id)
        change.step.put_info(info)
        for record in (new_owner, old_owner):
            change.step.put_member(record, insert=False)
            change.step.put_joined(record, insert=False)
        members = state.member_ids()
        change.step.touch_joined(
            r for u, r in state.members.items() if u not in (actor, target.user_id)
        )
        detail = m.GroupOwnerDetail(
            group=group_info(info, len(members)),
            op_user_id=actor,
            old_owner=member_info(self.group_id, old_owner),
            new_owner=member_info(self.group_id, new_owner),
        )
        change.notify(N.GROUP_OWNER_TRANSFERRED, detail, members)
        await self._commit(change, command)
        return m.Ok(rid=request.rid)

    async def set_role(self, command: Command) -> m.Reply:
        request = request_as(command, m.SetGroupMemberRole)
        state = self._state()
        actor = sender(command)
        state.require_role(actor, OWNER)
        target = state.target(request.user_id)
        if target.user_id == actor:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, "the owner's role changes only by transfer_group_owner"
            )
        if target.role == request.role_level:
            return m.Ok(rid=request.rid)
        change = Change(self.group_id, state)
        updated = replace(target, role=request.role_level)
        change.step.put_member(updated, insert=False)
        change.step.put_joined(updated, insert=False)
        members = state.member_ids()
        detail = m.GroupMembersDetail(
            group=state.info_record(),
            op_user_id=actor,
            members=[member_info(self.group_id, updated)],
        )
        kind = N.GROUP_MEMBER_SET_ADMIN if updated.role == ADMIN else N.GROUP_MEMBER_SET_ORDINARY
        change.notify(kind, detail, members)
        await self._commit(change, command)
        return m.Ok(rid=request.rid)
