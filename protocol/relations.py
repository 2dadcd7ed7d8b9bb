"""Friends, friend applications, the blacklist, and incremental friend sync."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.base import Ex, Limit, Offset, Reply, Request, UserId, UserIdBatch

RequestMessage = Annotated[str, Meta(max_length=1024)]
Remark = Annotated[str, Meta(max_length=64)]
VersionId = Annotated[str, Meta(max_length=64)]
Version = Annotated[int, Meta(ge=0, le=2**53)]

# Application states.
PENDING = 0
ACCEPTED = 1
REFUSED = -1


# Records


class FriendInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a user's friend list: the relationship, not the friend's profile
    (get it with ``get_users``; ``user_info`` notifications say when it changes)."""

    user_id: str
    remark: str
    ex: str
    created_at: int


class FriendApplication(msgspec.Struct, frozen=True, kw_only=True):
    from_user_id: str
    to_user_id: str
    message: str
    state: int
    """0 pending, 1 accepted, -1 refused."""
    handle_message: str
    created_at: int
    """When it was (last) sent, ms since the epoch."""
    handled_at: int
    """When it was accepted or refused; 0 while pending."""


class BlackInfo(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    ex: str
    created_at: int


# Requests


class ApplyFriend(Request, frozen=True, tag="apply_friend"):
    """Ask ``to_user_id`` to be friends. Sending again updates the pending application."""

    to_user_id: UserId
    message: RequestMessage = ""


class RespondFriendApplication(Request, frozen=True, tag="respond_friend_application"):
    """Accept or refuse the pending application from ``from_user_id``."""

    from_user_id: UserId
    accept: bool
    message: RequestMessage = ""


class GetFriendApplications(Request, frozen=True, tag="get_friend_applications"):
    """Applications received or sent, newest first; answered with ``friend_applications``."""

    direction: Literal["received", "sent"]
    offset: Offset = 0
    limit: Limit = 20


class CountUnhandledFriendApplications(
    Request, frozen=True, tag="count_unhandled_friend_applications"
):
    """Pending received applications; answered with ``count``."""


class DeleteFriend(Request, frozen=True, tag="delete_friend"):
    """Remove ``friend_id`` from my list; with ``both_sides`` also me from theirs."""

    friend_id: UserId
    both_sides: bool = False


class UpdateFriend(Request, frozen=True, tag="update_friend"):
    """Set the remark and/or ex of a friend; omitted fields keep their value."""

    friend_id: UserId
    remark: Remark | None = None
    ex: Ex | None = None


class GetFriends(Request, frozen=True, tag="get_friends"):
    """My friends in the order they were added; answered with ``friends``."""

    offset: Offset = 0
    limit: Limit = 20


class GetFriendsById(Request, frozen=True, tag="get_friends_by_id"):
    """The entries of these friends (ids not in my list are left out)."""

    user_ids: UserIdBatch


class CheckFriend(Request, frozen=True, tag="check_friend"):
    """Whether ``user_id`` is in my list and I am in theirs; answered with ``friend_status``."""

    user_id: UserId


class SyncFriends(Request, frozen=True, tag="sync_friends"):
    """Changes to my friend list since (version_id, version); answered with ``friend_sync``.

    A client with no copy sends an empty ``version_id`` and gets the full list."""

    version_id: VersionId = ""
    version: Version = 0


class GetFriendIds(Request, frozen=True, tag="get_friend_ids"):
    """All friend ids with the list's current version; answered with ``friend_ids``."""


class AddBlack(Request, frozen=True, tag="add_black"):
    user_id: UserId
    ex: Ex = ""


class RemoveBlack(Request, frozen=True, tag="remove_black"):
    user_id: UserId


class GetBlacks(Request, frozen=True, tag="get_blacks"):
    """My blacklist, most recently added first; answered with ``blacks``."""

    offset: Offset = 0
    limit: Limit = 20


# Replies


class FriendApplications(Reply, frozen=True, tag="friend_applications"):
    items: list[FriendApplication]
    total: int


class Count(Reply, frozen=True, tag="count"):
    count: int


class Friends(Reply, frozen=True, tag="friends"):
    items: list[FriendInfo]
    total: int


class FriendStatus(Reply, frozen=True, tag="friend_status"):
    user_id: str
    in_my_list: bool
    in_their_list: bool


class FriendSync(Reply, frozen=True, tag="friend_sync"):
    """``equal``: nothing to do. ``incremental``: upsert ``inserts`` and ``updates``, remove
    ``deletes``. ``full``: replace the whole copy with ``inserts``. Then keep
    (``version_id``, ``version``) for the next sync."""

    kind: Literal["equal", "incremental", "full"]
    version_id: str
    version: int
    inserts: list[FriendInfo] = []
    updates: list[FriendInfo] = []
    deletes: list[str] = []


class FriendIds(Reply, frozen=True, tag="friend_ids"):
    user_ids: list[str]
    version_id: str
    version: int


class Blacks(Reply, frozen=True, tag="blacks"):
    items: list[BlackInfo]
    total: int
