"""A local copy of the friend list kept current with incremental sync."""

from __future__ import annotations

from protocol import messages as m


class FriendListCopy:
    """Apply ``friend_sync`` answers; the copy then equals the server's list."""

    def __init__(self) -> None:
        self.version_id = ""
        self.version = 0
        self.friends: dict[str, m.FriendInfo] = {}

    def apply(self, answer: m.FriendSync) -> None:
        if answer.kind == "full":
            self.friends = {f.user_id: f for f in answer.inserts}
        elif answer.kind == "incremental":
            for friend in (*answer.inserts, *answer.updates):
                self.friends[friend.user_id] = friend
            for user_id in answer.deletes:
                self.friends.pop(user_id, None)
        self.version_id = answer.version_id
        self.version = answer.version
