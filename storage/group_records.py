"""The records of groups as stored (msgpack arrays: a field added later goes last,
with a default, so records written before still decode)."""

from __future__ import annotations

import msgspec


class GroupRecord(msgspec.Struct, frozen=True, array_like=True):
    group_id: str
    name: str
    face_url: str
    intro: str
    notification: str
    ex: str
    owner_user_id: str
    creator_user_id: str
    join_policy: str
    status: str
    mute_all: bool
    created_at: int
    notification_updated_at: int
    notification_user_id: str


class MemberRecord(msgspec.Struct, frozen=True, array_like=True):
    user_id: str
    role: int
    nickname: str
    face_url: str
    ex: str
    joined_at: int
    join_source: int
    inviter_user_id: str
    muted_until_ms: int
    join_seq: int = 0
    """Orders the members as they joined (see :meth:`GroupStep.join_seq`)."""


class JoinedRecord(msgspec.Struct, frozen=True, array_like=True):
    group_id: str
    role: int
    joined_at: int
    group_rev: int = 0
    """The group's revision when the entry was written: every change to the group's
    info rewrites it, so the change shows in the joined-group log as an update."""


class GroupApplicationRecord(msgspec.Struct, frozen=True, array_like=True):
    group_id: str
    user_id: str
    inviter_user_id: str
    message: str
    state: int
    handler_user_id: str
    handle_message: str
    created_at: int
    handled_at: int


encode = msgspec.msgpack.Encoder().encode
_group = msgspec.msgpack.Decoder(GroupRecord)
_member = msgspec.msgpack.Decoder(MemberRecord)
_joined = msgspec.msgpack.Decoder(JoinedRecord)
_application = msgspec.msgpack.Decoder(GroupApplicationRecord)

MANAGER_ROLE = 60


def join_order(record: MemberRecord) -> tuple[int, str]:
    """Members are listed in the order they joined (those who joined together in the
    order they were listed)."""
    return record.join_seq, record.user_id


def decode_member(raw: bytes) -> MemberRecord:
    return _member.decode(raw)


def decode_joined(raw: bytes) -> JoinedRecord:
    return _joined.decode(raw)


def decode_group(raw: bytes) -> GroupRecord:
    return _group.decode(raw)


def decode_application(raw: bytes) -> GroupApplicationRecord:
    return _application.decode(raw)
