"""Unit tests that need no Redis and no sockets: which actor each command goes to
(routing), and the group rules the group actor applies (roles, who outranks whom,
who may send)."""

from __future__ import annotations

import pytest

from actors.group import actor as group
from actors.group.state import GroupState, outranks, require_outranks
from actors.node import routing
from actors.user import actor as user
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from protocol.groups import ADMIN, MEMBER, OWNER
from storage import GroupRecord, MemberRecord


def test_a_users_own_commands_go_to_their_actor() -> None:
    assert routing.route(m.GetSelf(rid=1), "amy") == (user.KIND, "amy")
    assert routing.route(m.GetFriends(rid=1), "amy") == (user.KIND, "amy")


def test_single_chat_goes_to_the_owner_of_the_conversation_either_way() -> None:
    from_low = m.SendMessage(
        rid=1, to_user_id="zed", content=m.TextContent(text="hi"), client_msg_id="c"
    )
    from_high = m.SendMessage(
        rid=1, to_user_id="amy", content=m.TextContent(text="hi"), client_msg_id="c"
    )
    assert routing.route(from_low, "amy") == (user.KIND, "amy")
    assert routing.route(from_high, "zed") == (user.KIND, "amy")
    revoke = m.RevokeMessage(rid=1, conversation_id="si_amy_zed", seq=3)
    assert routing.route(revoke, "zed") == (user.KIND, "amy")


def test_group_commands_and_group_chat_go_to_the_groups_actor() -> None:
    send = m.SendMessage(
        rid=1, group_id="team", content=m.TextContent(text="hi"), client_msg_id="c"
    )
    assert routing.route(send, "amy") == (group.KIND, "team")
    revoke = m.RevokeMessage(rid=1, conversation_id="sg_team", seq=3)
    assert routing.route(revoke, "amy") == (group.KIND, "team")
    assert routing.route(m.QuitGroup(rid=1, group_id="team"), "amy") == (group.KIND, "team")
    for kind in group.ROUTED:
        assert routing.ROUTES[kind][0] == group.KIND


def test_create_group_without_an_id_gets_a_new_one_for_its_own_actor() -> None:
    kind, first = routing.route(m.CreateGroup(rid=1, name="a"), "amy")
    _, second = routing.route(m.CreateGroup(rid=2, name="a"), "amy")
    assert kind == group.KIND and first != second and first and second


def test_a_revoke_of_someone_elses_conversation_goes_to_the_senders_own_actor() -> None:
    revoke = m.RevokeMessage(rid=1, conversation_id="si_bob_cat", seq=1)
    assert routing.route(revoke, "amy") == (user.KIND, "amy")


def _member(user_id: str, role: int, muted_until_ms: int = 0) -> MemberRecord:
    return MemberRecord(user_id, role, "", "", "", 1, 0, "", muted_until_ms)


def _state(status: str = "active", mute_all: bool = False) -> GroupState:
    info = GroupRecord(
        "team", "Team", "", "", "", "", "olga", "olga", "open", status, mute_all, 1, 0, ""
    )
    members = {
        "olga": _member("olga", OWNER),
        "adam": _member("adam", ADMIN),
        "mia": _member("mia", MEMBER),
        "max": _member("max", MEMBER, muted_until_ms=5_000),
    }
    return GroupState("team", info, members, rev=3)


def test_who_outranks_whom() -> None:
    state = _state()
    olga, adam, mia = (state.members[u] for u in ("olga", "adam", "mia"))
    assert outranks(olga, adam) and outranks(olga, mia) and outranks(adam, mia)
    assert not outranks(adam, olga) and not outranks(mia, mia) and not outranks(mia, adam)
    assert not outranks(adam, state.members["adam"])
    with pytest.raises(ProtocolError) as caught:
        require_outranks(adam, adam)
    assert caught.value.code == ErrorCode.INVALID_FIELD
    with pytest.raises(ProtocolError) as caught:
        require_outranks(mia, adam)
    assert caught.value.code == ErrorCode.PERMISSION_DENIED


def test_roles_and_membership_checks() -> None:
    state = _state()
    assert state.managers() == ["olga", "adam"]
    assert state.role_of("olga") == OWNER and state.role_of("stranger") == 0
    with pytest.raises(ProtocolError) as caught:
        state.require_member("stranger")
    assert caught.value.code == ErrorCode.NOT_GROUP_MEMBER
    with pytest.raises(ProtocolError) as caught:
        state.require_role("mia", ADMIN)
    assert caught.value.code == ErrorCode.PERMISSION_DENIED
    assert state.require_role("adam", ADMIN).user_id == "adam"


def test_who_may_send() -> None:
    state = _state()
    assert state.send_refusal("mia", now_ms=1_000) is None
    assert state.send_refusal("max", now_ms=1_000) == ErrorCode.MEMBER_MUTED
    assert state.send_refusal("max", now_ms=6_000) is None
    assert state.send_refusal("stranger", now_ms=1_000) == ErrorCode.NOT_GROUP_MEMBER
    muted = _state(mute_all=True)
    assert muted.send_refusal("mia", now_ms=1_000) == ErrorCode.GROUP_MUTED
    assert muted.send_refusal("adam", now_ms=1_000) is None  # managers speak in a muted group
    dismissed = _state(status="dismissed")
    assert dismissed.send_refusal("olga", now_ms=1_000) == ErrorCode.GROUP_DISMISSED
