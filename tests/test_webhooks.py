"""Webhooks end to end: a node calling a real HTTP receiver (Starlette under
hypercorn's trio worker) started by the test on 127.0.0.1 port 0, driven through
the SDK. Before-callbacks refuse or change actions and fail as ``failed_continue``
says; after-callbacks are retried, deduplicated by their id and kept in order per
conversation; every call is signed and carries no password or token."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import trio
from starlette.responses import JSONResponse, PlainTextResponse, Response

from client import ErrorCode, Platform
from protocol import messages as m
from protocol.conversation_ids import group_conversation_id, single_conversation_id
from tests.conftest import StartNode
from tests.support import Connect, eventually, expect_error, signed_in
from tests.webhook_receiver import (
    SECRET,
    Received,
    closed_port_url,
    start_receiver,
    verdict,
)

SEND = "before_send_single_message"
SENT = "after_send_single_message"


async def hooked(
    start_node: StartNode, url: str, callbacks: dict[str, dict[str, Any]], **section: Any
) -> Any:
    """A node whose ``callbacks`` (name -> own settings) are enabled, calling ``url``."""
    blocks = {name: {"enable": True, **own} for name, own in callbacks.items()}
    return await start_node(
        webhooks={
            "secret": SECRET,
            "default": {"url": url, "timeout": 2.0},
            "retry_backoff": 0.05,
            **section,
            **blocks,
        }
    )


async def pair(node: Any, connect: Connect, a: str = "alice", b: str = "bob") -> tuple[Any, Any]:
    first, second = await connect(node.url), await connect(node.url)
    await signed_in(first, a)
    await signed_in(second, b)
    return first, second


async def max_seq(client: Any, conversation_id: str) -> int:
    seqs = await client.get_max_seqs()
    return seqs[conversation_id].max_seq if conversation_id in seqs else 0


def calls(node: Any, callback: str, outcome: str) -> float:
    value = node.registry.get_sample_value(
        "parley_webhook_calls_total", {"callback": callback, "outcome": outcome}
    )
    return value or 0.0


# -- before-send: refuse, change, fail -------------------------------------------------


async def test_refusal_reaches_the_client_with_the_apps_code_and_changes_nothing(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    receiver.answers[SEND] = verdict(allow=False, code=4711, message="no links, please")
    node = await hooked(start_node, receiver.url, {SEND: {}})
    alice, bob = await pair(node, connect)
    error = await expect_error(
        ErrorCode.REFUSED_BY_APP, alice.send_text("http://spam", to_user_id="bob")
    )
    assert (error.app_code, error.app_message) == (4711, "no links, please")
    assert not error.error.retryable if error.error else False
    conversation = single_conversation_id("alice", "bob")
    assert await max_seq(alice, conversation) == 0
    with trio.move_on_after(0.3) as waited:
        await bob.next_event(m.NewMessage, timeout=1)
    assert waited.cancelled_caught, "a refused message was pushed"
    [call] = receiver.of(SEND)
    assert call.signature_ok
    assert call.body["message"]["content"] == {"type": 101, "text": "http://spam"}
    assert call.body["message"]["send_id"] == "alice"
    assert calls(node, SEND, "refused") == 1
    # The refusal was for this message only: the next one goes through.
    receiver.answers.pop(SEND)
    sent = await alice.send_text("hello", to_user_id="bob")
    assert sent.seq == 1


async def test_changed_content_and_ex_are_stored_and_pushed(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    receiver.answers[SEND] = verdict(
        allow=True, content={"type": 101, "text": "h***o"}, ex="moderated"
    )
    node = await hooked(start_node, receiver.url, {SEND: {}})
    alice, bob = await pair(node, connect)
    sent = await alice.send_text("hello", to_user_id="bob")
    pushed = await bob.next_event(m.NewMessage)
    assert pushed.message.content == m.TextContent(text="h***o")
    assert pushed.message.ex == "moderated"
    [stored] = (await bob.pull_messages(sent.conversation_id, sent.seq, sent.seq)).items
    assert (stored.content, stored.ex) == (m.TextContent(text="h***o"), "moderated")


async def test_unusable_changed_content_counts_as_a_bad_answer(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    """Content the server would refuse from a client (server-only type 111, unknown
    type) is a bad answer: failed_continue false refuses, true stores the original."""
    receiver = await start_receiver(nursery)
    receiver.answers[SEND] = verdict(allow=True, content={"type": 111, "revoked_seq": 1})
    group_send = "before_send_group_message"
    receiver.answers[group_send] = verdict(allow=True, content={"type": 9999})
    node = await hooked(
        start_node, receiver.url, {SEND: {"failed_continue": False}, group_send: {}}
    )
    alice, bob = await pair(node, connect)
    await expect_error(ErrorCode.CALLBACK_FAILED, alice.send_text("x", to_user_id="bob"))
    group = await alice.create_group("g", member_user_ids=["bob"], join_policy="direct")
    sent = await alice.send_text("original", group_id=group.group_id)
    [stored] = (await bob.pull_messages(sent.conversation_id, sent.seq, sent.seq)).items
    assert stored.content == m.TextContent(text="original")
    assert calls(node, SEND, "bad_answer") == 1
    assert calls(node, group_send, "bad_answer") == 1


async def test_timeout_with_failed_continue_true_and_false(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)

    async def slow(_: Received) -> Response:
        await trio.sleep(5)
        return JSONResponse({"allow": False})

    receiver.answers[SEND] = slow
    receiver.answers["before_send_group_message"] = slow
    node = await hooked(
        start_node,
        receiver.url,
        {
            SEND: {"timeout": 0.3, "failed_continue": True},
            "before_send_group_message": {"timeout": 0.3, "failed_continue": False},
        },
    )
    alice, bob = await pair(node, connect)
    sent = await alice.send_text("goes on", to_user_id="bob")
    assert sent.seq == 1
    assert (await bob.next_event(m.NewMessage)).message.seq == 1
    group = await alice.create_group("g", member_user_ids=["bob"], join_policy="direct")
    await expect_error(ErrorCode.CALLBACK_FAILED, alice.send_text("held", group_id=group.group_id))
    assert await max_seq(alice, group_conversation_id(group.group_id)) == 0
    assert calls(node, SEND, "timeout") == 1
    assert calls(node, "before_send_group_message", "timeout") == 1
    assert ErrorCode.CALLBACK_FAILED.retryable


async def test_receiver_down(start_node: StartNode, connect: Connect) -> None:
    url = closed_port_url()
    node = await hooked(
        start_node,
        url,
        {SEND: {"failed_continue": True}, "before_add_black": {"failed_continue": False}},
    )
    alice, _ = await pair(node, connect)
    assert (await alice.send_text("anyway", to_user_id="bob")).seq == 1
    await expect_error(ErrorCode.CALLBACK_FAILED, alice.add_black("bob"))
    assert (await alice.get_blacks()).total == 0
    assert calls(node, SEND, "unreachable") == 1
    assert calls(node, "before_add_black", "unreachable") == 1


async def test_bad_answers_are_failures(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    node = await hooked(start_node, receiver.url, {SEND: {"failed_continue": False}})
    alice, _ = await pair(node, connect)
    conversation = single_conversation_id("alice", "bob")

    async def not_json(_: Received) -> Response:
        return PlainTextResponse("<html>oops</html>")

    async def server_error(_: Received) -> Response:
        return JSONResponse({"allow": True}, status_code=500)

    answers: dict[str, list[Any]] = {
        "bad_answer": [not_json, verdict(allow="yes"), verdict(code=1), verdict(allowed=True)],
        "bad_status": [server_error],
    }
    for outcome, scripted in answers.items():
        for answer in scripted:
            receiver.answers[SEND] = answer
            await expect_error(ErrorCode.CALLBACK_FAILED, alice.send_text("x", to_user_id="bob"))
        assert calls(node, SEND, outcome) == len(scripted)
    assert await max_seq(alice, conversation) == 0
    # An empty object (no verdict): refused too; then the node serves on.
    receiver.answers[SEND] = verdict()
    await expect_error(ErrorCode.CALLBACK_FAILED, alice.send_text("x", to_user_id="bob"))
    receiver.answers.pop(SEND)
    assert (await alice.send_text("fine", to_user_id="bob")).seq == 1


async def test_content_type_filter(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    receiver.answers[SEND] = verdict(allow=False, code=1, message="no pictures")
    node = await hooked(start_node, receiver.url, {SEND: {"content_types": [102]}})
    alice, _ = await pair(node, connect)
    assert (await alice.send_text("text passes unasked", to_user_id="bob")).seq == 1
    picture = m.PictureContent(url="https://img.example/1.png", width=1, height=1, size=1)
    await expect_error(ErrorCode.REFUSED_BY_APP, alice.send_message(picture, to_user_id="bob"))
    assert [b["message"]["content"]["type"] for b in receiver.bodies(SEND)] == [102]


# -- after-callbacks ------------------------------------------------------------------


async def test_after_send_is_retried_after_a_500_and_handled_once_per_id(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    failures = {"left": 2}

    async def flaky(_: Received) -> Response:
        if failures["left"]:
            failures["left"] -= 1
            return PlainTextResponse("busy", status_code=500)
        return JSONResponse({})

    receiver.answers[SENT] = flaky
    node = await hooked(start_node, receiver.url, {SENT: {}})
    alice, _ = await pair(node, connect)
    sent = await alice.send_text("once", to_user_id="bob")
    await eventually(lambda: len(receiver.handled) == 1)
    attempts = receiver.of(SENT)
    assert len(attempts) == 3
    assert len({a.call_id for a in attempts}) == 1
    assert all(a.signature_ok for a in attempts)
    assert all(a.body == attempts[0].body for a in attempts)
    message = attempts[0].body["message"]
    assert (message["seq"], message["server_msg_id"]) == (sent.seq, sent.server_msg_id)
    assert calls(node, SENT, "bad_status") == 2
    # The receiver records its answer before the node has read it and counted it.
    await eventually(lambda: calls(node, SENT, "ok") == 1)


async def test_after_send_keeps_each_conversations_order(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    """Answers take varying time and some fail once; each conversation's calls still
    arrive (and are handled) in seq order."""
    receiver = await start_receiver(nursery)
    failed: set[str] = set()

    async def uneven(call: Received) -> Response:
        seq = call.body["message"]["seq"]
        await trio.sleep(0.002 * (seq % 5))
        if seq % 4 == 0 and call.call_id not in failed:
            failed.add(call.call_id)
            return PlainTextResponse("later", status_code=503)
        return JSONResponse({})

    receiver.answers[SENT] = uneven
    node = await hooked(start_node, receiver.url, {SENT: {}}, workers=2)
    alice, bob = await pair(node, connect)
    carol = await connect(node.url)
    await signed_in(carol, "carol")
    count = 12
    async with trio.open_nursery() as senders:

        async def send_all(client: Any, peer: str) -> None:
            for n in range(count):
                await client.send_text(f"{n}", to_user_id=peer)

        senders.start_soon(send_all, alice, "bob")
        senders.start_soon(send_all, carol, "bob")
        senders.start_soon(send_all, bob, "carol")
    await eventually(lambda: len(receiver.handled) == 3 * count)
    by_conversation: dict[str, list[int]] = {}
    for call in sorted(receiver.handled.values(), key=lambda c: c.at):
        message = call.body["message"]
        by_conversation.setdefault(message["conversation_id"], []).append(message["seq"])
    assert by_conversation[single_conversation_id("alice", "bob")] == list(range(1, count + 1))
    assert by_conversation[single_conversation_id("bob", "carol")] == list(range(1, 2 * count + 1))


async def test_full_queue_drops_and_never_delays_the_action(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    release = trio.Event()

    async def stuck(_: Received) -> Response:
        await release.wait()
        return JSONResponse({})

    receiver.answers[SENT] = stuck
    node = await hooked(start_node, receiver.url, {SENT: {"timeout": 30}}, workers=1, queue_size=2)
    alice, _ = await pair(node, connect)
    with trio.fail_after(10):
        for n in range(8):
            assert (await alice.send_text(f"{n}", to_user_id="bob")).seq == n + 1
    dropped = node.registry.get_sample_value(
        "parley_webhook_dropped_total", {"callback": SENT, "reason": "queue_full"}
    )
    # One call is being made, two wait in the queue: the other five were dropped.
    assert dropped == 5
    assert node.registry.get_sample_value("parley_webhook_queue_length") == 2
    release.set()
    await eventually(lambda: len(receiver.handled) == 3)


# -- every family: bodies -----------------------------------------------------------


def without_envelope(body: dict[str, Any]) -> dict[str, Any]:
    envelope = {"callback", "call_id", "node_id", "time"}
    assert envelope <= body.keys()
    return {k: v for k, v in body.items() if k not in envelope}


async def test_user_callbacks_carry_no_password(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    names = ["before_register", "after_register", "before_set_profile", "after_set_profile"]
    node = await hooked(start_node, receiver.url, {name: {} for name in names})
    client = await connect(node.url)
    await client.register("dora", "secret-password-9", nickname="Dora")
    await client.login("dora", "secret-password-9", Platform.IOS)
    await client.set_profile(nickname="D.")
    await eventually(lambda: receiver.of("after_set_profile"))
    [before] = receiver.bodies("before_register")
    assert without_envelope(before) == {
        "op_user_id": None,
        "user_id": "dora",
        "request": {
            "t": "register",
            "user_id": "dora",
            "nickname": "Dora",
            "face_url": "",
            "ex": "",
        },
    }
    [after] = receiver.bodies("after_register")
    assert after["user"]["user_id"] == "dora" and after["user"]["nickname"] == "Dora"
    [profile] = receiver.bodies("after_set_profile")
    assert profile["user"]["nickname"] == "D." and profile["op_user_id"] == "dora"
    for call in receiver.received:
        raw = json.dumps(call.body)
        assert "secret-password-9" not in raw and "password" not in raw and "token" not in raw


async def test_refused_registration_creates_no_account(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    receiver.answers["before_register"] = verdict(allow=False, code=7, message="invite only")
    node = await hooked(start_node, receiver.url, {"before_register": {}})
    client = await connect(node.url)
    error = await expect_error(ErrorCode.REFUSED_BY_APP, client.register("eve", "password-1"))
    assert error.app_message == "invite only"
    await expect_error(ErrorCode.BAD_CREDENTIALS, client.login("eve", "password-1"))


async def test_friend_and_blacklist_callbacks(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    names = [
        "before_apply_friend",
        "after_apply_friend",
        "after_respond_friend_application",
        "after_delete_friend",
        "before_add_black",
        "after_add_black",
        "after_remove_black",
    ]
    receiver.answers["before_add_black"] = verdict(allow=False, code=3, message="not today")
    node = await hooked(start_node, receiver.url, {name: {} for name in names})
    alice, bob = await pair(node, connect)
    await alice.apply_friend("bob", "hi, it's alice")
    await bob.respond_friend_application("alice", True, "welcome")
    await alice.delete_friend("bob")
    await expect_error(ErrorCode.REFUSED_BY_APP, alice.add_black("bob"))
    assert (await alice.get_blacks()).total == 0
    receiver.answers.pop("before_add_black")
    await alice.add_black("bob")
    await alice.remove_black("bob")
    await eventually(lambda: receiver.of("after_remove_black"))
    [apply] = receiver.bodies("before_apply_friend")
    assert without_envelope(apply) == {
        "op_user_id": "alice",
        "user_id": "alice",
        "request": {"t": "apply_friend", "to_user_id": "bob", "message": "hi, it's alice"},
    }
    [applied] = receiver.bodies("after_apply_friend")
    [note] = applied["notifications"]
    assert note["type"] == 1203
    assert note["detail"]["application"]["to_user_id"] == "bob"
    [responded] = receiver.bodies("after_respond_friend_application")
    assert responded["request"]["accept"] is True and responded["op_user_id"] == "bob"
    assert [n["type"] for n in responded["notifications"]] == [1204, 1204, 1201]
    [deleted] = receiver.bodies("after_delete_friend")
    assert deleted["request"]["friend_id"] == "bob"
    assert len(receiver.bodies("before_add_black")) == 2
    [blocked] = receiver.bodies("after_add_black")
    assert blocked["notifications"][0]["detail"]["black"]["user_id"] == "bob"
    assert receiver.bodies("after_remove_black")[0]["request"]["user_id"] == "bob"


async def test_group_callbacks(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    names = [
        "before_create_group",
        "after_create_group",
        "before_kick_group_members",
        "after_mute_group_member",
        "after_send_group_message",
        "before_dismiss_group",
    ]
    receiver.answers["before_kick_group_members"] = verdict(
        allow=False, code=42, message="bob stays"
    )
    node = await hooked(start_node, receiver.url, {name: {} for name in names})
    alice, _ = await pair(node, connect)
    group = await alice.create_group("crew", group_id="crew1", member_user_ids=["bob"])
    await expect_error(ErrorCode.REFUSED_BY_APP, alice.kick_group_members("crew1", ["bob"]))
    members = await alice.get_group_member_ids("crew1")
    assert members.user_ids == ["alice", "bob"]
    await alice.mute_group_member("crew1", "bob", 60)
    sent = await alice.send_text("hello crew", group_id="crew1")
    await alice.dismiss_group("crew1")
    await eventually(lambda: receiver.of("after_send_group_message"))
    [create] = receiver.bodies("before_create_group")
    assert create["group_id"] == "crew1" and create["op_user_id"] == "alice"
    assert create["request"]["member_user_ids"] == ["bob"]
    [created] = receiver.bodies("after_create_group")
    assert created["notifications"][0]["type"] == 1501
    assert created["notifications"][0]["detail"]["group"]["group_id"] == group.group_id
    [muted] = receiver.bodies("after_mute_group_member")
    assert muted["request"] == {
        "t": "mute_group_member",
        "group_id": "crew1",
        "user_id": "bob",
        "seconds": 60,
    }
    assert muted["notifications"][0]["detail"]["members"][0]["muted_until"] > 0
    [message] = receiver.bodies("after_send_group_message")
    assert message["message"]["seq"] == sent.seq
    assert message["message"]["conversation_id"] == group_conversation_id("crew1")
    assert receiver.bodies("before_dismiss_group")[0]["request"] == {
        "t": "dismiss_group",
        "group_id": "crew1",
    }


async def test_revoke_callbacks(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    names = ["before_revoke_message", "after_revoke_message"]
    node = await hooked(start_node, receiver.url, {name: {} for name in names})
    alice, _ = await pair(node, connect)
    first = await alice.send_text("oops", to_user_id="bob")
    second = await alice.send_text("keep", to_user_id="bob")
    receiver.answers["before_revoke_message"] = verdict(allow=False, code=9, message="kept")
    await expect_error(
        ErrorCode.REFUSED_BY_APP, alice.revoke_message(second.conversation_id, second.seq)
    )
    receiver.answers.pop("before_revoke_message")
    notice = await alice.revoke_message(first.conversation_id, first.seq)
    await eventually(lambda: receiver.of("after_revoke_message"))
    asked = receiver.bodies("before_revoke_message")
    assert [b["message"]["seq"] for b in asked] == [second.seq, first.seq]
    assert asked[1]["message"]["content"] == {"type": 101, "text": "oops"}
    [after] = receiver.bodies("after_revoke_message")
    assert after["notice"]["seq"] == notice.seq
    assert after["notice"]["content"]["revoked_seq"] == first.seq
    [stored] = (await alice.pull_messages(second.conversation_id, second.seq, second.seq)).items
    assert stored.content == m.TextContent(text="keep")


async def test_session_callbacks(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    names = ["after_user_online", "after_user_offline", "after_user_kicked"]
    node = await hooked(start_node, receiver.url, {name: {} for name in names})
    first = await connect(node.url)
    await signed_in(first, "frank", Platform.IOS)
    second = await connect(node.url)
    await second.login("frank", "password-1", Platform.IOS)  # one per platform: kicks first
    await eventually(lambda: receiver.of("after_user_offline"))
    online = receiver.bodies("after_user_online")
    assert [b["platform"] for b in online] == [Platform.IOS, Platform.IOS]
    assert all(b["user_id"] == "frank" and "token" not in json.dumps(b) for b in online)
    [kicked] = receiver.bodies("after_user_kicked")
    assert kicked["session_id"] == online[0]["session_id"]
    assert kicked["by_session_id"] == online[1]["session_id"]
    assert kicked["close_code"] == 4500
    [offline] = receiver.bodies("after_user_offline")
    assert offline["session_id"] == online[0]["session_id"]
    assert all(call.signature_ok for call in receiver.received)


async def test_webhooks_off_make_no_calls(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    node = await start_node(webhooks={"secret": SECRET, "default": {"url": receiver.url}})
    alice, bob = await pair(node, connect)
    await alice.send_text("plain", to_user_id="bob")
    await bob.next_event(m.NewMessage)
    await trio.sleep(0.2)
    assert receiver.received == []
    assert node.registry.get_sample_value("parley_webhook_queue_length") == 0


async def test_a_retried_send_returns_the_first_result_without_asking(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    node = await hooked(start_node, receiver.url, {SEND: {}})
    alice, _ = await pair(node, connect)
    text = m.TextContent(text="once")
    first = await alice.send_message(text, to_user_id="bob", client_msg_id="retry-1")
    receiver.answers[SEND] = verdict(allow=False, code=1, message="no more")
    again = await alice.send_message(text, to_user_id="bob", client_msg_id="retry-1")
    assert (again.seq, again.server_msg_id) == (first.seq, first.server_msg_id)
    assert len(receiver.of(SEND)) == 1


async def test_before_calls_in_flight_are_bounded(
    nursery: trio.Nursery, start_node: StartNode, connect: Connect
) -> None:
    receiver = await start_receiver(nursery)
    busy = {"now": 0, "most": 0}

    async def slow_allow(_: Received) -> Response:
        busy["now"] += 1
        busy["most"] = max(busy["most"], busy["now"])
        await trio.sleep(0.1)
        busy["now"] -= 1
        return JSONResponse({"allow": True})

    receiver.answers[SEND] = slow_allow
    node = await hooked(start_node, receiver.url, {SEND: {"timeout": 10}}, max_in_flight=1)
    await signed_in(await connect(node.url), "dan")
    senders = []
    for name in ("ann", "ben", "cat"):
        client = await connect(node.url)
        await signed_in(client, name)
        senders.append(client)
    async with trio.open_nursery() as sending:
        for client in senders:
            sending.start_soon(partial(client.send_text, "hi", to_user_id="dan"))
    assert len(receiver.of(SEND)) == 3
    assert busy["most"] == 1
