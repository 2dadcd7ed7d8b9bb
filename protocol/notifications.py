"""Typed notifications: state changes pushed to every online device of the users
concerned, and kept per user so a device that was offline can pull them.

Each notification has a per-user ``seq`` (1, 2, 3, ... with no gaps), so a
device that sees a jump in ``seq`` knows it missed some and pulls the range.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from msgspec import Meta

from protocol.accounts import PublicUser
from protocol.base import Push, Reply, Request
from protocol.groups import GroupApplication, GroupInfo, GroupMember
from protocol.relations import BlackInfo, FriendApplication, FriendInfo


class NotificationType(enum.IntEnum):
    """OpenIM's numbers."""

    FRIEND_APPLICATION_APPROVED = 1201
    FRIEND_APPLICATION_REJECTED = 1202
    FRIEND_APPLICATION = 1203
    FRIEND_ADDED = 1204
    FRIEND_DELETED = 1205
    FRIEND_REMARK_SET = 1206
    BLACK_ADDED = 1207
    BLACK_DELETED = 1208
    FRIEND_INFO_UPDATED = 1209
    GROUP_CREATED = 1501
    GROUP_INFO_SET = 1502
    JOIN_GROUP_APPLICATION = 1503
    MEMBER_QUIT = 1504
    GROUP_APPLICATION_ACCEPTED = 1505
    GROUP_APPLICATION_REJECTED = 1506
    GROUP_OWNER_TRANSFERRED = 1507
    MEMBER_KICKED = 1508
    MEMBER_INVITED = 1509
    MEMBER_ENTERED = 1510
    GROUP_DISMISSED = 1511
    GROUP_MEMBER_MUTED = 1512
    GROUP_MEMBER_UNMUTED = 1513
    GROUP_MUTED = 1514
    GROUP_UNMUTED = 1515
    GROUP_MEMBER_INFO_SET = 1516
    GROUP_MEMBER_SET_ADMIN = 1517
    GROUP_MEMBER_SET_ORDINARY = 1518
    GROUP_ANNOUNCEMENT_SET = 1519
    GROUP_NAME_SET = 1520


# Details: what the notification is about, tagged by ``k``.


class Detail(msgspec.Struct, frozen=True, kw_only=True, tag_field="k"):
    pass


class FriendApplicationDetail(Detail, frozen=True, tag="friend_application"):
    """1201, 1202, 1203."""

    application: FriendApplication


class FriendDetail(Detail, frozen=True, tag="friend"):
    """1204, 1206: ``friend`` as it now stands in ``owner_user_id``'s list."""

    owner_user_id: str
    friend: FriendInfo


class FriendDeletedDetail(Detail, frozen=True, tag="friend_deleted"):
    """1205: ``friend_user_id`` left ``owner_user_id``'s list."""

    owner_user_id: str
    friend_user_id: str


class BlackDetail(Detail, frozen=True, tag="black"):
    """1207."""

    owner_user_id: str
    black: BlackInfo


class BlackDeletedDetail(Detail, frozen=True, tag="black_deleted"):
    """1208."""

    owner_user_id: str
    user_id: str


class UserInfoDetail(Detail, frozen=True, tag="user_info"):
    """1209: a friend's public profile changed."""

    user: PublicUser


class GroupDetail(Detail, frozen=True, tag="group"):
    """1501, 1502, 1511, 1514, 1515, 1519, 1520: ``group`` as it now stands."""

    group: GroupInfo
    op_user_id: str


class GroupMembersDetail(Detail, frozen=True, tag="group_members"):
    """1504, 1508, 1509, 1510, 1512, 1513, 1516, 1517, 1518: the ``members`` concerned
    as they now stand (as they last stood, for members who left)."""

    group: GroupInfo
    op_user_id: str
    members: list[GroupMember]


class GroupOwnerDetail(Detail, frozen=True, tag="group_owner"):
    """1507."""

    group: GroupInfo
    op_user_id: str
    old_owner: GroupMember
    new_owner: GroupMember


class GroupApplicationDetail(Detail, frozen=True, tag="group_application"):
    """1503, 1505, 1506."""

    group: GroupInfo
    application: GroupApplication


NotificationDetail = (
    FriendApplicationDetail
    | FriendDetail
    | FriendDeletedDetail
    | BlackDetail
    | BlackDeletedDetail
    | UserInfoDetail
    | GroupDetail
    | GroupMembersDetail
    | GroupOwnerDetail
    | GroupApplicationDetail
)


class Notification(Push, frozen=True, tag="notification"):
    seq: int
    type: int
    send_time: int
    detail: NotificationDetail


# Pulling missed notifications


class PullNotifications(Request, frozen=True, tag="pull_notifications"):
    """Notifications with ``seq`` > ``after_seq``, oldest first; answered with ``notifications``."""

    after_seq: Annotated[int, Meta(ge=0, le=2**53)] = 0
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class Notifications(Reply, frozen=True, tag="notifications"):
    items: list[Notification]
    max_seq: int
    """The newest seq there is."""
    min_seq: int
    """The oldest seq still kept; older ones were trimmed."""
    is_end: bool
    """True when ``items`` reaches ``max_seq``."""
