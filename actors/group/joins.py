"""Joining and leaving a group: apply, answer applications, invite, kick, quit.
Every method runs in the group actor's task on the node's event loop and awaits
storage; a change is committed through the actor.

Join policies: ``direct`` -- applying or any member's invite joins at once;
``approval`` -- an application waits for the owner or an admin, and so does an
ordinary member's invite (OpenIM's rule: an invite by the owner or an admin joins
at once); ``invite_only`` -- as ``approval``, but applying is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from msgspec.structs import replace

from actors.group.state import (
    ADMIN,
    MEMBER,
    OWNER,
    Change,
    GroupCommands,
    GroupState,
    MemberState,
    application_info,
    group_info,
    member_info,
    request_as,
    require_outranks,
    sender,
)
from actors.runtime.messages import Command
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from protocol.groups import JOINED_BY_APPLICATION, JOINED_BY_INVITATION
from protocol.notifications import NotificationType as N
from protocol.relations import ACCEPTED, PENDING, REFUSED
from storage import GroupApplicationRecord, MemberRecord


class GroupJoinCommands(GroupCommands):
    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.ApplyJoinGroup: self.apply,
            m.RespondGroupApplication: self.respond,
            m.InviteToGroup: self.invite,
            m.KickGroupMembers: self.kick,
            m.QuitGroup: self.quit,
        }

    # -- helpers ----------------------------------------------------------------------

    def _check_room(self, state: GroupState, joining: int) -> None:
        limit = self._services.settings.groups.max_group_size
        if len(state.members) + joining > limit:
            raise ProtocolError(ErrorCode.GROUP_FULL, f"the group is full ({limit} members)")

    async def _join(
        self,
        change: Change,
        state: GroupState,
        user_ids: Sequence[str],
        source: int,
        inviter: str,
        op_user_id: str,
    ) -> list[MemberRecord]:
        """Add ordinary members; their pending applications count as accepted."""
        self._check_room(state, len(user_ids))
        for application in await self._store.pending_applications(self.group_id, user_ids):
            change.step.put_application(
                replace(application, state=ACCEPTED, handler_user_id=op_user_id,
                        handled_at=change.now)
            )  # fmt: skip
        records = [
            MemberRecord(
                u, MEMBER, "", "", "", change.now, source, inviter, 0, change.step.join_seq(n)
            )
            for n, u in enumerate(user_ids)
        ]
        for record in records:
            change.step.put_member(record, insert=True)
            change.step.put_joined(record, insert=True)
        return records

    def _members_detail(
        self, state: GroupState, count: int, op_user_id: str, members: list[MemberState]
    ) -> m.GroupMembersDetail:
        return m.GroupMembersDetail(
            group=group_info(state.info, count),
            op_user_id=op_user_id,
            members=[member_info(self.group_id, r) for r in members],
        )

    def _application_detail(
        self, state: GroupState, record: GroupApplicationRecord, joined: int = 0
    ) -> m.GroupApplicationDetail:
        return m.GroupApplicationDetail(
            group=group_info(state.info, len(state.members) + joined),
            application=application_info(record),
        )

    # -- commands -----------------------------------------------------------------------

    async def apply(self, command: Command) -> m.Reply:
        request = request_as(command, m.ApplyJoinGroup)
        state = self._state()
        applicant = sender(command)
        if applicant in state.members:
            raise ProtocolError(ErrorCode.ALREADY_MEMBER, "you are already a member")
        policy = state.info.join_policy
        if policy == "invite_only":
            raise ProtocolError(ErrorCode.JOIN_BY_INVITE_ONLY, "this group is joined by invitation")
        self._check_room(state, 1)
        change = Change(self.group_id, state)
        if policy == "direct":
            records = await self._join(
                change, state, [applicant], JOINED_BY_APPLICATION, "", applicant
            )
            everyone = [*state.member_ids(), applicant]
            detail = self._members_detail(state, len(everyone), applicant, records)
            change.notify(N.MEMBER_ENTERED, detail, everyone)
            await self._commit(change, command)
            return m.JoinGroupResult(rid=request.rid, joined=True)
        record = GroupApplicationRecord(
            self.group_id, applicant, "", request.message, PENDING, "", "", change.now, 0
        )
        change.step.put_application(record)
        change.notify(
            N.JOIN_GROUP_APPLICATION,
            self._application_detail(state, record),
            [*state.managers(), applicant],
        )
        await self._commit(change, command)
        return m.JoinGroupResult(rid=request.rid, joined=False)

    async def respond(self, command: Command) -> m.Reply:
        request = request_as(command, m.RespondGroupApplication)
        state = self._state()
        actor = sender(command)
        state.require_role(actor, ADMIN)
        application = await self._store.application(self.group_id, request.user_id)
        if application is None:
            raise ProtocolError(
                ErrorCode.GROUP_APPLICATION_NOT_FOUND, f"no application from {request.user_id!r}"
            )
        if application.state != PENDING:
            raise ProtocolError(
                ErrorCode.GROUP_APPLICATION_HANDLED, "this application was already answered"
            )
        if request.accept and request.user_id in state.members:
            raise ProtocolError(ErrorCode.ALREADY_MEMBER, f"{request.user_id!r} is a member")
        change = Change(self.group_id, state)
        handled = replace(
            application,
            state=ACCEPTED if request.accept else REFUSED,
            handler_user_id=actor,
            handle_message=request.message,
            handled_at=change.now,
        )
        concerned = [*state.managers(), handled.user_id]
        if handled.inviter_user_id:
            concerned.append(handled.inviter_user_id)
        if not request.accept:
            change.step.put_application(handled)
            change.notify(
                N.GROUP_APPLICATION_REJECTED, self._application_detail(state, handled), concerned
            )
            await self._commit(change, command)
            return m.Ok(rid=request.rid)
        source = JOINED_BY_INVITATION if handled.inviter_user_id else JOINED_BY_APPLICATION
        records = await self._join(
            change, state, [handled.user_id], source, handled.inviter_user_id, actor
        )
        change.step.put_application(handled)
        change.notify(
            N.GROUP_APPLICATION_ACCEPTED, self._application_detail(state, handled, 1), concerned
        )
        everyone = [*state.member_ids(), handled.user_id]
        detail = self._members_detail(state, len(everyone), actor, records)
        change.notify(N.MEMBER_ENTERED, detail, everyone)
        await self._commit(change, command)
        return m.Ok(rid=request.rid)

    async def invite(self, command: Command) -> m.Reply:
        request = request_as(command, m.InviteToGroup)
        state = self._state()
        actor = sender(command)
        inviter = state.require_member(actor)
        invitees = list(dict.fromkeys(request.user_ids))
        for user_id in invitees:
            if user_id in state.members:
                raise ProtocolError(ErrorCode.ALREADY_MEMBER, f"{user_id!r} is already a member")
        change = Change(self.group_id, state)
        for user_id in invitees:
            change.step.require_account(user_id)
        if state.info.join_policy == "direct" or inviter.role >= ADMIN:
            records = await self._join(change, state, invitees, JOINED_BY_INVITATION, actor, actor)
            everyone = [*state.member_ids(), *invitees]
            detail = self._members_detail(state, len(everyone), actor, records)
            change.notify(N.MEMBER_INVITED, detail, everyone)
            await self._commit(change, command)
            return m.InviteResult(rid=request.rid, joined=invitees, applied=[])
        self._check_room(state, 1)
        managers = state.managers()
        for user_id in invitees:
            record = GroupApplicationRecord(
                self.group_id, user_id, actor, request.message, PENDING, "", "", change.now, 0
            )
            change.step.put_application(record)
            change.notify(
                N.JOIN_GROUP_APPLICATION,
                self._application_detail(state, record),
                [*managers, user_id, actor],
            )
        await self._commit(change, command)
        return m.InviteResult(rid=request.rid, joined=[], applied=invitees)

    async def kick(self, command: Command) -> m.Reply:
        request = request_as(command, m.KickGroupMembers)
        state = self._state()
        actor = sender(command)
        kicker = state.require_role(actor, ADMIN)
        targets = [state.target(u) for u in dict.fromkeys(request.user_ids)]
        for target in targets:
            require_outranks(kicker, target)
        change = Change(self.group_id, state)
        for target in targets:
            change.step.delete_member(target.user_id)
            change.step.delete_joined(target.user_id)
        everyone = state.member_ids()
        detail = self._members_detail(state, len(everyone) - len(targets), actor, targets)
        change.notify(N.MEMBER_KICKED, detail, everyone)
        await self._commit(change, command)
        return m.Ok(rid=request.rid)

    async def quit(self, command: Command) -> m.Reply:
        state = self._state()
        actor = sender(command)
        member = state.require_member(actor)
        if member.role == OWNER:
            raise ProtocolError(
                ErrorCode.OWNER_CANNOT_QUIT, "transfer the group to another member first"
            )
        change = Change(self.group_id, state)
        change.step.delete_member(actor)
        change.step.delete_joined(actor)
        everyone = state.member_ids()
        detail = self._members_detail(state, len(everyone) - 1, actor, [member])
        change.notify(N.MEMBER_QUIT, detail, everyone)
        await self._commit(change, command)
        return m.Ok(rid=command.request.rid)
