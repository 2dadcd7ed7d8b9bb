"""Sessions and transport: handshake, multi-device policy, timeouts, limits and
bad input. Every misbehaving session gets its documented error or close code,
and the node keeps serving the others."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis
import trio
from wsproto.events import CloseConnection

from actors.cluster.envelopes import CloseSession, Envelope
from client import ErrorCode, ParleyClient, ParleyError, Platform, Reconnected
from protocol import messages as m
from protocol.codec import ClientCodec
from server import RunningNode
from tests.conftest import StartNode
from tests.rawws import RawClient
from tests.support import Connect, both_stores, eventually, expect_error, signed_in, stored_state

pytestmark = both_stores

codec = ClientCodec()


def encode(message: m.ClientMessage) -> bytes:
    return codec.encode(message)


async def assert_still_serving(node: RunningNode, connect: Connect) -> None:
    """A fresh session can still sign in and get answers."""
    witness = await connect(node.url)
    await signed_in(witness, "witness")
    assert (await witness.get_self()).user_id == "witness"


async def raw_signed_in(url: str, user_id: str, platform: int = 7) -> RawClient:
    raw = await RawClient.open(url)
    await raw.send(
        encode(m.Register(rid=1, user_id=user_id, password="password-1", nickname=user_id))
    )
    assert isinstance(codec.decode(await raw.next_message()), m.Registered)
    await raw.send(
        encode(m.Login(rid=2, user_id=user_id, password="password-1", platform=platform))  # type: ignore[arg-type]
    )
    assert isinstance(codec.decode(await raw.next_message()), m.LoginOk)
    return raw


class TestHandshake:
    async def test_protocol_version_is_negotiated(self, node: RunningNode) -> None:
        raw = await RawClient.open(node.url, ["parley.v2", "parley.v1"])
        assert raw.subprotocol == "parley.v1"
        await raw.aclose()

    @pytest.mark.parametrize("offered", [["parley.v0"], [], ["chat"]])
    async def test_unknown_version_is_refused(
        self, node: RunningNode, connect: Connect, offered: list[str]
    ) -> None:
        raw = await RawClient.open(node.url, offered)
        closed = await raw.next_event()
        assert isinstance(closed, CloseConnection) and closed.code == 4503
        assert "this server speaks: parley.v1" in (closed.reason or "")
        await raw.aclose()
        await assert_still_serving(node, connect)


class TestMultiDevice:
    async def test_same_platform_login_kicks_the_old_session(
        self, node: RunningNode, connect: Connect
    ) -> None:
        old = await connect(node.url)
        old_token = await signed_in(old, "ada", Platform.IOS)
        new = await connect(node.url)
        await new.login("ada", "password-1", Platform.IOS)

        kicked = await old.next_event(m.Kicked)
        assert kicked.close_code == 4500
        await old.wait_closed()
        assert old.close_code == 4500
        # The kicked device's token no longer works; the new session does.
        probe = await connect(node.url)
        with pytest.raises(ParleyError) as caught:
            await probe.login_with_token(old_token)
        assert caught.value.code == ErrorCode.TOKEN_REVOKED
        assert (await new.get_self()).user_id == "ada"

    async def test_two_platforms_stay_online_together(
        self, node: RunningNode, connect: Connect
    ) -> None:
        phone = await connect(node.url)
        await signed_in(phone, "ben", Platform.IOS)
        desktop = await connect(node.url)
        await desktop.login("ben", "password-1", Platform.WINDOWS)
        assert (await phone.get_self()).user_id == "ben"
        assert (await desktop.get_self()).user_id == "ben"
        assert (await phone.get_online_status(["ben"]))["ben"] == [1, 3]

    @pytest.mark.parametrize(
        ("policy", "first", "second", "kicks"),
        [
            ("all", Platform.IOS, Platform.IOS, False),
            ("single", Platform.IOS, Platform.WINDOWS, True),
            ("one_per_class", Platform.IOS, Platform.ANDROID, True),
            ("one_per_class", Platform.IOS, Platform.WEB, False),
            ("one_per_platform", Platform.IOS, Platform.ANDROID, False),
            ("one_per_platform", Platform.WEB, Platform.WEB, True),
            ("one_per_platform_except_web", Platform.IOS, Platform.IOS, True),
            ("one_per_platform_except_web", Platform.WEB, Platform.WEB, False),
            ("one_per_platform_except_web", Platform.MINI_WEB, Platform.MINI_WEB, False),
            ("one_per_platform_except_web", Platform.WEB, Platform.MINI_WEB, False),
        ],
    )
    async def test_multi_login_policies(
        self,
        start_node: StartNode,
        connect: Connect,
        policy: str,
        first: Platform,
        second: Platform,
        kicks: bool,
    ) -> None:
        node = await start_node(session={"multi_login": policy})
        a = await connect(node.url)
        await signed_in(a, "cleo", first)
        b = await connect(node.url)
        await b.login("cleo", "password-1", second)
        if kicks:
            await a.wait_closed()
            assert a.close_code == 4500
        else:
            assert (await a.get_self()).user_id == "cleo"

    async def test_browser_tabs_of_one_user_stay_signed_in_by_default(
        self, node: RunningNode, connect: Connect
    ) -> None:
        """Two tabs signing in with a password, and a third reusing a tab's token (as a
        web app shares its token between tabs), all stay signed in together."""
        first = await connect(node.url, reconnect=False)
        token = await signed_in(first, "tabby", Platform.WEB)
        second = await connect(node.url, reconnect=False)
        await second.login("tabby", "password-1", Platform.WEB)
        third = await connect(node.url, reconnect=False)
        await third.login_with_token(token)
        for tab in (first, second, third):
            assert (await tab.get_self()).user_id == "tabby"
        assert (await first.get_online_status(["tabby"]))["tabby"] == [5]
        # A message reaches every tab; the sending tab has its reply instead.
        sender = await connect(node.url)
        await signed_in(sender, "sender")
        await sender.send_text("to every tab", to_user_id="tabby")
        for tab in (first, second, third):
            pushed = await tab.next_event(m.NewMessage)
            assert pushed.message.content == m.TextContent(text="to every tab")
        assert not first.closed and not second.closed and not third.closed
        # A tab's logout revokes its own token only.
        await second.logout()
        await second.wait_closed()
        assert second.close_code == 4502
        assert (await first.get_self()).user_id == "tabby"
        await third.get_self()

    async def test_token_reconnect_on_same_platform_keeps_its_token(
        self, node: RunningNode, connect: Connect
    ) -> None:
        """A device resuming with its own token displaces its stale session but stays valid."""
        stale = await connect(node.url, reconnect=False)
        token = await signed_in(stale, "dora", Platform.ANDROID)
        resumed = await connect(node.url)
        await resumed.login_with_token(token)
        await stale.wait_closed()
        again = await connect(node.url)
        await again.login_with_token(token)


async def two_nodes(start_node: StartNode, **settings: dict[str, Any]) -> list[RunningNode]:
    """Two nodes on the same Redis, each listing the other as live."""
    first, second = await start_node(**settings), await start_node(**settings)
    await eventually(
        lambda: (
            second.node_id in first.cluster.other_nodes
            and first.node_id in second.cluster.other_nodes
        )
    )
    return [first, second]


class TestEndedElsewhere:
    """A session ended through another node is closed even when the close published
    to its node is lost (Redis pub/sub delivers at most once): each node closes, at
    its heartbeat, the sessions its session set in Redis no longer lists."""

    async def test_a_lost_kick_is_enforced_at_the_heartbeat(
        self, start_node: StartNode, connect: Connect, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Beats every 2/3 s; a session is closed at the second beat that misses it.
        first, second = await two_nodes(
            start_node, cluster={"node_timeout": 2}, session={"multi_login": "single"}
        )
        # Registering through the second node makes its actor run xena's commands, so
        # the sign-in that displaces her session on the first node publishes the kick.
        await (await connect(second.url)).register("xena", "password-1")
        old = await connect(first.url)
        await old.login("xena", "password-1", Platform.IOS)
        bystanders = [await connect(first.url) for _ in range(2)]
        await signed_in(bystanders[0], "yuri", Platform.IOS)
        await (await connect(second.url)).register("zoe", "password-1")
        await bystanders[1].login("zoe", "password-1", Platform.IOS)

        lost: list[str] = []
        publish = second.cluster.publish_or_drop

        def lose_kicks(node_id: str, envelope: Envelope) -> None:
            if isinstance(envelope, CloseSession):
                lost.append(envelope.session_id)
            else:
                publish(node_id, envelope)

        monkeypatch.setattr(second.cluster, "publish_or_drop", lose_kicks)
        new = await connect(second.url)
        await new.login("xena", "password-1", Platform.WINDOWS)
        assert len(lost) == 1

        with trio.fail_after(4):
            kicked = await old.next_event(m.Kicked)
            await old.wait_closed()
        assert kicked.close_code == old.close_code == 4500
        assert (await new.get_self()).user_id == "xena"
        assert [(await b.get_self()).user_id for b in bystanders] == ["yuri", "zoe"]
        assert [b.close_code for b in bystanders] == [None, None]

    async def test_sessions_signing_in_between_heartbeats_stay_open(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        # Beats every 1/3 s while sessions keep signing in on the first node; the
        # sign-ins of odd users run on the second node (their actors are there).
        first, second = await two_nodes(start_node, cluster={"node_timeout": 1})
        user_ids = [f"user-{i}" for i in range(48)]
        for i, user_id in enumerate(user_ids):
            registrar = await connect((second if i % 2 else first).url, reconnect=False)
            await registrar.register(user_id, "password-1")
            await registrar.aclose()
        sessions: list[ParleyClient] = []

        async def sign_in(user_id: str) -> None:
            client = await connect(first.url, reconnect=False)
            await client.login(user_id, "password-1", Platform.IOS)
            sessions.append(client)

        for start in range(0, len(user_ids), 6):
            async with trio.open_nursery() as nursery:
                for user_id in user_ids[start : start + 6]:
                    nursery.start_soon(sign_in, user_id)
            await trio.sleep(0.07)
        await trio.sleep(1.5)  # several beats after the last sign-in

        assert [c.close_code for c in sessions] == [None] * len(user_ids)
        for client in sessions:
            await client.ping()


class TestTimeouts:
    async def test_silent_client_is_closed_after_idle_timeout(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(
            session={"ping_interval": 0.1, "idle_timeout": 0.5, "handshake_timeout": 1}
        )
        raw = await raw_signed_in(node.url, "eve")
        code = await raw.wait_closed(timeout=10)
        assert raw.pings_seen >= 1
        assert code == 4001
        await eventually(lambda: node.gateway.close_codes[4001] == 1)
        await assert_still_serving(node, connect)

    async def test_answering_pings_keeps_session_alive(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(session={"ping_interval": 0.1, "idle_timeout": 0.4})
        client = await connect(node.url)
        await signed_in(client, "fay")
        await trio.sleep(1.2)
        assert (await client.get_self()).user_id == "fay"

    async def test_handshake_must_finish_in_time(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(session={"handshake_timeout": 0.3})
        host, port = node.url.removeprefix("ws://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        with trio.fail_after(10):
            # Say nothing: the server must give up on the upgrade and hang up.
            assert await stream.receive_some(1024) == b""
        await stream.aclose()
        await assert_still_serving(node, connect)

    async def test_session_must_sign_in_in_time(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(session={"auth_timeout": 0.3})
        client = await connect(node.url, reconnect=False)
        await client.ping()
        await client.wait_closed()
        assert client.close_code == 4000


class TestLimits:
    async def test_oversize_frame_closes_with_1009(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(session={"max_frame_bytes": 1024})
        raw = await raw_signed_in(node.url, "gus")
        await raw.send(b"\x80" + b"x" * 2000)
        assert await raw.wait_closed() == 1009
        await assert_still_serving(node, connect)

    async def test_too_many_pending_requests(self, start_node: StartNode, connect: Connect) -> None:
        node = await start_node(session={"max_pending": 2})
        raw = await raw_signed_in(node.url, "hal")
        count = 40
        for rid in range(100, 100 + count):
            await raw.send(encode(m.GetSelf(rid=rid)))
        replies = [codec.decode(await raw.next_message()) for _ in range(count)]
        assert sorted(r.rid for r in replies if isinstance(r, m.Reply)) == list(
            range(100, 100 + count)
        )
        refused = [r for r in replies if isinstance(r, m.Error)]
        served = [r for r in replies if isinstance(r, m.Profile)]
        assert refused, "expected some TOO_MANY_PENDING errors"
        assert served, "expected some requests to be served"
        assert {r.code for r in refused} == {ErrorCode.TOO_MANY_PENDING}
        await raw.aclose()

    async def test_slow_reader_is_disconnected_without_blocking_others(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(
            session={"outbound_queue": 8, "max_pending": 10_000, "handshake_timeout": 1}
        )
        raw = await RawClient.open(node.url)
        raw.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await raw.send(
            encode(m.Register(rid=1, user_id="ike", password="password-1", ex="e" * 4000))
        )
        await raw.send(encode(m.Login(rid=2, user_id="ike", password="password-1", platform=7)))
        await trio.sleep(0.2)

        async def ask_and_never_read() -> None:
            # Many large replies, never read. Once the server stops reading this socket
            # the send may block even after the server closed it (seen on a loaded
            # machine), so it runs beside the checks and is cancelled after them.
            for rid in range(10, 3010):
                try:
                    await raw.send(encode(m.GetSelf(rid=rid)))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if node.gateway.close_codes[4002]:
                    return

        async with trio.open_nursery() as flood:
            flood.start_soon(ask_and_never_read)
            other = await connect(node.url)
            await signed_in(other, "jill")
            await eventually(lambda: node.gateway.close_codes[4002] == 1, timeout=30)
            assert (await other.get_self()).user_id == "jill"
            flood.cancel_scope.cancel()
        await raw.aclose()


class TestBadInput:
    async def test_malformed_msgpack_gets_bad_frame_and_session_goes_on(
        self, node: RunningNode
    ) -> None:
        raw = await raw_signed_in(node.url, "kim")
        await raw.send(b"\xc1\xc1\xc1")
        error = codec.decode(await raw.next_message())
        assert isinstance(error, m.Error)
        assert (error.code, error.rid) == (ErrorCode.BAD_FRAME, 0)
        await raw.send(encode(m.GetSelf(rid=9)))
        assert isinstance(codec.decode(await raw.next_message()), m.Profile)
        await raw.aclose()

    async def test_unknown_command_gets_unknown_command_with_rid(self, node: RunningNode) -> None:
        raw = await raw_signed_in(node.url, "lee")
        await raw.send(msgspec.msgpack.encode({"t": "fly_to_moon", "rid": 77}))
        error = codec.decode(await raw.next_message())
        assert isinstance(error, m.Error)
        assert (error.code, error.rid) == (ErrorCode.UNKNOWN_COMMAND, 77)
        await raw.aclose()

    async def test_wrong_field_types_get_invalid_field(self, node: RunningNode) -> None:
        raw = await raw_signed_in(node.url, "max")
        await raw.send(msgspec.msgpack.encode({"t": "get_users", "rid": 5, "user_ids": "max"}))
        error = codec.decode(await raw.next_message())
        assert isinstance(error, m.Error)
        assert (error.code, error.rid) == (ErrorCode.INVALID_FIELD, 5)
        assert "user_ids" in error.message
        await raw.aclose()

    async def test_command_before_login_is_refused(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        with pytest.raises(ParleyError) as caught:
            await client.get_self()
        assert caught.value.code == ErrorCode.NOT_AUTHENTICATED
        assert await client.ping() > 0

    async def test_deeply_nested_frame_is_bad_frame_and_node_survives(
        self, node: RunningNode, connect: Connect
    ) -> None:
        raw = await RawClient.open(node.url)
        await raw.send(b"\x91" * 5000 + b"\x00")
        error = codec.decode(await raw.next_message())
        assert isinstance(error, m.Error)
        assert error.code == ErrorCode.BAD_FRAME
        await raw.send(encode(m.Ping(rid=3)))
        assert isinstance(codec.decode(await raw.next_message()), m.Pong)
        await assert_still_serving(node, connect)
        await raw.aclose()

    async def test_text_frame_closes_with_1003(self, node: RunningNode, connect: Connect) -> None:
        raw = await raw_signed_in(node.url, "ned")
        await raw.send("hello")
        assert await raw.wait_closed() == 1003
        await assert_still_serving(node, connect)


class TestActors:
    async def test_idle_actors_are_passivated_and_come_back(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(actors={"idle_timeout": 0.2})
        online = await connect(node.url)
        await signed_in(online, "olive")
        setup = await connect(node.url)
        await setup.register("paul", "password-1", nickname="Paul")
        await eventually(lambda: node.supervisor.passivations >= 1)
        # The actor of a user with a live session stays; paul's was stopped.
        assert node.supervisor.live_actors == 1
        assert (await online.get_self()).user_id == "olive"
        assert (await setup.login("paul", "password-1")).profile.nickname == "Paul"

    async def test_failing_actor_answers_internal_and_recovers_from_storage(
        self,
        start_node: StartNode,
        connect: Connect,
        redis_client: redis.Redis,
        prefix: str,
    ) -> None:
        node = await start_node(actors={"idle_timeout": 0.2})
        bystander = await connect(node.url)
        await signed_in(bystander, "quin")
        victim = await connect(node.url)
        await victim.register("rose", "password-1")
        await eventually(lambda: node.supervisor.passivations >= 1)
        key = f"{prefix}{{u:rose}}:account"
        redis_client.hset(key, "created_at", "not-a-number")

        with pytest.raises(ParleyError) as caught:
            await victim.login("rose", "password-1")
        assert caught.value.code == ErrorCode.INTERNAL
        assert (await bystander.get_self()).user_id == "quin"

        redis_client.hset(key, "created_at", "1700000000000")
        assert (await victim.login("rose", "password-1")).user_id == "rose"


LONG_IDLE = {"idle_timeout": 600.0}
"""Actor settings under which only the early stop of actors whose entity does not
exist can explain an actor going away during a test."""


async def actors_settle_at(node: RunningNode, live: int) -> None:
    """Wait until ``live`` actors run and none is stopping (so none is about to be
    restarted for a message that waited while it stopped)."""
    supervisor = node.supervisor
    await eventually(lambda: supervisor.live_actors == live and supervisor.stopping_actors == 0)


class TestMadeUpIds:
    """A command naming a user or group that does not exist is refused, and the actor
    started to find that out is stopped right after (not after ``actors.idle_timeout``),
    so made-up ids cannot make the node hold a thread each."""

    async def test_sends_and_group_commands_leave_no_actors_behind(
        self, start_node: StartNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        node = await start_node(actors=LONG_IDLE)
        supervisor = node.supervisor
        zed = await connect(node.url)
        await signed_in(zed, "zed")
        before = supervisor.live_actors
        stored = stored_state(redis_client, prefix)

        # Single chat runs in the actor of the lower user id: here the made-up one.
        for n in range(50):
            await expect_error(
                ErrorCode.USER_NOT_FOUND, zed.send_text("hi", to_user_id=f"ghost-{n}")
            )
        group_commands: list[Callable[[str], Awaitable[object]]] = [
            zed.get_group_members,
            lambda group_id: zed.send_text("hi", group_id=group_id),
            zed.apply_join_group,
            lambda group_id: zed.set_group_info(group_id, name="renamed"),
            zed.quit_group,
        ]
        for n in range(50):
            command = group_commands[n % len(group_commands)]
            await expect_error(ErrorCode.GROUP_NOT_FOUND, command(f"no-group-{n}"))
        # Commands that reach an actor while it stops are kept and answered after.
        async with trio.open_nursery() as nursery:
            for n in range(10):
                refused = zed.send_text(f"burst {n}", to_user_id="ghost-0")
                nursery.start_soon(expect_error, ErrorCode.USER_NOT_FOUND, refused)
                nursery.start_soon(
                    expect_error, ErrorCode.GROUP_NOT_FOUND, zed.get_group_members("no-group-0")
                )

        await actors_settle_at(node, before)
        assert supervisor.passivations == 0
        assert supervisor.missing_entity_stops >= 100
        assert supervisor.is_live("user", "zed")
        assert stored_state(redis_client, prefix) == stored
        assert (await zed.get_self()).user_id == "zed"

    async def test_real_users_and_groups_keep_their_actors(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(actors=LONG_IDLE)
        supervisor = node.supervisor
        zed = await connect(node.url)
        await signed_in(zed, "zed")
        await (await connect(node.url)).register("abe", "password-1")  # never signed in
        group_id = (await zed.create_group("real", member_user_ids=["abe"])).group_id

        # abe's actor (no session depends on it) owns the single chat of abe and zed.
        await zed.send_text("hello", to_user_id="abe")
        await expect_error(ErrorCode.NO_SUCH_MESSAGE, zed.revoke_message("si_abe_zed", 99))
        await expect_error(ErrorCode.USER_NOT_FOUND, zed.send_text("hi", to_user_id="zz-ghost"))
        await zed.get_group_members(group_id)
        await expect_error(
            ErrorCode.NOT_GROUP_MEMBER, zed.kick_group_members(group_id, ["zz-ghost"])
        )
        await expect_error(ErrorCode.USER_NOT_FOUND, zed.invite_to_group(group_id, ["zz-ghost"]))
        await zed.send_text("to the group", group_id=group_id)

        await trio.sleep(0.3)  # time for a wrong stop request to arrive
        assert supervisor.missing_entity_stops == 0
        for kind, entity_id in (("user", "zed"), ("user", "abe"), ("group", group_id)):
            assert supervisor.is_live(kind, entity_id), (kind, entity_id)

    async def test_sign_in_with_a_made_up_id_leaves_no_actor_and_register_still_works(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(actors=LONG_IDLE)
        supervisor = node.supervisor
        connections = node.gateway.connection_count
        for n in range(5):
            stranger = await connect(node.url)
            await expect_error(
                ErrorCode.BAD_CREDENTIALS, stranger.login(f"nobody-{n}", "password-1")
            )
            await stranger.aclose()  # tells nobody-<n>'s (new) actor that the session ended
        await eventually(lambda: node.gateway.connection_count == connections)
        await actors_settle_at(node, 0)

        newcomer = await connect(node.url)
        await expect_error(ErrorCode.BAD_CREDENTIALS, newcomer.login("nobody-0", "password-1"))
        await newcomer.register("nobody-0", "password-1")
        assert (await newcomer.login("nobody-0", "password-1")).user_id == "nobody-0"
        await trio.sleep(0.3)
        assert supervisor.is_live("user", "nobody-0")
        assert supervisor.passivations == 0


async def test_shutdown_closes_sessions_with_going_away(
    start_node: StartNode, connect: Connect
) -> None:
    node = await start_node()
    client = await connect(node.url, reconnect=False)
    await signed_in(client, "sue")
    await node.stop()
    await client.wait_closed()
    assert client.close_code == 1001


async def test_client_reconnects_and_resumes_after_restart(
    start_node: StartNode, nursery: trio.Nursery
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = await start_node(server={"port": port})
    client = ParleyClient(first.url, backoff_initial=0.05, backoff_max=0.2)
    await client.connect(nursery)
    await signed_in(client, "tom", Platform.IOS)
    await client.set_profile(nickname="Tommy")
    await first.stop()

    await start_node(server={"port": port})
    event = await client.next_event(Reconnected, timeout=20)
    assert event.attempt >= 1
    profile = await client.get_self()
    assert (profile.user_id, profile.nickname) == ("tom", "Tommy")
    await client.aclose()
