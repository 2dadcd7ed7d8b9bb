"""Friend, application, blacklist and notification commands of the user actor.

:class:`RelationCommands` belongs to one user actor; every method runs in that
actor's task on the node's event loop and awaits storage. Each change is a step
on this user's slot plus its follow-ups for the other user and the pair's gate
(storage/relations.py), all applied before the store returns, notifications
included; the notifications are then pushed to every device of the users
concerned, the session that sent the command included, so each device sees its
notification seqs without gaps. A seq of 0 (nothing stored for that user) is not
pushed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from msgspec.structs import replace

from actors.delivery.notify import from_stored, push_stored, stored_form
from actors.runtime.callbacks import ask_before, notes_body, tell_after
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import STEP_ATTEMPTS, now_ms
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from protocol.notifications import NotificationType as N
from protocol.relations import ACCEPTED, PENDING, REFUSED
from storage import (
    ApplicationRecord,
    BlackRecord,
    Changes,
    FriendRecord,
    RelationStore,
    StaleRead,
    StepRefused,
)

_REFUSALS = {
    "USER_NOT_FOUND": "no such user",
    "BLOCKED_BY_PEER": "this user has blocked you",
    "PEER_BLOCKED": "you have blocked this user; remove them from your blacklist first",
    "ALREADY_FRIENDS": "you are already friends",
    "NO_SUCH_APPLICATION": "no application from this user to you",
    "NOT_FRIENDS": "this user is not in your friend list",
    "ALREADY_BLOCKED": "this user is already on your blacklist",
    "NOT_BLOCKED": "this user is not on your blacklist",
}


def _refused(exc: StepRefused, rid: int) -> ProtocolError:
    return ProtocolError(ErrorCode[exc.reason], _REFUSALS.get(exc.reason, exc.reason), rid)


def friend_info(record: FriendRecord) -> m.FriendInfo:
    return m.FriendInfo(
        user_id=record.user_id, remark=record.remark, ex=record.ex, created_at=record.created_at
    )


def application_info(record: ApplicationRecord) -> m.FriendApplication:
    return m.FriendApplication(
        from_user_id=record.from_user_id,
        to_user_id=record.to_user_id,
        message=record.message,
        state=record.state,
        handle_message=record.handle_message,
        created_at=record.created_at,
        handled_at=record.handled_at,
    )


def black_info(record: BlackRecord) -> m.BlackInfo:
    return m.BlackInfo(user_id=record.user_id, ex=record.ex, created_at=record.created_at)


def friend_sync_reply(rid: int, changes: Changes) -> m.FriendSync:
    """The ``friend_sync`` answer for changes read from the version log."""
    records = sorted(
        (RelationStore.decode_friend(raw) for raw in changes.upserts.values()),
        key=lambda r: (r.created_at, r.user_id),
    )
    return m.FriendSync(
        rid=rid,
        kind=changes.kind,
        version_id=changes.version_id,
        version=changes.version,
        inserts=[friend_info(r) for r in records if r.user_id in changes.inserted],
        updates=[friend_info(r) for r in records if r.user_id not in changes.inserted],
        deletes=changes.deletes,
    )


async def notify_followers(services: NodeServices, user_id: str, profile: m.PublicUser) -> None:
    """Tell everyone who has ``user_id`` as a friend that the profile changed (1209)."""
    followers = await services.storage.relations.followers(user_id)
    if not followers:
        return
    now = now_ms()
    detail = m.UserInfoDetail(user=profile)
    seqs = await services.storage.notifications.append(
        followers, stored_form(N.FRIEND_INFO_UPDATED, detail, now), sender=user_id
    )
    recipients = zip(followers, seqs, strict=True)
    push_stored(services.hub, N.FRIEND_INFO_UPDATED, detail, now, recipients, None)


class RelationCommands:
    def __init__(self, user_id: str, services: NodeServices) -> None:
        self.user_id = user_id
        self._services = services
        self._store = services.storage.relations
        self._hub = services.hub

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.ApplyFriend: self.apply_friend,
            m.RespondFriendApplication: self.respond,
            m.GetFriendApplications: self.applications,
            m.CountUnhandledFriendApplications: self.count_unhandled,
            m.DeleteFriend: self.delete_friend,
            m.UpdateFriend: self.update_friend,
            m.GetFriends: self.friends,
            m.GetFriendsById: self.friends_by_id,
            m.CheckFriend: self.check_friend,
            m.SyncFriends: self.sync_friends,
            m.GetFriendIds: self.friend_ids,
            m.AddBlack: self.add_black,
            m.RemoveBlack: self.remove_black,
            m.GetBlacks: self.blacks,
            m.PullNotifications: self.pull_notifications,
        }

    def _push(
        self,
        command: Command,
        kind: N,
        detail: m.NotificationDetail,
        now: int,
        recipients: list[tuple[str, int]],
    ) -> None:
        # Every device gets every notification, the acting one too, so each device
        # sees its notification seqs without gaps.
        push_stored(self._hub, kind, detail, now, recipients, None)

    async def _ask_app(self, command: Command) -> None:
        if self._services.webhooks.on:
            await ask_before(self._services, command, user_id=self.user_id)

    def _tell_app(self, command: Command, *notes: tuple[N, m.NotificationDetail]) -> None:
        if self._services.webhooks.on:
            tell_after(
                self._services,
                command,
                self.user_id,
                user_id=self.user_id,
                notifications=notes_body(notes),
            )

    # -- applications ---------------------------------------------------------------

    async def apply_friend(self, command: Command) -> m.Reply:
        request = _as(command, m.ApplyFriend)
        target = request.to_user_id
        if target == self.user_id:
            raise ProtocolError(ErrorCode.CANNOT_ADD_SELF, "you cannot befriend yourself")
        await self._ask_app(command)
        now = now_ms()
        application = ApplicationRecord(self.user_id, target, request.message, PENDING, "", now, 0)
        detail = m.FriendApplicationDetail(application=application_info(application))
        try:
            seq_target, seq_self = await self._store.apply(
                application, stored_form(N.FRIEND_APPLICATION, detail, now)
            )
        except StepRefused as exc:
            raise _refused(exc, request.rid) from None
        self._push(
            command, N.FRIEND_APPLICATION, detail, now,
            [(target, seq_target), (self.user_id, seq_self)],
        )  # fmt: skip
        self._tell_app(command, (N.FRIEND_APPLICATION, detail))
        return m.Ok(rid=request.rid)

    async def respond(self, command: Command) -> m.Reply:
        request = _as(command, m.RespondFriendApplication)
        applicant = request.from_user_id
        asked = False
        for _ in range(STEP_ATTEMPTS):
            found = await self._store.received_application(self.user_id, applicant)
            if found is None:
                raise ProtocolError(ErrorCode.NO_SUCH_APPLICATION, _REFUSALS["NO_SUCH_APPLICATION"])
            read, application = found
            if application.state != PENDING:
                raise ProtocolError(
                    ErrorCode.APPLICATION_HANDLED, "this application was already answered"
                )
            if not asked:
                await self._ask_app(command)
                asked = True
            now = now_ms()
            handled = replace(
                application,
                state=ACCEPTED if request.accept else REFUSED,
                handle_message=request.message,
                handled_at=now,
            )
            mine = FriendRecord(applicant, "", "", now)
            theirs = FriendRecord(self.user_id, "", "", now)
            result_kind = (
                N.FRIEND_APPLICATION_APPROVED if request.accept else N.FRIEND_APPLICATION_REJECTED
            )
            result = m.FriendApplicationDetail(application=application_info(handled))
            added_mine = m.FriendDetail(owner_user_id=self.user_id, friend=friend_info(mine))
            added_theirs = m.FriendDetail(owner_user_id=applicant, friend=friend_info(theirs))
            try:
                seqs = await self._store.respond(
                    read, handled, now, mine, theirs,
                    stored_form(result_kind, result, now),
                    stored_form(N.FRIEND_ADDED, added_mine, now),
                    stored_form(N.FRIEND_ADDED, added_theirs, now),
                )  # fmt: skip
            except StaleRead:
                continue
            except StepRefused as exc:
                raise _refused(exc, request.rid) from None
            # In seq order: the step stored the friend-added notices first.
            self._push(
                command, N.FRIEND_ADDED, added_mine, now, [(self.user_id, seqs.responder_added)]
            )
            self._push(
                command, N.FRIEND_ADDED, added_theirs, now, [(applicant, seqs.applicant_added)]
            )
            self._push(
                command, result_kind, result, now,
                [(self.user_id, seqs.responder_result), (applicant, seqs.applicant_result)],
            )  # fmt: skip
            if request.accept:
                self._tell_app(
                    command,
                    (N.FRIEND_ADDED, added_mine),
                    (N.FRIEND_ADDED, added_theirs),
                    (result_kind, result),
                )
            else:
                self._tell_app(command, (result_kind, result))
            return m.Ok(rid=request.rid)
        raise ProtocolError(ErrorCode.UNAVAILABLE, "the application kept changing; try again")

    async def applications(self, command: Command) -> m.Reply:
        request = _as(command, m.GetFriendApplications)
        records, total = await self._store.applications(
            self.user_id, request.direction, request.offset, request.limit
        )
        items = [application_info(r) for r in records]
        return m.FriendApplications(rid=request.rid, items=items, total=total)

    async def count_unhandled(self, command: Command) -> m.Reply:
        return m.Count(rid=command.request.rid, count=await self._store.count_pending(self.user_id))

    # -- friends -------------------------------------------------------------------------

    async def delete_friend(self, command: Command) -> m.Reply:
        request = _as(command, m.DeleteFriend)
        friend = request.friend_id
        await self._ask_app(command)
        now = now_ms()
        mine = m.FriendDeletedDetail(owner_user_id=self.user_id, friend_user_id=friend)
        theirs = m.FriendDeletedDetail(owner_user_id=friend, friend_user_id=self.user_id)
        try:
            seq_mine, seq_theirs = await self._store.delete_friend(
                self.user_id, friend, request.both_sides,
                stored_form(N.FRIEND_DELETED, mine, now),
                stored_form(N.FRIEND_DELETED, theirs, now),
            )  # fmt: skip
        except StepRefused as exc:
            raise _refused(exc, request.rid) from None
        self._push(command, N.FRIEND_DELETED, mine, now, [(self.user_id, seq_mine)])
        self._push(command, N.FRIEND_DELETED, theirs, now, [(friend, seq_theirs)])
        self._tell_app(command, (N.FRIEND_DELETED, mine), (N.FRIEND_DELETED, theirs))
        return m.Ok(rid=request.rid)

    async def update_friend(self, command: Command) -> m.Reply:
        request = _as(command, m.UpdateFriend)
        for _ in range(STEP_ATTEMPTS):
            found = await self._store.friend_entry(self.user_id, request.friend_id)
            if found is None:
                raise ProtocolError(ErrorCode.NOT_FRIENDS, _REFUSALS["NOT_FRIENDS"])
            read, entry = found
            updated = replace(
                entry,
                remark=entry.remark if request.remark is None else request.remark,
                ex=entry.ex if request.ex is None else request.ex,
            )
            now = now_ms()
            detail = m.FriendDetail(owner_user_id=self.user_id, friend=friend_info(updated))
            try:
                seq = await self._store.update_friend(
                    self.user_id, read, updated, stored_form(N.FRIEND_REMARK_SET, detail, now)
                )
            except StaleRead:
                continue
            except StepRefused as exc:
                raise _refused(exc, request.rid) from None
            self._push(command, N.FRIEND_REMARK_SET, detail, now, [(self.user_id, seq)])
            return m.Friends(rid=request.rid, items=[friend_info(updated)], total=1)
        raise ProtocolError(ErrorCode.UNAVAILABLE, "the friend entry kept changing; try again")

    async def friends(self, command: Command) -> m.Reply:
        request = _as(command, m.GetFriends)
        records, total = await self._store.friends(self.user_id, request.offset, request.limit)
        return m.Friends(rid=request.rid, items=[friend_info(r) for r in records], total=total)

    async def friends_by_id(self, command: Command) -> m.Reply:
        request = _as(command, m.GetFriendsById)
        records = await self._store.friends_by_id(
            self.user_id, list(dict.fromkeys(request.user_ids))
        )
        items = [friend_info(r) for r in records]
        return m.Friends(rid=request.rid, items=items, total=len(items))

    async def check_friend(self, command: Command) -> m.Reply:
        request = _as(command, m.CheckFriend)
        mine, theirs = await self._store.friendship(self.user_id, request.user_id)
        return m.FriendStatus(
            rid=request.rid, user_id=request.user_id, in_my_list=mine, in_their_list=theirs
        )

    async def sync_friends(self, command: Command) -> m.Reply:
        request = _as(command, m.SyncFriends)
        changes = await self._store.sync_friends(self.user_id, request.version_id, request.version)
        return friend_sync_reply(request.rid, changes)

    async def friend_ids(self, command: Command) -> m.Reply:
        ids, version_id, version = await self._store.friend_ids(self.user_id)
        return m.FriendIds(
            rid=command.request.rid, user_ids=ids, version_id=version_id, version=version
        )

    # -- blacklist -------------------------------------------------------------------------

    async def add_black(self, command: Command) -> m.Reply:
        request = _as(command, m.AddBlack)
        if request.user_id == self.user_id:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "you cannot block yourself")
        await self._ask_app(command)
        now = now_ms()
        entry = BlackRecord(request.user_id, request.ex, now)
        detail = m.BlackDetail(owner_user_id=self.user_id, black=black_info(entry))
        try:
            seq = await self._store.add_black(
                self.user_id, entry, stored_form(N.BLACK_ADDED, detail, now)
            )
        except StepRefused as exc:
            raise _refused(exc, request.rid) from None
        self._push(command, N.BLACK_ADDED, detail, now, [(self.user_id, seq)])
        self._tell_app(command, (N.BLACK_ADDED, detail))
        return m.Ok(rid=request.rid)

    async def remove_black(self, command: Command) -> m.Reply:
        request = _as(command, m.RemoveBlack)
        await self._ask_app(command)
        now = now_ms()
        detail = m.BlackDeletedDetail(owner_user_id=self.user_id, user_id=request.user_id)
        try:
            seq = await self._store.remove_black(
                self.user_id, request.user_id, stored_form(N.BLACK_DELETED, detail, now)
            )
        except StepRefused as exc:
            raise _refused(exc, request.rid) from None
        self._push(command, N.BLACK_DELETED, detail, now, [(self.user_id, seq)])
        self._tell_app(command, (N.BLACK_DELETED, detail))
        return m.Ok(rid=request.rid)

    async def blacks(self, command: Command) -> m.Reply:
        request = _as(command, m.GetBlacks)
        records, total = await self._store.blacks(self.user_id, request.offset, request.limit)
        return m.Blacks(rid=request.rid, items=[black_info(r) for r in records], total=total)

    # -- notifications -------------------------------------------------------------------

    async def pull_notifications(self, command: Command) -> m.Reply:
        request = _as(command, m.PullNotifications)
        page = await self._services.storage.notifications.pull(
            self.user_id, request.after_seq, request.limit
        )
        items = [from_stored(seq, payload) for seq, payload in page.items]
        last = items[-1].seq if items else request.after_seq
        return m.Notifications(
            rid=request.rid,
            items=items,
            max_seq=page.max_seq,
            min_seq=page.min_seq,
            is_end=last >= page.max_seq,
        )


T = TypeVar("T")


def _as(command: Command, kind: type[T]) -> T:
    request: Any = command.request
    assert isinstance(request, kind)
    return request
