"""The sans-IO wire protocol: messages, codecs, error and close codes, platforms.

No sockets: frames are built with msgspec (or by hand, for broken ones) and fed
straight to the codecs.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import messages as m
from protocol.codec import ClientCodec, ServerCodec, encode_server_message
from protocol.errors import CloseCode, ErrorCode, ProtocolError, should_reconnect
from protocol.platforms import PLATFORM_IDS, Platform

pack = msgspec.msgpack.encode

PROFILE = m.UserProfile(
    user_id="alice",
    nickname="Alice",
    face_url="https://example.com/a.png",
    ex='{"k": 1}',
    created_at=1_700_000_000_000,
    version=3,
)

# One instance of every client message, with every field set to a non-default value
# where the type allows it.
CLIENT_SAMPLES: list[m.ClientMessage] = [
    m.Ping(rid=1),
    m.Register(
        rid=2,
        user_id="alice",
        password="secret1",
        nickname="Alice",
        face_url="https://example.com/a.png",
        ex="{}",
    ),
    m.Login(rid=3, user_id="alice", password="secret1", platform=5),
    m.TokenLogin(rid=4, token="tok.en.value"),
    m.Logout(rid=5),
    m.ChangePassword(rid=6, old_password="secret1", new_password="secret2"),
    m.GetSelf(rid=7),
    m.SetProfile(rid=8, nickname="Al", face_url="", ex="x"),
    m.GetUsers(rid=9, user_ids=["bob", "carol"]),
    m.GetOnlineStatus(rid=2**53, user_ids=["bob"]),
    m.ApplyFriend(rid=10, to_user_id="bob", message="hi"),
    m.RespondFriendApplication(rid=11, from_user_id="bob", accept=True, message="ok"),
    m.GetFriendApplications(rid=12, direction="sent", offset=20, limit=10),
    m.CountUnhandledFriendApplications(rid=13),
    m.DeleteFriend(rid=14, friend_id="bob", both_sides=True),
    m.UpdateFriend(rid=15, friend_id="bob", remark="Bobby", ex="x"),
    m.GetFriends(rid=16, offset=5, limit=50),
    m.GetFriendsById(rid=17, user_ids=["bob"]),
    m.CheckFriend(rid=18, user_id="bob"),
    m.SyncFriends(rid=19, version_id="abc", version=7),
    m.GetFriendIds(rid=20),
    m.AddBlack(rid=21, user_id="eve", ex="spam"),
    m.RemoveBlack(rid=22, user_id="eve"),
    m.GetBlacks(rid=23, offset=1, limit=2),
    m.PullNotifications(rid=24, after_seq=9, limit=50),
    m.SendMessage(rid=25, client_msg_id="c1", content=m.TextContent(text="hi"), to_user_id="bob"),
    m.GetMaxSeqs(rid=26),
    m.PullMessages(rid=27, conversation_id="si_alice_bob", from_seq=2, to_seq=9, limit=5),
    m.GetHistory(rid=28, conversation_id="sg_team", before_seq=10, before_time=5, limit=3),
    m.MarkRead(rid=29, conversation_id="si_alice_bob", seq=4),
    m.RevokeMessage(rid=30, conversation_id="si_alice_bob", seq=3),
    m.DeleteMessages(rid=31, conversation_id="si_alice_bob", seqs=[1, 2]),
    m.ClearConversation(rid=32, conversation_id="si_alice_bob"),
    m.GetConversations(rid=33, offset=1, limit=10),
    m.SetConversations(rid=34, conversation_ids=["si_alice_bob"], pinned=True, recv_opt=2),
    m.HideConversation(rid=35, conversation_id="si_alice_bob"),
    m.SyncConversations(rid=36, version_id="v", version=3),
    m.CreateGroup(
        rid=37,
        group_id="team",
        name="Team",
        face_url="https://x/t.png",
        intro="about",
        notification="hi",
        ex="{}",
        join_policy="direct",
        member_user_ids=["bob"],
        admin_user_ids=["carol"],
    ),
    m.SetGroupInfo(rid=38, group_id="team", name="T", notification="n", join_policy="invite_only"),
    m.DismissGroup(rid=39, group_id="team"),
    m.ApplyJoinGroup(rid=40, group_id="team", message="hi"),
    m.RespondGroupApplication(rid=41, group_id="team", user_id="dave", accept=True, message="ok"),
    m.InviteToGroup(rid=42, group_id="team", user_ids=["dave"], message="join"),
    m.KickGroupMembers(rid=43, group_id="team", user_ids=["bob"], reason="spam"),
    m.QuitGroup(rid=44, group_id="team"),
    m.TransferGroupOwner(rid=45, group_id="team", new_owner_user_id="carol"),
    m.SetGroupMemberRole(rid=46, group_id="team", user_id="bob", role_level=60),
    m.SetGroupMemberInfo(rid=47, group_id="team", user_id="bob", nickname="B", ex="x"),
    m.MuteGroupMember(rid=48, group_id="team", user_id="bob", seconds=60),
    m.UnmuteGroupMember(rid=49, group_id="team", user_id="bob"),
    m.MuteGroup(rid=50, group_id="team"),
    m.UnmuteGroup(rid=51, group_id="team"),
    m.GetGroupMembers(rid=52, group_id="team", roles=[100, 60], offset=1, limit=5),
    m.GetGroupMembersById(rid=53, group_id="team", user_ids=["bob"]),
    m.SyncGroupMembers(rid=54, group_id="team", version_id="v", version=2),
    m.GetGroupMemberIds(rid=55, group_id="team"),
    m.GetGroupsInfo(rid=56, group_ids=["team", "other"]),
    m.GetJoinedGroups(rid=57, offset=2, limit=3),
    m.SyncJoinedGroups(rid=58, version_id="v", version=4),
    m.GetJoinedGroupIds(rid=59),
    m.SyncGroupMembersBatch(rid=60, groups=[m.GroupVersion(group_id="team", version_id="v")]),
    m.GetMyGroupApplications(rid=61, offset=1, limit=2),
    m.GetGroupApplications(rid=62, offset=3, limit=4),
]

FRIEND = m.FriendInfo(user_id="bob", remark="Bobby", ex="", created_at=1_700_000_000_000)
APPLICATION = m.FriendApplication(
    from_user_id="alice",
    to_user_id="bob",
    message="hi",
    state=1,
    handle_message="ok",
    created_at=1_700_000_000_000,
    handled_at=1_700_000_000_500,
)
CHAT_MESSAGE = m.ChatMessage(
    conversation_id="si_alice_bob",
    session_type=m.SINGLE_CHAT,
    seq=5,
    server_msg_id="s1",
    client_msg_id="c1",
    send_id="alice",
    recv_id="bob",
    send_time=1_700_000_000_000,
    content=m.PictureContent(url="https://x/p.png", width=1, height=2, size=3),
)
CONVERSATION = m.ConversationInfo(
    conversation_id="si_alice_bob", session_type=m.SINGLE_CHAT, peer_user_id="bob", pinned=True
)
GROUP = m.GroupInfo(
    group_id="team",
    name="Team",
    face_url="",
    intro="",
    notification="hi",
    ex="",
    owner_user_id="alice",
    creator_user_id="alice",
    join_policy="approval",
    status="active",
    mute_all=False,
    member_count=3,
    created_at=1_700_000_000_000,
    notification_updated_at=1_700_000_000_000,
    notification_user_id="alice",
)
GROUP_MEMBER = m.GroupMember(
    group_id="team",
    user_id="bob",
    role_level=20,
    nickname="B",
    face_url="",
    ex="",
    joined_at=1_700_000_000_000,
    join_source=2,
    inviter_user_id="alice",
    muted_until=0,
)
GROUP_APPLICATION = m.GroupApplication(
    group_id="team",
    user_id="dave",
    inviter_user_id="",
    message="hi",
    state=0,
    handler_user_id="",
    handle_message="",
    created_at=1_700_000_000_000,
    handled_at=0,
)
JOINED = m.JoinedGroup(group=GROUP, role_level=20, joined_at=1_700_000_000_000)
NOTIFICATION = m.Notification(
    seq=3,
    type=m.NotificationType.FRIEND_ADDED,
    send_time=1_700_000_000_000,
    detail=m.FriendDetail(owner_user_id="alice", friend=FRIEND),
)

SERVER_SAMPLES: list[m.ServerMessage] = [
    m.Error(rid=0, code=ErrorCode.BAD_FRAME, name="BAD_FRAME", message="malformed"),
    m.Ok(rid=1),
    m.Pong(rid=2, server_time=1_700_000_000_123),
    m.Registered(rid=3, user_id="alice"),
    m.LoginOk(
        rid=4,
        user_id="alice",
        platform=Platform.WEB,
        token="tok",
        expires_at=1_800_000_000_000,
        profile=PROFILE,
    ),
    m.TokenIssued(rid=5, token="tok2", expires_at=1_800_000_000_001),
    m.Profile(rid=6, profile=PROFILE),
    m.Users(
        rid=7,
        users=[m.PublicUser(user_id="bob", nickname="Bob", face_url="", ex="")],
        not_found=["nobody"],
    ),
    m.OnlineStatus(
        rid=8,
        statuses=[
            m.UserOnline(user_id="bob", platforms=[1, 5]),
            m.UserOnline(user_id="carol", platforms=[]),
        ],
    ),
    m.Kicked(close_code=CloseCode.KICKED, reason="signed in elsewhere"),
    m.SelfUpdated(profile=PROFILE),
    m.FriendApplications(rid=9, items=[APPLICATION], total=1),
    m.Count(rid=10, count=2),
    m.Friends(rid=11, items=[FRIEND], total=1),
    m.FriendStatus(rid=12, user_id="bob", in_my_list=True, in_their_list=False),
    m.FriendSync(
        rid=13, kind="incremental", version_id="v", version=4, updates=[FRIEND], deletes=["eve"]
    ),
    m.FriendIds(rid=14, user_ids=["bob"], version_id="v", version=4),
    m.Blacks(rid=15, items=[m.BlackInfo(user_id="eve", ex="", created_at=1)], total=1),
    m.Notifications(rid=16, items=[NOTIFICATION], max_seq=3, min_seq=1, is_end=True),
    NOTIFICATION,
    m.MessageSent(
        rid=17,
        conversation_id="si_alice_bob",
        seq=5,
        server_msg_id="s1",
        client_msg_id="c1",
        send_time=1,
    ),
    m.MaxSeqs(
        rid=18,
        conversations=[
            m.ConversationSeqs(conversation_id="si_alice_bob", max_seq=5, has_read_seq=2, min_seq=0)
        ],
    ),
    m.Messages(rid=19, items=[CHAT_MESSAGE], is_end=True),
    m.Conversations(
        rid=20,
        items=[
            m.ConversationView(
                info=CONVERSATION,
                max_seq=5,
                has_read_seq=2,
                min_seq=0,
                unread_count=3,
                latest_message=CHAT_MESSAGE,
            )
        ],
        total=1,
    ),
    m.ConversationSync(rid=21, kind="full", version_id="v", version=1, inserts=[CONVERSATION]),
    m.NewMessage(message=CHAT_MESSAGE),
    m.Typing(conversation_id="si_alice_bob", from_user_id="alice", text=""),
    m.ReadReceipt(conversation_id="si_alice_bob", reader_user_id="bob", has_read_seq=5),
    m.ReadStateChanged(conversation_id="si_alice_bob", has_read_seq=5, min_seq=0),
    m.ConversationChanged(conversations=[CONVERSATION]),
    m.Groups(rid=22, items=[GROUP], not_found=["other"]),
    m.JoinGroupResult(rid=23, joined=False),
    m.InviteResult(rid=24, joined=["dave"], applied=["erin"]),
    m.GroupMembers(rid=25, items=[GROUP_MEMBER], total=3),
    m.GroupMemberSync(
        rid=26,
        group_id="team",
        kind="incremental",
        version_id="v",
        version=3,
        inserts=[GROUP_MEMBER],
        deletes=["carol"],
    ),
    m.GroupMemberSyncs(
        rid=27,
        items=[
            m.GroupMemberChanges(
                group_id="team", kind="full", version_id="v", version=3, inserts=[GROUP_MEMBER]
            )
        ],
        not_member=["other"],
    ),
    m.GroupMemberIds(rid=28, group_id="team", user_ids=["alice", "bob"], version_id="v", version=3),
    m.JoinedGroups(rid=29, items=[JOINED], total=1),
    m.JoinedGroupSync(rid=30, kind="incremental", version_id="v", version=2, updates=[JOINED]),
    m.JoinedGroupIds(rid=31, group_ids=["team"], version_id="v", version=2),
    m.GroupApplications(rid=32, items=[GROUP_APPLICATION], total=1),
    m.Notification(
        seq=4,
        type=m.NotificationType.GROUP_OWNER_TRANSFERRED,
        send_time=1,
        detail=m.GroupOwnerDetail(
            group=GROUP, op_user_id="alice", old_owner=GROUP_MEMBER, new_owner=GROUP_MEMBER
        ),
    ),
    m.Notifications(
        rid=33,
        items=[
            m.Notification(
                seq=5, type=1501, send_time=1, detail=m.GroupDetail(group=GROUP, op_user_id="alice")
            ),
            m.Notification(
                seq=6,
                type=1509,
                send_time=1,
                detail=m.GroupMembersDetail(
                    group=GROUP, op_user_id="alice", members=[GROUP_MEMBER]
                ),
            ),
            m.Notification(
                seq=7,
                type=1503,
                send_time=1,
                detail=m.GroupApplicationDetail(group=GROUP, application=GROUP_APPLICATION),
            ),
        ],
        max_seq=7,
        min_seq=1,
        is_end=True,
    ),
]

CLIENT_TAGS = {
    m.Ping: "ping",
    m.Register: "register",
    m.Login: "login",
    m.TokenLogin: "token_login",
    m.Logout: "logout",
    m.ChangePassword: "change_password",
    m.GetSelf: "get_self",
    m.SetProfile: "set_profile",
    m.GetUsers: "get_users",
    m.GetOnlineStatus: "get_online_status",
    m.ApplyFriend: "apply_friend",
    m.RespondFriendApplication: "respond_friend_application",
    m.GetFriendApplications: "get_friend_applications",
    m.CountUnhandledFriendApplications: "count_unhandled_friend_applications",
    m.DeleteFriend: "delete_friend",
    m.UpdateFriend: "update_friend",
    m.GetFriends: "get_friends",
    m.GetFriendsById: "get_friends_by_id",
    m.CheckFriend: "check_friend",
    m.SyncFriends: "sync_friends",
    m.GetFriendIds: "get_friend_ids",
    m.AddBlack: "add_black",
    m.RemoveBlack: "remove_black",
    m.GetBlacks: "get_blacks",
    m.PullNotifications: "pull_notifications",
    m.SendMessage: "send_message",
    m.GetMaxSeqs: "get_max_seqs",
    m.PullMessages: "pull_messages",
    m.GetHistory: "get_history",
    m.MarkRead: "mark_read",
    m.RevokeMessage: "revoke_message",
    m.DeleteMessages: "delete_messages",
    m.ClearConversation: "clear_conversation",
    m.GetConversations: "get_conversations",
    m.SetConversations: "set_conversations",
    m.HideConversation: "hide_conversation",
    m.SyncConversations: "sync_conversations",
    m.CreateGroup: "create_group",
    m.SetGroupInfo: "set_group_info",
    m.DismissGroup: "dismiss_group",
    m.ApplyJoinGroup: "apply_join_group",
    m.RespondGroupApplication: "respond_group_application",
    m.InviteToGroup: "invite_to_group",
    m.KickGroupMembers: "kick_group_members",
    m.QuitGroup: "quit_group",
    m.TransferGroupOwner: "transfer_group_owner",
    m.SetGroupMemberRole: "set_group_member_role",
    m.SetGroupMemberInfo: "set_group_member_info",
    m.MuteGroupMember: "mute_group_member",
    m.UnmuteGroupMember: "unmute_group_member",
    m.MuteGroup: "mute_group",
    m.UnmuteGroup: "unmute_group",
    m.GetGroupMembers: "get_group_members",
    m.GetGroupMembersById: "get_group_members_by_id",
    m.SyncGroupMembers: "sync_group_members",
    m.GetGroupMemberIds: "get_group_member_ids",
    m.GetGroupsInfo: "get_groups_info",
    m.GetJoinedGroups: "get_joined_groups",
    m.SyncJoinedGroups: "sync_joined_groups",
    m.GetJoinedGroupIds: "get_joined_group_ids",
    m.SyncGroupMembersBatch: "sync_group_members_batch",
    m.GetMyGroupApplications: "get_my_group_applications",
    m.GetGroupApplications: "get_group_applications",
}

SERVER_TAGS = {
    m.Error: "error",
    m.Ok: "ok",
    m.Pong: "pong",
    m.Registered: "registered",
    m.LoginOk: "login_ok",
    m.TokenIssued: "token_issued",
    m.Profile: "profile",
    m.Users: "users",
    m.OnlineStatus: "online_status",
    m.Kicked: "kicked",
    m.SelfUpdated: "self_updated",
    m.FriendApplications: "friend_applications",
    m.Count: "count",
    m.Friends: "friends",
    m.FriendStatus: "friend_status",
    m.FriendSync: "friend_sync",
    m.FriendIds: "friend_ids",
    m.Blacks: "blacks",
    m.Notifications: "notifications",
    m.Notification: "notification",
    m.MessageSent: "message_sent",
    m.MaxSeqs: "max_seqs",
    m.Messages: "messages",
    m.Conversations: "conversations",
    m.ConversationSync: "conversation_sync",
    m.NewMessage: "message",
    m.Typing: "typing",
    m.ReadReceipt: "read_receipt",
    m.ReadStateChanged: "read_state",
    m.ConversationChanged: "conversation_changed",
    m.Groups: "groups",
    m.JoinGroupResult: "join_group_result",
    m.InviteResult: "invite_result",
    m.GroupMembers: "group_members",
    m.GroupMemberSync: "group_member_sync",
    m.GroupMemberSyncs: "group_member_syncs",
    m.GroupMemberIds: "group_member_ids",
    m.JoinedGroups: "joined_groups",
    m.JoinedGroupSync: "joined_group_sync",
    m.JoinedGroupIds: "joined_group_ids",
    m.GroupApplications: "group_applications",
}

VALID_REGISTER: dict[str, Any] = {
    "t": "register",
    "rid": 42,
    "user_id": "alice",
    "password": "secret1",
}


def decode_error(frame: bytes) -> ProtocolError:
    """Decode a frame that must be rejected and return the error."""
    with pytest.raises(ProtocolError) as info:
        ServerCodec().decode(frame)
    return info.value


def register_with(**fields: Any) -> bytes:
    return pack({**VALID_REGISTER, **fields})


# --------------------------------------------------------------------------
# Message catalogue and tags
# --------------------------------------------------------------------------


def test_samples_cover_every_message_type() -> None:
    assert {type(s) for s in CLIENT_SAMPLES} == set(get_args(m.ClientMessage))
    assert {type(s) for s in SERVER_SAMPLES} == set(get_args(m.ServerMessage))


def test_client_tags_are_the_documented_ones() -> None:
    assert set(CLIENT_TAGS) == set(get_args(m.ClientMessage))
    for cls, tag in CLIENT_TAGS.items():
        assert cls.__struct_config__.tag == tag


def test_server_tags_are_the_documented_ones() -> None:
    assert set(SERVER_TAGS) == set(get_args(m.ServerMessage))
    for cls, tag in SERVER_TAGS.items():
        assert cls.__struct_config__.tag == tag


@pytest.mark.parametrize("message", CLIENT_SAMPLES, ids=lambda s: type(s).__name__)
def test_client_frame_is_a_map_tagged_with_t(message: m.ClientMessage) -> None:
    raw = msgspec.msgpack.decode(ClientCodec().encode(message))
    assert isinstance(raw, dict)
    assert raw["t"] == CLIENT_TAGS[type(message)]
    assert raw["rid"] == message.rid


def test_pushes_carry_no_rid() -> None:
    for push in (s for s in SERVER_SAMPLES if isinstance(s, m.Push)):
        raw = msgspec.msgpack.decode(encode_server_message(push))
        assert "rid" not in raw
        assert raw["t"] == SERVER_TAGS[type(push)]


def test_protocol_version_is_offered_as_subprotocol() -> None:
    assert m.PROTOCOL_VERSION == "parley.v1"
    assert m.PROTOCOL_VERSION in m.SUPPORTED_SUBPROTOCOLS


def test_login_platforms_are_the_platform_enum() -> None:
    assert set(get_args(m.PlatformId)) == PLATFORM_IDS


def test_only_pre_login_commands_are_unauthenticated() -> None:
    assert set(m.UNAUTHENTICATED_COMMANDS) == {m.Ping, m.Register, m.Login, m.TokenLogin}


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("message", CLIENT_SAMPLES, ids=lambda s: type(s).__name__)
def test_client_message_round_trips(message: m.ClientMessage) -> None:
    decoded = ServerCodec().decode(ClientCodec().encode(message))
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize("message", SERVER_SAMPLES, ids=lambda s: type(s).__name__)
def test_server_message_round_trips(message: m.ServerMessage) -> None:
    client = ClientCodec()
    frame = ServerCodec().encode(message)
    assert client.decode(frame) == message
    assert type(client.decode(frame)) is type(message)


@pytest.mark.parametrize("message", SERVER_SAMPLES, ids=lambda s: type(s).__name__)
def test_encode_server_message_matches_codec(message: m.ServerMessage) -> None:
    frame = encode_server_message(message)
    assert frame == ServerCodec().encode(message)
    assert ClientCodec().decode(frame) == message


def test_codecs_are_reusable_across_messages() -> None:
    server, client = ServerCodec(), ClientCodec()
    for message in CLIENT_SAMPLES * 2:
        assert server.decode(client.encode(message)) == message
    for reply in SERVER_SAMPLES * 2:
        assert client.decode(server.encode(reply)) == reply


def test_optional_fields_take_their_defaults_when_omitted() -> None:
    decoded = ServerCodec().decode(pack(VALID_REGISTER))
    assert decoded == m.Register(rid=42, user_id="alice", password="secret1")
    assert isinstance(decoded, m.Register)
    assert (decoded.nickname, decoded.face_url, decoded.ex) == ("", "", "")


def test_set_profile_omitted_fields_are_none() -> None:
    decoded = ServerCodec().decode(pack({"t": "set_profile", "rid": 1, "nickname": "N"}))
    assert decoded == m.SetProfile(rid=1, nickname="N")
    assert isinstance(decoded, m.SetProfile)
    assert decoded.face_url is None
    assert decoded.ex is None


# --------------------------------------------------------------------------
# Schema evolution
# --------------------------------------------------------------------------


def test_server_ignores_unknown_fields() -> None:
    frame = register_with(new_field=[1, {"x": b"y"}], another=None)
    assert ServerCodec().decode(frame) == m.Register(rid=42, user_id="alice", password="secret1")


def test_client_ignores_unknown_fields() -> None:
    raw = msgspec.msgpack.decode(encode_server_message(m.Pong(rid=3, server_time=10)))
    raw["added_in_v2"] = {"nested": [1, 2, 3]}
    assert ClientCodec().decode(pack(raw)) == m.Pong(rid=3, server_time=10)


def test_unknown_fields_in_nested_records_are_ignored() -> None:
    raw = msgspec.msgpack.decode(encode_server_message(m.Profile(rid=1, profile=PROFILE)))
    raw["profile"]["badge"] = "gold"
    assert ClientCodec().decode(pack(raw)) == m.Profile(rid=1, profile=PROFILE)


# --------------------------------------------------------------------------
# Decoding errors: frames that are not requests
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"\xc1", id="reserved-opcode"),
        pytest.param(b"\x82\xa1t", id="truncated-map"),
        pytest.param(pack({"t": "ping", "rid": 1}) + b"\x00", id="trailing-bytes"),
        pytest.param(b"", id="empty-frame"),
    ],
)
def test_malformed_msgpack_is_bad_frame(frame: bytes) -> None:
    error = decode_error(frame)
    assert error.code == ErrorCode.BAD_FRAME
    assert error.rid == 0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([{"t": "ping", "rid": 1}], id="array"),
        pytest.param(7, id="int"),
        pytest.param("ping", id="str"),
        pytest.param(None, id="nil"),
        pytest.param(b"\x80", id="bin"),
        pytest.param({1: 2}, id="map-with-int-keys"),
    ],
)
def test_msgpack_value_that_is_not_a_map_of_strings_is_bad_frame(value: Any) -> None:
    error = decode_error(pack(value))
    assert error.code == ErrorCode.BAD_FRAME
    assert error.rid == 0


def test_map_without_t_or_rid_is_bad_frame() -> None:
    error = decode_error(pack({"user_id": "alice"}))
    assert error.code == ErrorCode.BAD_FRAME
    assert error.rid == 0


def test_map_without_t_but_with_rid_is_unknown_command_with_that_rid() -> None:
    error = decode_error(pack({"rid": 5, "user_id": "alice"}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 5


# --------------------------------------------------------------------------
# Decoding errors: unknown commands
# --------------------------------------------------------------------------


def test_unknown_t_is_unknown_command_with_its_rid() -> None:
    error = decode_error(pack({"t": "send_rocket", "rid": 77}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 77
    assert "send_rocket" in error.message


def test_unknown_t_without_rid_is_unknown_command_with_rid_0() -> None:
    error = decode_error(pack({"t": "send_rocket"}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 0


def test_server_message_tag_is_not_a_command() -> None:
    error = decode_error(pack({"t": "pong", "rid": 3, "server_time": 1}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 3


@pytest.mark.parametrize("tag", [5, None, True, ["ping"], b"ping"], ids=repr)
def test_non_string_t_is_unknown_command(tag: Any) -> None:
    error = decode_error(pack({"t": tag, "rid": 8}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 8


def test_tag_is_case_sensitive() -> None:
    error = decode_error(pack({"t": "PING", "rid": 4}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 4


# --------------------------------------------------------------------------
# Decoding errors: request ids
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rid",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(2**53 + 1, id="above-2**53"),
        pytest.param(2**64 - 1, id="uint64-max"),
        pytest.param("5", id="str"),
        pytest.param(5.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="nil"),
        pytest.param([5], id="array"),
    ],
)
def test_unreadable_rid_is_invalid_field_with_rid_0(rid: Any) -> None:
    error = decode_error(pack({"t": "ping", "rid": rid}))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 0
    assert "rid" in error.message


def test_missing_rid_is_invalid_field_with_rid_0() -> None:
    error = decode_error(pack({"t": "get_self"}))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 0
    assert "rid" in error.message


@pytest.mark.parametrize("rid", [1, 2**53])
def test_rid_bounds_are_inclusive(rid: int) -> None:
    assert ServerCodec().decode(pack({"t": "ping", "rid": rid})) == m.Ping(rid=rid)


def test_unknown_command_with_unreadable_rid_has_rid_0() -> None:
    error = decode_error(pack({"t": "nope", "rid": 2**53 + 1}))
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.rid == 0


# --------------------------------------------------------------------------
# Decoding errors: fields
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        pytest.param(register_with(user_id=5), "user_id", id="int-for-str"),
        pytest.param(register_with(password=b"secret1"), "password", id="bin-for-str"),
        pytest.param(register_with(nickname=None), "nickname", id="nil-for-str"),
        pytest.param(
            pack({"t": "get_users", "rid": 42, "user_ids": "bob"}), "user_ids", id="str-for-list"
        ),
        pytest.param(
            pack({"t": "get_users", "rid": 42, "user_ids": [1]}), "user_ids", id="int-in-list"
        ),
        pytest.param(
            pack({"t": "login", "rid": 42, "user_id": "a", "password": "p", "platform": "5"}),
            "platform",
            id="str-for-platform",
        ),
    ],
)
def test_wrong_field_type_is_invalid_field_naming_the_field(frame: bytes, field: str) -> None:
    error = decode_error(frame)
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 42
    assert field in error.message


@pytest.mark.parametrize("missing", ["user_id", "password"])
def test_missing_required_field_is_invalid_field(missing: str) -> None:
    fields = {k: v for k, v in VALID_REGISTER.items() if k != missing}
    error = decode_error(pack(fields))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 42
    assert missing in error.message


def test_missing_token_is_invalid_field() -> None:
    error = decode_error(pack({"t": "token_login", "rid": 3}))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 3
    assert "token" in error.message


@pytest.mark.parametrize(
    "user_id",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 65, id="65-chars"),
        pytest.param("has space", id="space"),
        pytest.param("slash/es", id="slash"),
        pytest.param("ünïcode", id="non-ascii"),
        pytest.param("colon:", id="colon"),
        pytest.param("\nalice", id="leading-newline"),
        pytest.param("alice_01", id="underscore"),
    ],
)
def test_bad_user_id_is_invalid_field(user_id: str) -> None:
    error = decode_error(register_with(user_id=user_id))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 42
    assert "user_id" in error.message


@pytest.mark.parametrize("user_id", ["a", "a" * 64, "Alice-01.b@example-x.com"])
def test_good_user_id_is_accepted(user_id: str) -> None:
    decoded = ServerCodec().decode(register_with(user_id=user_id))
    assert isinstance(decoded, m.Register)
    assert decoded.user_id == user_id


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({**VALID_REGISTER, "user_id": "alice\n"}, id="register"),
        pytest.param(
            {"t": "login", "rid": 42, "user_id": "alice\n", "password": "p", "platform": 1},
            id="login",
        ),
        pytest.param({"t": "get_users", "rid": 42, "user_ids": ["bob\n"]}, id="get_users"),
    ],
)
def test_user_id_with_trailing_newline_is_invalid_field(fields: dict[str, Any]) -> None:
    error = decode_error(pack(fields))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 42


def test_register_password_shorter_than_6_is_invalid_field() -> None:
    error = decode_error(register_with(password="12345"))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 42
    assert "password" in error.message


def test_register_password_of_6_is_accepted() -> None:
    decoded = ServerCodec().decode(register_with(password="123456"))
    assert isinstance(decoded, m.Register)
    assert decoded.password == "123456"


def test_password_longer_than_128_is_invalid_field() -> None:
    error = decode_error(register_with(password="x" * 129))
    assert error.code == ErrorCode.INVALID_FIELD
    assert "password" in error.message


def test_change_password_enforces_the_minimum_on_the_new_password() -> None:
    frame = pack({"t": "change_password", "rid": 9, "old_password": "a", "new_password": "short"})
    error = decode_error(frame)
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 9
    assert "new_password" in error.message


def test_login_does_not_apply_the_registration_minimum() -> None:
    frame = pack({"t": "login", "rid": 1, "user_id": "alice", "password": "", "platform": 1})
    assert ServerCodec().decode(frame) == m.Login(rid=1, user_id="alice", password="", platform=1)


@pytest.mark.parametrize("platform", [1, 2, 3, 4, 5, 6, 7, 8, 9, 11])
def test_openim_platforms_are_accepted(platform: int) -> None:
    frame = pack({"t": "login", "rid": 1, "user_id": "a", "password": "p", "platform": platform})
    decoded = ServerCodec().decode(frame)
    assert isinstance(decoded, m.Login)
    assert decoded.platform == platform


@pytest.mark.parametrize("platform", [0, 10, 12, -1, True], ids=repr)
def test_other_platforms_are_invalid_field(platform: Any) -> None:
    frame = pack({"t": "login", "rid": 6, "user_id": "a", "password": "p", "platform": platform})
    error = decode_error(frame)
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 6
    assert "platform" in error.message


@pytest.mark.parametrize("tag", ["get_users", "get_online_status"])
@pytest.mark.parametrize("count", [1, m.MAX_BATCH])
def test_batch_of_1_to_max_ids_is_accepted(tag: str, count: int) -> None:
    ids = [f"u{i}" for i in range(count)]
    decoded = ServerCodec().decode(pack({"t": tag, "rid": 1, "user_ids": ids}))
    assert isinstance(decoded, m.GetUsers | m.GetOnlineStatus)
    assert decoded.user_ids == ids


@pytest.mark.parametrize("tag", ["get_users", "get_online_status"])
@pytest.mark.parametrize("count", [0, m.MAX_BATCH + 1])
def test_empty_or_oversize_batch_is_invalid_field(tag: str, count: int) -> None:
    assert m.MAX_BATCH == 100
    ids = [f"u{i}" for i in range(count)]
    error = decode_error(pack({"t": tag, "rid": 12, "user_ids": ids}))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 12
    assert "user_ids" in error.message


def test_nickname_longer_than_64_is_invalid_field() -> None:
    assert ServerCodec().decode(register_with(nickname="n" * 64)) is not None
    error = decode_error(register_with(nickname="n" * 65))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 42
    assert "nickname" in error.message


def test_set_profile_checks_lengths_too() -> None:
    error = decode_error(pack({"t": "set_profile", "rid": 2, "nickname": "n" * 65}))
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.rid == 2


@pytest.mark.parametrize("where", ["unknown-field", "t", "rid"])
def test_deeply_nested_frame_is_a_protocol_error(where: str) -> None:
    deep = b"\x91" * 5000 + b"\x00"  # [[[[...[0]...]]]], 5 KB
    entries = {
        "unknown-field": [(b"t", pack("ping")), (b"rid", pack(1)), (b"x", deep)],
        "t": [(b"t", deep), (b"rid", pack(1))],
        "rid": [(b"t", pack("nope")), (b"rid", deep)],
    }[where]
    frame = bytes([0x80 | len(entries)]) + b"".join(pack(k.decode()) + v for k, v in entries)
    assert len(frame) < 65536
    with pytest.raises(ProtocolError):
        ServerCodec().decode(frame)


# --------------------------------------------------------------------------
# ProtocolError
# --------------------------------------------------------------------------


def test_protocol_error_carries_code_message_and_rid() -> None:
    error = ProtocolError(ErrorCode.TOO_MANY_PENDING, "slow down", 17)
    assert error.code is ErrorCode.TOO_MANY_PENDING
    assert error.message == "slow down"
    assert error.rid == 17
    assert str(error) == "slow down"
    assert isinstance(error, Exception)


def test_protocol_error_rid_defaults_to_0() -> None:
    assert ProtocolError(ErrorCode.INTERNAL, "boom").rid == 0


# --------------------------------------------------------------------------
# Error codes
# --------------------------------------------------------------------------

REQUEST_ERRORS = {
    ErrorCode.BAD_FRAME,
    ErrorCode.UNKNOWN_COMMAND,
    ErrorCode.INVALID_FIELD,
    ErrorCode.TOO_MANY_PENDING,
    ErrorCode.NOT_AUTHENTICATED,
    ErrorCode.ALREADY_AUTHENTICATED,
}
AUTH_ERRORS = {
    ErrorCode.USER_EXISTS,
    ErrorCode.BAD_CREDENTIALS,
    ErrorCode.TOKEN_INVALID,
    ErrorCode.TOKEN_EXPIRED,
    ErrorCode.TOKEN_REVOKED,
    ErrorCode.RATE_LIMITED,
    ErrorCode.USER_NOT_FOUND,
}
RELATION_ERRORS = {c for c in ErrorCode if 3000 <= c <= 3999}
GROUP_ERRORS = {c for c in ErrorCode if 4000 <= c <= 4999}
MESSAGE_ERRORS = {c for c in ErrorCode if 5000 <= c <= 5999}
APP_ERRORS = {ErrorCode.REFUSED_BY_APP}
SERVER_ERRORS = {ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE, ErrorCode.CALLBACK_FAILED}


def test_error_codes_are_unique() -> None:
    assert len(ErrorCode.__members__) == len(ErrorCode)


def test_every_error_code_is_classified() -> None:
    assert (
        set(ErrorCode)
        == REQUEST_ERRORS
        | AUTH_ERRORS
        | RELATION_ERRORS
        | GROUP_ERRORS
        | MESSAGE_ERRORS
        | APP_ERRORS
        | SERVER_ERRORS
    )


@pytest.mark.parametrize(
    ("codes", "low", "high"),
    [
        pytest.param(REQUEST_ERRORS, 1000, 1999, id="request"),
        pytest.param(AUTH_ERRORS, 2000, 2999, id="auth"),
        pytest.param(APP_ERRORS, 6000, 6999, id="app"),
        pytest.param(SERVER_ERRORS, 9000, 9999, id="server"),
    ],
)
def test_error_codes_lie_in_their_documented_range(
    codes: set[ErrorCode], low: int, high: int
) -> None:
    for code in codes:
        assert low <= code <= high, code


def test_retryable_error_codes() -> None:
    retryable = {c for c in ErrorCode if c.retryable}
    assert retryable == {
        ErrorCode.TOO_MANY_PENDING,
        ErrorCode.RATE_LIMITED,
        ErrorCode.INTERNAL,
        ErrorCode.UNAVAILABLE,
        ErrorCode.CALLBACK_FAILED,
    }


def test_decoding_errors_are_not_retryable() -> None:
    for code in (ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_COMMAND, ErrorCode.INVALID_FIELD):
        assert not code.retryable


# --------------------------------------------------------------------------
# Close codes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (None, True),
        (1000, True),
        (1001, True),
        (1003, False),
        (1009, True),
        (1011, True),
        (4000, True),
        (4001, True),
        (4002, True),
        (4500, False),
        (4501, False),
        (4502, False),
        pytest.param(4100, True, id="unknown-transient-4100"),
        pytest.param(4499, True, id="unknown-transient-4499"),
        pytest.param(4600, False, id="unknown-terminal-4600"),
        pytest.param(4999, False, id="unknown-terminal-4999"),
        pytest.param(1006, True, id="unknown-standard-1006"),
    ],
)
def test_should_reconnect(code: int | None, reconnect: bool) -> None:
    assert should_reconnect(code) is reconnect


def test_close_code_property_agrees_with_module_function() -> None:
    for code in CloseCode:
        assert code.should_reconnect is should_reconnect(int(code)), code


def test_parley_close_codes_follow_the_range_rule() -> None:
    for code in CloseCode:
        if 4000 <= code <= 4499:
            assert code.should_reconnect, code
        elif 4500 <= code <= 4999:
            assert not code.should_reconnect, code
        else:
            assert 1000 <= code <= 1015, code


def test_terminal_close_codes() -> None:
    terminal = {c for c in CloseCode if not c.should_reconnect}
    assert terminal == {
        CloseCode.UNSUPPORTED_DATA,
        CloseCode.KICKED,
        CloseCode.TOKEN_REVOKED,
        CloseCode.LOGGED_OUT,
        CloseCode.UNSUPPORTED_PROTOCOL,
        CloseCode.FORCED_LOGOUT,
    }


# --------------------------------------------------------------------------
# Platforms
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "device_class"),
    [
        (Platform.IOS, "mobile"),
        (Platform.ANDROID, "mobile"),
        (Platform.WINDOWS, "desktop"),
        (Platform.MACOS, "desktop"),
        (Platform.WEB, "web"),
        (Platform.MINI_WEB, "web"),
        (Platform.LINUX, "desktop"),
        (Platform.ANDROID_PAD, "mobile"),
        (Platform.IPAD, "mobile"),
        (Platform.HARMONYOS, "mobile"),
    ],
)
def test_device_class(platform: Platform, device_class: str) -> None:
    assert platform.device_class == device_class


def test_platform_numbers_follow_openim() -> None:
    assert {p.name: p.value for p in Platform} == {
        "IOS": 1,
        "ANDROID": 2,
        "WINDOWS": 3,
        "MACOS": 4,
        "WEB": 5,
        "MINI_WEB": 6,
        "LINUX": 7,
        "ANDROID_PAD": 8,
        "IPAD": 9,
        "HARMONYOS": 11,
    }
    assert sorted(PLATFORM_IDS) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

USER_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.@-"
rids = st.integers(min_value=1, max_value=2**53)
user_ids = st.text(alphabet=USER_ID_ALPHABET, min_size=1, max_size=64)
platforms = st.sampled_from(sorted(PLATFORM_IDS))

requests: st.SearchStrategy[m.ClientMessage] = st.one_of(
    st.builds(
        m.Register,
        rid=rids,
        user_id=user_ids,
        password=st.text(min_size=6, max_size=128),
        nickname=st.text(max_size=64),
        face_url=st.text(max_size=1024),
        ex=st.text(max_size=200),
    ),
    st.builds(
        m.Login,
        rid=rids,
        user_id=user_ids,
        password=st.text(max_size=128),
        platform=platforms,
    ),
    st.builds(
        m.GetUsers,
        rid=rids,
        user_ids=st.lists(user_ids, min_size=1, max_size=m.MAX_BATCH),
    ),
)

msgpack_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

request_like_maps = st.fixed_dictionaries(
    {},
    optional={
        "t": st.sampled_from(sorted(CLIENT_TAGS.values())) | msgpack_values,
        "rid": rids | msgpack_values,
        "user_id": user_ids | msgpack_values,
        "password": st.text(max_size=10) | msgpack_values,
        "platform": platforms | msgpack_values,
        "user_ids": st.lists(user_ids, max_size=3) | msgpack_values,
        "token": msgpack_values,
    },
)


@settings(deadline=None, max_examples=200)
@given(requests)
def test_valid_requests_round_trip(message: m.ClientMessage) -> None:
    assert ServerCodec().decode(ClientCodec().encode(message)) == message


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=256))
def test_random_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    try:
        decoded = ServerCodec().decode(frame)
    except ProtocolError as exc:
        assert exc.code in {ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_COMMAND, ErrorCode.INVALID_FIELD}
        assert 0 <= exc.rid <= 2**53
    else:
        assert isinstance(decoded, get_args(m.ClientMessage))


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(request_like_maps)
def test_request_like_maps_decode_or_raise_protocol_error(fields: dict[str, Any]) -> None:
    try:
        decoded = ServerCodec().decode(pack(fields))
    except ProtocolError as exc:
        assert exc.code in {ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_COMMAND, ErrorCode.INVALID_FIELD}
        rid = fields.get("rid")
        if exc.rid != 0:
            assert exc.rid == rid
    else:
        assert isinstance(decoded, get_args(m.ClientMessage))
        assert decoded.rid == fields["rid"]
