"""SDK methods for friends, friend applications, the blacklist and notifications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from client.base import RequestSender
from protocol import messages as m


class RelationMethods(RequestSender):
    # -- friends and blacklist ---------------------------------------------------------

    async def apply_friend(self, to_user_id: str, message: str = "") -> None:
        request = m.ApplyFriend(rid=self.next_rid(), to_user_id=to_user_id, message=message)
        await self.request(request, m.Ok)

    async def respond_friend_application(
        self, from_user_id: str, accept: bool, message: str = ""
    ) -> None:
        request = m.RespondFriendApplication(
            rid=self.next_rid(), from_user_id=from_user_id, accept=accept, message=message
        )
        await self.request(request, m.Ok)

    async def get_friend_applications(
        self, direction: Literal["received", "sent"] = "received", offset: int = 0, limit: int = 20
    ) -> m.FriendApplications:
        request = m.GetFriendApplications(
            rid=self.next_rid(), direction=direction, offset=offset, limit=limit
        )
        return await self.request(request, m.FriendApplications)

    async def count_unhandled_friend_applications(self) -> int:
        request = m.CountUnhandledFriendApplications(rid=self.next_rid())
        return (await self.request(request, m.Count)).count

    async def delete_friend(self, friend_id: str, both_sides: bool = False) -> None:
        request = m.DeleteFriend(rid=self.next_rid(), friend_id=friend_id, both_sides=both_sides)
        await self.request(request, m.Ok)

    async def update_friend(
        self, friend_id: str, *, remark: str | None = None, ex: str | None = None
    ) -> m.FriendInfo:
        request = m.UpdateFriend(rid=self.next_rid(), friend_id=friend_id, remark=remark, ex=ex)
        return (await self.request(request, m.Friends)).items[0]

    async def get_friends(self, offset: int = 0, limit: int = 20) -> m.Friends:
        request = m.GetFriends(rid=self.next_rid(), offset=offset, limit=limit)
        return await self.request(request, m.Friends)

    async def get_friends_by_id(self, user_ids: Sequence[str]) -> list[m.FriendInfo]:
        request = m.GetFriendsById(rid=self.next_rid(), user_ids=list(user_ids))
        return (await self.request(request, m.Friends)).items

    async def check_friend(self, user_id: str) -> m.FriendStatus:
        request = m.CheckFriend(rid=self.next_rid(), user_id=user_id)
        return await self.request(request, m.FriendStatus)

    async def sync_friends(self, version_id: str = "", version: int = 0) -> m.FriendSync:
        """Changes since (version_id, version); apply them with ``FriendListCopy``."""
        request = m.SyncFriends(rid=self.next_rid(), version_id=version_id, version=version)
        return await self.request(request, m.FriendSync)

    async def get_friend_ids(self) -> m.FriendIds:
        return await self.request(m.GetFriendIds(rid=self.next_rid()), m.FriendIds)

    async def add_black(self, user_id: str, ex: str = "") -> None:
        await self.request(m.AddBlack(rid=self.next_rid(), user_id=user_id, ex=ex), m.Ok)

    async def remove_black(self, user_id: str) -> None:
        await self.request(m.RemoveBlack(rid=self.next_rid(), user_id=user_id), m.Ok)

    async def get_blacks(self, offset: int = 0, limit: int = 20) -> m.Blacks:
        request = m.GetBlacks(rid=self.next_rid(), offset=offset, limit=limit)
        return await self.request(request, m.Blacks)

    # -- notifications -----------------------------------------------------------------

    async def pull_notifications(self, after_seq: int = 0, limit: int = 100) -> m.Notifications:
        request = m.PullNotifications(rid=self.next_rid(), after_seq=after_seq, limit=limit)
        return await self.request(request, m.Notifications)
