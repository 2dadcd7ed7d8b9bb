"""Groups: life cycle, info, join policy, applications, members, roles, mutes, and
incremental sync of joined groups and of member lists.

Roles are OpenIM's numbers: owner 100, admin 60, ordinary member 20. A group's
join policy is one of ``"direct"`` (applying joins at once; any member's invite
joins at once), ``"approval"`` (an application waits for an owner or admin; an
invite by an owner or admin joins at once, an ordinary member's invite becomes
an application) and ``"invite_only"`` (applying is refused; invites work as
under ``"approval"``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.base import (
    MAX_BATCH,
    Ex,
    GroupId,
    Limit,
    Nickname,
    Offset,
    Reply,
    Request,
    Url,
    UserId,
    UserIdBatch,
)
from protocol.relations import RequestMessage, Version, VersionId

GroupIdBatch = Annotated[list[GroupId], Meta(min_length=1, max_length=MAX_BATCH)]
GroupName = Annotated[str, Meta(min_length=1, max_length=128)]
GroupText = Annotated[str, Meta(max_length=4096)]
"""Intro and notification (announcement)."""
UserIdList = Annotated[list[UserId], Meta(max_length=MAX_BATCH)]
JoinPolicy = Literal["direct", "approval", "invite_only"]
GroupStatus = Literal["active", "dismissed"]
SettableRole = Literal[60, 20]
RoleLevel = Literal[100, 60, 20]
MuteSeconds = Annotated[int, Meta(ge=1, le=10 * 365 * 24 * 3600)]

OWNER = 100
ADMIN = 60
MEMBER = 20

# How a member joined (OpenIM's numbers where it has them).
JOINED_BY_CREATION = 1
JOINED_BY_INVITATION = 2
JOINED_BY_APPLICATION = 3


# Records


class GroupInfo(msgspec.Struct, frozen=True, kw_only=True):
    group_id: str
    name: str
    face_url: str
    intro: str
    notification: str
    """The announcement."""
    ex: str
    owner_user_id: str
    creator_user_id: str
    join_policy: str
    """``direct``, ``approval`` or ``invite_only``."""
    status: str
    """``active`` or ``dismissed``."""
    mute_all: bool
    """Only the owner and admins may send while set."""
    member_count: int
    created_at: int
    notification_updated_at: int
    notification_user_id: str


class GroupMember(msgspec.Struct, frozen=True, kw_only=True):
    group_id: str
    user_id: str
    role_level: int
    """100 owner, 60 admin, 20 ordinary member."""
    nickname: str
    """The member's nickname in this group ("" for none)."""
    face_url: str
    ex: str
    joined_at: int
    join_source: int
    """1 created the group (or was in its initial list), 2 invited, 3 applied."""
    inviter_user_id: str
    muted_until: int
    """Ms since the epoch; 0 (or a past time) when not muted."""


class GroupApplication(msgspec.Struct, frozen=True, kw_only=True):
    group_id: str
    user_id: str
    """Who would join."""
    inviter_user_id: str
    """The ordinary member who invited ``user_id``; "" when the user applied."""
    message: str
    state: int
    """0 pending, 1 accepted, -1 refused."""
    handler_user_id: str
    handle_message: str
    created_at: int
    handled_at: int


class JoinedGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a user's joined-group list: the group and the user's place in it."""

    group: GroupInfo
    role_level: int
    joined_at: int


class GroupVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A client's copy of one group's member list, for ``sync_group_members_batch``."""

    group_id: GroupId
    version_id: VersionId = ""
    version: Version = 0


class GroupMemberChanges(msgspec.Struct, frozen=True, kw_only=True):
    """One group's part of a ``group_member_syncs`` answer; read like ``group_member_sync``."""

    group_id: str
    kind: Literal["equal", "incremental", "full"]
    version_id: str
    version: int
    inserts: list[GroupMember] = []
    updates: list[GroupMember] = []
    deletes: list[str] = []


# Requests handled by the group's actor


class CreateGroup(Request, frozen=True, tag="create_group"):
    """Create a group owned by the sender; answered with ``groups`` (the new group).

    ``group_id`` may be chosen (user-id rules) or left out for a server-made one.
    ``member_user_ids`` join as ordinary members, ``admin_user_ids`` as admins; no
    user may be listed twice or be the sender."""

    name: GroupName
    group_id: GroupId | None = None
    face_url: Url = ""
    intro: GroupText = ""
    notification: GroupText = ""
    ex: Ex = ""
    join_policy: JoinPolicy = "approval"
    member_user_ids: UserIdList = []
    admin_user_ids: UserIdList = []


class SetGroupInfo(Request, frozen=True, tag="set_group_info"):
    """Owner or admin: change some fields (omitted ones keep their value); answered
    with ``groups``."""

    group_id: GroupId
    name: GroupName | None = None
    face_url: Url | None = None
    intro: GroupText | None = None
    notification: GroupText | None = None
    ex: Ex | None = None
    join_policy: JoinPolicy | None = None


class DismissGroup(Request, frozen=True, tag="dismiss_group"):
    """Owner: end the group for good."""

    group_id: GroupId


class ApplyJoinGroup(Request, frozen=True, tag="apply_join_group"):
    """Ask to join; answered with ``join_group_result`` (joined at once, or pending)."""

    group_id: GroupId
    message: RequestMessage = ""


class RespondGroupApplication(Request, frozen=True, tag="respond_group_application"):
    """Owner or admin: accept or refuse the pending application of ``user_id``."""

    group_id: GroupId
    user_id: UserId
    accept: bool
    message: RequestMessage = ""


class InviteToGroup(Request, frozen=True, tag="invite_to_group"):
    """Member: bring users in; answered with ``invite_result`` (joined, or applied for
    under the join policy)."""

    group_id: GroupId
    user_ids: UserIdBatch
    message: RequestMessage = ""


class KickGroupMembers(Request, frozen=True, tag="kick_group_members"):
    """Owner (anyone but themselves) or admin (ordinary members only)."""

    group_id: GroupId
    user_ids: UserIdBatch
    reason: RequestMessage = ""


class QuitGroup(Request, frozen=True, tag="quit_group"):
    """Leave the group; the owner must transfer ownership first."""

    group_id: GroupId


class TransferGroupOwner(Request, frozen=True, tag="transfer_group_owner"):
    """Owner: make ``new_owner_user_id`` (a member) the owner; the old owner becomes
    an ordinary member."""

    group_id: GroupId
    new_owner_user_id: UserId


class SetGroupMemberRole(Request, frozen=True, tag="set_group_member_role"):
    """Owner: make a member an admin (60) or an ordinary member (20)."""

    group_id: GroupId
    user_id: UserId
    role_level: SettableRole


class SetGroupMemberInfo(Request, frozen=True, tag="set_group_member_info"):
    """Change a member's group nickname, face and ex (omitted fields keep their value).
    Anyone may change their own; owner and admins those of members they outrank.
    Answered with ``group_members`` (the member)."""

    group_id: GroupId
    user_id: UserId
    nickname: Nickname | None = None
    face_url: Url | None = None
    ex: Ex | None = None


class MuteGroupMember(Request, frozen=True, tag="mute_group_member"):
    """Owner or admin: mute a member they outrank for ``seconds``."""

    group_id: GroupId
    user_id: UserId
    seconds: MuteSeconds


class UnmuteGroupMember(Request, frozen=True, tag="unmute_group_member"):
    group_id: GroupId
    user_id: UserId


class MuteGroup(Request, frozen=True, tag="mute_group"):
    """Owner or admin: only the owner and admins may send until ``unmute_group``."""

    group_id: GroupId


class UnmuteGroup(Request, frozen=True, tag="unmute_group"):
    group_id: GroupId


class GetGroupMembers(Request, frozen=True, tag="get_group_members"):
    """Member: the members in the order they joined, optionally only the given roles;
    answered with ``group_members``."""

    group_id: GroupId
    roles: Annotated[list[RoleLevel], Meta(max_length=3)] = []
    offset: Offset = 0
    limit: Limit = 20


class GetGroupMembersById(Request, frozen=True, tag="get_group_members_by_id"):
    """Member: these members (ids not in the group are left out)."""

    group_id: GroupId
    user_ids: UserIdBatch


class SyncGroupMembers(Request, frozen=True, tag="sync_group_members"):
    """Member: changes to the member list since (version_id, version); answered with
    ``group_member_sync``."""

    group_id: GroupId
    version_id: VersionId = ""
    version: Version = 0


class GetGroupMemberIds(Request, frozen=True, tag="get_group_member_ids"):
    """Member: every member id with the list's version; answered with ``group_member_ids``."""

    group_id: GroupId


# Requests handled by the sender's user actor


class GetGroupsInfo(Request, frozen=True, tag="get_groups_info"):
    """Info of up to 100 groups (dismissed ones too); answered with ``groups``."""

    group_ids: GroupIdBatch


class GetJoinedGroups(Request, frozen=True, tag="get_joined_groups"):
    """My groups in the order I joined them; answered with ``joined_groups``."""

    offset: Offset = 0
    limit: Limit = 20


class SyncJoinedGroups(Request, frozen=True, tag="sync_joined_groups"):
    """Changes to my joined-group list since (version_id, version); answered with
    ``joined_group_sync``."""

    version_id: VersionId = ""
    version: Version = 0


class GetJoinedGroupIds(Request, frozen=True, tag="get_joined_group_ids"):
    """All my group ids with the list's version; answered with ``joined_group_ids``."""


class SyncGroupMembersBatch(Request, frozen=True, tag="sync_group_members_batch"):
    """``sync_group_members`` for up to 100 groups at once; answered with
    ``group_member_syncs``."""

    groups: Annotated[list[GroupVersion], Meta(min_length=1, max_length=MAX_BATCH)]


class GetMyGroupApplications(Request, frozen=True, tag="get_my_group_applications"):
    """Applications to join that are about me (sent by me, or invitations awaiting
    approval), newest first; answered with ``group_applications``."""

    offset: Offset = 0
    limit: Limit = 20


class GetGroupApplications(Request, frozen=True, tag="get_group_applications"):
    """Applications to the groups I own or administer, newest first; answered with
    ``group_applications``."""

    offset: Offset = 0
    limit: Limit = 20


# Replies


class Groups(Reply, frozen=True, tag="groups"):
    items: list[GroupInfo]
    not_found: list[str] = []


class JoinGroupResult(Reply, frozen=True, tag="join_group_result"):
    joined: bool
    """True: now a member. False: the application waits for an owner or admin."""


class InviteResult(Reply, frozen=True, tag="invite_result"):
    joined: list[str]
    applied: list[str]
    """Invitees whose joining waits for an owner or admin."""


class GroupMembers(Reply, frozen=True, tag="group_members"):
    items: list[GroupMember]
    total: int


class GroupMemberSync(Reply, frozen=True, tag="group_member_sync"):
    """Read like ``friend_sync``; ``deletes`` are user ids."""

    group_id: str
    kind: Literal["equal", "incremental", "full"]
    version_id: str
    version: int
    inserts: list[GroupMember] = []
    updates: list[GroupMember] = []
    deletes: list[str] = []


class GroupMemberSyncs(Reply, frozen=True, tag="group_member_syncs"):
    items: list[GroupMemberChanges]
    not_member: list[str] = []
    """Requested groups the sender is not a member of (or that do not exist)."""


class GroupMemberIds(Reply, frozen=True, tag="group_member_ids"):
    group_id: str
    user_ids: list[str]
    version_id: str
    version: int


class JoinedGroups(Reply, frozen=True, tag="joined_groups"):
    items: list[JoinedGroup]
    total: int


class JoinedGroupSync(Reply, frozen=True, tag="joined_group_sync"):
    """Read like ``friend_sync``; ``deletes`` are group ids. A group counts as updated
    when its info, its owner, its mute-all flag or my role in it changed (not when
    only its member count did)."""

    kind: Literal["equal", "incremental", "full"]
    version_id: str
    version: int
    inserts: list[JoinedGroup] = []
    updates: list[JoinedGroup] = []
    deletes: list[str] = []


class JoinedGroupIds(Reply, frozen=True, tag="joined_group_ids"):
    group_ids: list[str]
    version_id: str
    version: int


class GroupApplications(Reply, frozen=True, tag="group_applications"):
    items: list[GroupApplication]
    total: int
