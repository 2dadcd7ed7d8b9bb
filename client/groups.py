"""SDK methods for groups, and local copies kept current with incremental sync."""

from __future__ import annotations

from collections.abc import Sequence

from client.base import RequestSender
from protocol import messages as m
from protocol.groups import JoinPolicy, RoleLevel, SettableRole


class GroupMethods(RequestSender):
    # -- life cycle and info -----------------------------------------------------------

    async def create_group(
        self,
        name: str,
        *,
        group_id: str | None = None,
        face_url: str = "",
        intro: str = "",
        notification: str = "",
        ex: str = "",
        join_policy: JoinPolicy = "approval",
        member_user_ids: Sequence[str] = (),
        admin_user_ids: Sequence[str] = (),
    ) -> m.GroupInfo:
        request = m.CreateGroup(
            rid=self.next_rid(),
            group_id=group_id,
            name=name,
            face_url=face_url,
            intro=intro,
            notification=notification,
            ex=ex,
            join_policy=join_policy,
            member_user_ids=list(member_user_ids),
            admin_user_ids=list(admin_user_ids),
        )
        return (await self.request(request, m.Groups)).items[0]

    async def set_group_info(
        self,
        group_id: str,
        *,
        name: str | None = None,
        face_url: str | None = None,
        intro: str | None = None,
        notification: str | None = None,
        ex: str | None = None,
        join_policy: JoinPolicy | None = None,
    ) -> m.GroupInfo:
        request = m.SetGroupInfo(
            rid=self.next_rid(),
            group_id=group_id,
            name=name,
            face_url=face_url,
            intro=intro,
            notification=notification,
            ex=ex,
            join_policy=join_policy,
        )
        return (await self.request(request, m.Groups)).items[0]

    async def get_groups_info(self, group_ids: Sequence[str]) -> m.Groups:
        request = m.GetGroupsInfo(rid=self.next_rid(), group_ids=list(group_ids))
        return await self.request(request, m.Groups)

    async def dismiss_group(self, group_id: str) -> None:
        await self.request(m.DismissGroup(rid=self.next_rid(), group_id=group_id), m.Ok)

    async def mute_group(self, group_id: str) -> None:
        await self.request(m.MuteGroup(rid=self.next_rid(), group_id=group_id), m.Ok)

    async def unmute_group(self, group_id: str) -> None:
        await self.request(m.UnmuteGroup(rid=self.next_rid(), group_id=group_id), m.Ok)

    # -- joining and leaving -----------------------------------------------------------

    async def apply_join_group(self, group_id: str, message: str = "") -> bool:
        """Returns whether the sender joined at once (else the application is pending)."""
        request = m.ApplyJoinGroup(rid=self.next_rid(), group_id=group_id, message=message)
        return (await self.request(request, m.JoinGroupResult)).joined

    async def respond_group_application(
        self, group_id: str, user_id: str, accept: bool, message: str = ""
    ) -> None:
        request = m.RespondGroupApplication(
            rid=self.next_rid(), group_id=group_id, user_id=user_id, accept=accept, message=message
        )
        await self.request(request, m.Ok)

    async def get_group_applications(self, offset: int = 0, limit: int = 20) -> m.GroupApplications:
        """Applications to the groups I own or administer, newest first."""
        request = m.GetGroupApplications(rid=self.next_rid(), offset=offset, limit=limit)
        return await self.request(request, m.GroupApplications)

    async def get_my_group_applications(
        self, offset: int = 0, limit: int = 20
    ) -> m.GroupApplications:
        request = m.GetMyGroupApplications(rid=self.next_rid(), offset=offset, limit=limit)
        return await self.request(request, m.GroupApplications)

    async def invite_to_group(
        self, group_id: str, user_ids: Sequence[str], message: str = ""
    ) -> m.InviteResult:
        request = m.InviteToGroup(
            rid=self.next_rid(), group_id=group_id, user_ids=list(user_ids), message=message
        )
        return await self.request(request, m.InviteResult)

    async def kick_group_members(
        self, group_id: str, user_ids: Sequence[str], reason: str = ""
    ) -> None:
        request = m.KickGroupMembers(
            rid=self.next_rid(), group_id=group_id, user_ids=list(user_ids), reason=reason
        )
        await self.request(request, m.Ok)

    async def quit_group(self, group_id: str) -> None:
        await self.request(m.QuitGroup(rid=self.next_rid(), group_id=group_id), m.Ok)

    # -- roles, member info, mutes -------------------------------------------------------

    async def transfer_group_owner(self, group_id: str, new_owner_user_id: str) -> None:
        request = m.TransferGroupOwner(
            rid=self.next_rid(), group_id=group_id, new_owner_user_id=new_owner_user_id
        )
        await self.request(request, m.Ok)

    async def set_group_member_role(
        self, group_id: str, user_id: str, role_level: SettableRole
    ) -> None:
        request = m.SetGroupMemberRole(
            rid=self.next_rid(), group_id=group_id, user_id=user_id, role_level=role_level
        )
        await self.request(request, m.Ok)

    async def set_group_member_info(
        self,
        group_id: str,
        user_id: str,
        *,
        nickname: str | None = None,
        face_url: str | None = None,
        ex: str | None = None,
    ) -> m.GroupMember:
        request = m.SetGroupMemberInfo(
            rid=self.next_rid(),
            group_id=group_id,
            user_id=user_id,
            nickname=nickname,
            face_url=face_url,
            ex=ex,
        )
        return (await self.request(request, m.GroupMembers)).items[0]

    async def mute_group_member(self, group_id: str, user_id: str, seconds: int) -> None:
        request = m.MuteGroupMember(
            rid=self.next_rid(), group_id=group_id, user_id=user_id, seconds=seconds
        )
        await self.request(request, m.Ok)

    async def unmute_group_member(self, group_id: str, user_id: str) -> None:
        request = m.UnmuteGroupMember(rid=self.next_rid(), group_id=group_id, user_id=user_id)
        await self.request(request, m.Ok)

    # -- reading members and joined groups ------------------------------------------------

    async def get_group_members(
        self,
        group_id: str,
        offset: int = 0,
        limit: int = 20,
        roles: Sequence[RoleLevel] = (),
    ) -> m.GroupMembers:
        request = m.GetGroupMembers(
            rid=self.next_rid(), group_id=group_id, roles=list(roles), offset=offset, limit=limit
        )
        return await self.request(request, m.GroupMembers)

    async def get_group_members_by_id(
        self, group_id: str, user_ids: Sequence[str]
    ) -> list[m.GroupMember]:
        request = m.GetGroupMembersById(
            rid=self.next_rid(), group_id=group_id, user_ids=list(user_ids)
        )
        return (await self.request(request, m.GroupMembers)).items

    async def get_group_member_ids(self, group_id: str) -> m.GroupMemberIds:
        request = m.GetGroupMemberIds(rid=self.next_rid(), group_id=group_id)
        return await self.request(request, m.GroupMemberIds)

    async def sync_group_members(
        self, group_id: str, version_id: str = "", version: int = 0
    ) -> m.GroupMemberSync:
        request = m.SyncGroupMembers(
            rid=self.next_rid(), group_id=group_id, version_id=version_id, version=version
        )
        return await self.request(request, m.GroupMemberSync)

    async def sync_group_members_batch(
        self, copies: Sequence[tuple[str, str, int]]
    ) -> m.GroupMemberSyncs:
        """``copies``: (group id, version id, version) of each group's member list."""
        groups = [m.GroupVersion(group_id=g, version_id=vid, version=v) for g, vid, v in copies]
        request = m.SyncGroupMembersBatch(rid=self.next_rid(), groups=groups)
        return await self.request(request, m.GroupMemberSyncs)

    async def get_joined_groups(self, offset: int = 0, limit: int = 20) -> m.JoinedGroups:
        request = m.GetJoinedGroups(rid=self.next_rid(), offset=offset, limit=limit)
        return await self.request(request, m.JoinedGroups)

    async def get_joined_group_ids(self) -> m.JoinedGroupIds:
        return await self.request(m.GetJoinedGroupIds(rid=self.next_rid()), m.JoinedGroupIds)

    async def sync_joined_groups(self, version_id: str = "", version: int = 0) -> m.JoinedGroupSync:
        request = m.SyncJoinedGroups(rid=self.next_rid(), version_id=version_id, version=version)
        return await self.request(request, m.JoinedGroupSync)


class JoinedGroupsCopy:
    """Apply ``joined_group_sync`` answers; the copy then equals the server's list."""

    def __init__(self) -> None:
        self.version_id = ""
        self.version = 0
        self.groups: dict[str, m.JoinedGroup] = {}

    def apply(self, answer: m.JoinedGroupSync) -> None:
        if answer.kind == "full":
            self.groups = {g.group.group_id: g for g in answer.inserts}
        elif answer.kind == "incremental":
            for entry in (*answer.inserts, *answer.updates):
                self.groups[entry.group.group_id] = entry
            for group_id in answer.deletes:
                self.groups.pop(group_id, None)
        self.version_id = answer.version_id
        self.version = answer.version


class GroupMembersCopy:
    """Apply ``group_member_sync`` answers (or one group's part of ``group_member_syncs``)."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.version_id = ""
        self.version = 0
        self.members: dict[str, m.GroupMember] = {}

    def apply(self, answer: m.GroupMemberSync | m.GroupMemberChanges) -> None:
        if answer.kind == "full":
            self.members = {r.user_id: r for r in answer.inserts}
        elif answer.kind == "incremental":
            for member in (*answer.inserts, *answer.updates):
                self.members[member.user_id] = member
            for user_id in answer.deletes:
                self.members.pop(user_id, None)
        self.version_id = answer.version_id
        self.version = answer.version
