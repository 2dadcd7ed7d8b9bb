"""Conversation ids (protocol.conversation_ids) and the user-id rules they rest on:
an id names exactly one pair of users or one group, and names it without guessing.
Sans-IO: no sockets."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import messages as m
from protocol.codec import ServerCodec
from protocol.conversation_ids import (
    MAX_LENGTH,
    ConversationId,
    GroupChat,
    SingleChat,
    group_conversation_id,
    is_user_id,
    parse_conversation_id,
    peer_in,
    single_chat,
    single_conversation_id,
)
from protocol.errors import ErrorCode, ProtocolError

# Short ids over a small alphabet, so that prefixes, suffixes and equal ids are common.
user_ids = st.text(alphabet="ab.@-", min_size=1, max_size=6) | st.from_regex(
    r"[A-Za-z0-9.@-]{1,64}", fullmatch=True
)
group_ids = st.from_regex(r"[A-Za-z0-9_.@-]{1,64}", fullmatch=True)
pairs = st.tuples(user_ids, user_ids)
# Anything a client might send as an id: built from the characters that matter.
any_ids = st.text(alphabet="sigab_.@-", max_size=14) | st.builds(
    "".join, st.lists(st.sampled_from(["si_", "sg_", "_", "a", "b", "a_b", "A"]), max_size=6)
)


def accepted_on_the_wire(conversation_id: str) -> bool:
    try:
        msgspec.convert(conversation_id, ConversationId)
    except msgspec.ValidationError:
        return False
    return True


@given(pairs)
def test_id_to_pair_to_id_round_trips(pair: tuple[str, str]) -> None:
    a, b = pair
    conversation_id = single_conversation_id(a, b)
    assert conversation_id == single_conversation_id(b, a)
    chat = parse_conversation_id(conversation_id)
    assert chat == SingleChat(min(a, b), max(a, b))
    assert isinstance(chat, SingleChat)
    assert single_conversation_id(chat.low, chat.high) == conversation_id
    assert chat.conversation_id == conversation_id
    assert accepted_on_the_wire(conversation_id)
    assert len(conversation_id) <= MAX_LENGTH


@given(pairs, pairs)
def test_two_different_pairs_never_share_an_id(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    if sorted(first) == sorted(second):  # the same two users, in either order
        assert single_conversation_id(*first) == single_conversation_id(*second)
    else:
        assert single_conversation_id(*first) != single_conversation_id(*second)


@given(pairs, group_ids)
def test_single_and_group_ids_never_meet(pair: tuple[str, str], group_id: str) -> None:
    assert single_conversation_id(*pair) != group_conversation_id(group_id)
    assert parse_conversation_id(group_conversation_id(group_id)) == GroupChat(group_id)


@given(pairs, user_ids)
def test_peer_is_named_only_for_the_two_users(pair: tuple[str, str], other: str) -> None:
    a, b = pair
    conversation_id = single_conversation_id(a, b)
    assert peer_in(conversation_id, a) == b
    assert peer_in(conversation_id, b) == a
    if other not in pair:
        assert peer_in(conversation_id, other) is None


@given(any_ids)
def test_whatever_parses_is_the_canonical_id_of_what_it_names(conversation_id: str) -> None:
    chat = parse_conversation_id(conversation_id)
    if chat is None:
        return
    assert chat.conversation_id == conversation_id
    assert accepted_on_the_wire(conversation_id)
    if isinstance(chat, SingleChat):
        assert single_conversation_id(chat.low, chat.high) == conversation_id
    else:
        assert group_conversation_id(chat.group_id) == conversation_id


def test_the_colliding_pairs_of_the_old_scheme_cannot_be_formed() -> None:
    # si_aX_b_cX was both (aX_b, cX) and (aX, b_cX) when user ids could hold "_".
    assert parse_conversation_id("si_aX_b_cX") is None
    assert not accepted_on_the_wire("si_aX_b_cX")
    for a, b in (("aX_b", "cX"), ("aX", "b_cX")):
        with pytest.raises(ValueError, match="not a user id"):
            single_conversation_id(a, b)


@pytest.mark.parametrize(
    "conversation_id",
    [
        pytest.param("si_bob_alice", id="unsorted"),
        pytest.param("si_alice", id="one-user"),
        pytest.param("si_alice_", id="empty-second"),
        pytest.param("si__bob", id="empty-first"),
        pytest.param("si_a_b_c", id="three-parts"),
        pytest.param("sg_", id="empty-group"),
        pytest.param("sx_alice_bob", id="unknown-prefix"),
        pytest.param("alice_bob", id="no-prefix"),
        pytest.param("si_" + "a" * 65 + "_b", id="user-id-too-long"),
    ],
)
def test_non_canonical_ids_name_nothing(conversation_id: str) -> None:
    assert parse_conversation_id(conversation_id) is None
    assert peer_in(conversation_id, "alice") is None


def test_wire_type_refuses_what_cannot_be_a_conversation() -> None:
    assert accepted_on_the_wire("si_alice_bob")
    assert accepted_on_the_wire("si_alice_alice")
    assert accepted_on_the_wire("sg_team_one")  # group ids may contain "_"
    assert accepted_on_the_wire("si_bob_alice")  # well-formed; names no conversation
    for bad in ("si_a_b_c", "si_alice", "sg_", "si_a/b_c", "si_ä_b"):
        assert not accepted_on_the_wire(bad), bad


def test_self_chat() -> None:
    assert single_chat("alice", "alice") == SingleChat("alice", "alice")
    assert peer_in("si_alice_alice", "alice") == "alice"


def test_sdk_and_messages_export_the_same_helpers() -> None:
    import client

    assert client.single_conversation_id is single_conversation_id
    assert client.parse_conversation_id is parse_conversation_id
    assert m.single_conversation_id is single_conversation_id
    assert m.group_conversation_id is group_conversation_id


# -- the user-id rules ---------------------------------------------------------------


def register_frame(user_id: str) -> bytes:
    return msgspec.msgpack.encode(
        {"t": "register", "rid": 42, "user_id": user_id, "password": "secret1"}
    )


@pytest.mark.parametrize("user_id", ["a_b", "_alice", "alice_", "aX_b", "b_cX", "_"])
def test_user_id_with_underscore_is_refused_at_registration(user_id: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        ServerCodec().decode(register_frame(user_id))
    assert caught.value.code == ErrorCode.INVALID_FIELD
    assert caught.value.rid == 42
    assert "user_id" in caught.value.message
    assert not is_user_id(user_id)


@pytest.mark.parametrize("user_id", ["a", "a" * 64, "Alice-01.b@example-x.com", "aX", "cX"])
def test_user_id_rules(user_id: str) -> None:
    decoded = ServerCodec().decode(register_frame(user_id))
    assert isinstance(decoded, m.Register) and decoded.user_id == user_id
    assert is_user_id(user_id)


@given(st.text(max_size=70))
def test_is_user_id_agrees_with_the_wire_type(user_id: str) -> None:
    try:
        msgspec.convert(user_id, m.UserId)
    except msgspec.ValidationError:
        on_the_wire = False
    else:
        on_the_wire = True
    assert is_user_id(user_id) == on_the_wire


def test_group_ids_keep_underscore() -> None:
    frame = msgspec.msgpack.encode(
        {
            "t": "send_message",
            "rid": 7,
            "client_msg_id": "c",
            "content": {"type": 101, "text": "hi"},
            "group_id": "team_one",
        }
    )
    decoded = ServerCodec().decode(frame)
    assert isinstance(decoded, m.SendMessage) and decoded.group_id == "team_one"
    with pytest.raises(ValueError, match="not a group id"):
        group_conversation_id("team/one")
