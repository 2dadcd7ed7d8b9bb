"""The server API (``/api/v1``) through real HTTP against a running node: every
route's success and refusals, bearer authentication and rotation, tokens that sign in
over the WebSocket, forced logouts of live sessions, and sends that arrive as pushes
with the conversation's seqs. Bad input gets a typed JSON error and changes nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import redis

import server
from client import ParleyError, Platform
from protocol import messages as m
from tests.conftest import StartNode
from tests.rawws import RawClient
from tests.support import Connect, stored_state

SECRET = "the-current-secret-0123456789"
OLD_SECRET = "the-previous-secret-9876543210"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
async def api_node(start_node: StartNode) -> server.RunningNode:
    return await start_node(http={"enabled": True, "api_secrets": [SECRET, OLD_SECRET]})


@pytest.fixture
async def api(api_node: server.RunningNode) -> AsyncIterator[httpx.AsyncClient]:
    assert api_node.http_url is not None
    async with httpx.AsyncClient(
        base_url=f"{api_node.http_url}/api/v1", headers=AUTH, timeout=30
    ) as client:
        yield client


def assert_error(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "name", "message"}
    assert body["name"] == name
    assert body["message"]
    return body


async def create(api: httpx.AsyncClient, user_id: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/users", json={"user_id": user_id, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def token_for(api: httpx.AsyncClient, user_id: str, platform: int = Platform.IOS) -> str:
    response = await api.post(f"/users/{user_id}/tokens", json={"platform": platform})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def text(value: str) -> dict[str, Any]:
    return {"type": 101, "text": value}


class TestAuthentication:
    async def test_a_request_without_a_secret_gets_401(self, api_node: server.RunningNode) -> None:
        async with httpx.AsyncClient(base_url=f"{api_node.http_url}/api/v1") as http:
            answer = await http.get("/users/ada")
            body = assert_error(answer, 401, "NOT_AUTHENTICATED")
            assert body["code"] == 1004
            assert answer.headers["www-authenticate"].startswith("Bearer")
            other_scheme = await http.get("/users/ada", headers={"Authorization": SECRET})
            assert_error(other_scheme, 401, "NOT_AUTHENTICATED")

    async def test_a_wrong_secret_gets_401_and_changes_nothing(
        self, api_node: server.RunningNode, redis_client: redis.Redis, prefix: str
    ) -> None:
        before = stored_state(redis_client, prefix)
        async with httpx.AsyncClient(base_url=f"{api_node.http_url}/api/v1") as http:
            for wrong in (SECRET[:-1], SECRET + "x", "x", "Bearer"):
                answer = await http.post(
                    "/users",
                    json={"user_id": "mallory"},
                    headers={"Authorization": f"Bearer {wrong}"},
                )
                assert_error(answer, 401, "NOT_AUTHENTICATED")
        assert stored_state(redis_client, prefix) == before

    async def test_during_a_rotation_old_and_new_secrets_both_work(
        self, api_node: server.RunningNode, start_node: StartNode
    ) -> None:
        async with httpx.AsyncClient(base_url=f"{api_node.http_url}/api/v1") as http:
            for secret in (SECRET, OLD_SECRET):
                answer = await http.post(
                    "/users",
                    json={"user_id": f"u{len(secret)}"},
                    headers={"Authorization": f"Bearer {secret}"},
                )
                assert answer.status_code == 201, answer.text
        # After the rotation the old secret is gone from the list, and refused.
        rotated = await start_node(http={"enabled": True, "api_secrets": [SECRET]})
        async with httpx.AsyncClient(base_url=f"{rotated.http_url}/api/v1") as http:
            old = await http.get("/users/u29", headers={"Authorization": f"Bearer {OLD_SECRET}"})
            assert_error(old, 401, "NOT_AUTHENTICATED")
            new = await http.get("/users/u29", headers=AUTH)
            assert new.status_code == 200

    async def test_without_secrets_the_api_refuses_everything(self, start_node: StartNode) -> None:
        node = await start_node(http={"enabled": True})
        async with httpx.AsyncClient(base_url=f"{node.http_url}/api/v1", headers=AUTH) as http:
            body = assert_error(await http.get("/users/ada"), 401, "NOT_AUTHENTICATED")
            assert "http.api_secrets" in body["message"]

    async def test_an_unknown_route_is_a_typed_404(self, api: httpx.AsyncClient) -> None:
        body = assert_error(await api.get("/nothing/here"), 404, "UNKNOWN_COMMAND")
        assert body["code"] == 1001

    async def test_a_websocket_client_cannot_send_the_apis_commands(
        self, api_node: server.RunningNode
    ) -> None:
        raw = await RawClient.open(api_node.url)
        try:
            await raw.send(
                msgspec.msgpack.encode({"t": "admin_issue_token", "rid": 7, "platform": 1})
            )
            error = msgspec.msgpack.decode(await raw.next_message())
            assert error["t"] == "error" and error["rid"] == 7
            assert error["name"] == "UNKNOWN_COMMAND"
        finally:
            await raw.aclose()


class TestUsers:
    async def test_create_get_and_update_a_user(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        created = await create(api, "ada", nickname="Ada", face_url="https://x/a.png")
        assert created["user_id"] == "ada" and created["nickname"] == "Ada"
        assert created["version"] == 1
        got = await api.get("/users/ada")
        assert got.status_code == 200 and got.json() == created
        device = await connect(api_node.url)
        await device.login_with_token(await token_for(api, "ada"))
        changed = await api.patch("/users/ada", json={"nickname": "Ada L."})
        assert changed.status_code == 200, changed.text
        assert changed.json()["nickname"] == "Ada L."
        assert changed.json()["face_url"] == "https://x/a.png"
        pushed = await device.next_event(m.SelfUpdated)
        assert pushed.profile.nickname == "Ada L."

    async def test_a_user_made_with_a_password_can_log_in(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        await create(api, "bea", password="password-1")
        await create(api, "cy")
        client = await connect(api_node.url)
        reply = await client.login("bea", "password-1", Platform.LINUX)
        assert reply.user_id == "bea"
        other = await connect(api_node.url)
        with pytest.raises(ParleyError) as caught:
            await other.login("cy", "any-password", Platform.LINUX)
        assert caught.value.name == "BAD_CREDENTIALS"  # no password: tokens only

    async def test_refusals_change_nothing(
        self, api: httpx.AsyncClient, redis_client: redis.Redis, prefix: str
    ) -> None:
        await create(api, "ada")
        before = stored_state(redis_client, prefix)
        assert_error(await api.post("/users", json={"user_id": "ada"}), 409, "USER_EXISTS")
        for bad in (
            {"user_id": "has_underscore"},
            {"user_id": ""},
            {"user_id": "ok", "nickname": "n" * 65},
            {"user_id": "ok", "password": "short"},
            {"user_id": "ok", "unknown_field": 1},
            {"nickname": "no id"},
            ["not", "an", "object"],
        ):
            assert_error(await api.post("/users", json=bad), 422, "INVALID_FIELD")
        not_json = await api.post("/users", content=b"{not json", headers=AUTH)
        assert_error(not_json, 400, "BAD_FRAME")
        too_big = await api.post("/users", content=b" " * (2 << 20))
        assert_error(too_big, 400, "BAD_FRAME")
        assert_error(await api.patch("/users/ada", json={"nickname": 5}), 422, "INVALID_FIELD")
        assert_error(
            await api.patch("/users/nobody", json={"nickname": "N"}), 404, "USER_NOT_FOUND"
        )
        assert_error(await api.get("/users/nobody"), 404, "USER_NOT_FOUND")
        assert_error(await api.get("/users/bad_id"), 422, "INVALID_FIELD")
        assert stored_state(redis_client, prefix) == before

    async def test_import_creates_every_new_user_and_lists_the_others(
        self, api: httpx.AsyncClient, redis_client: redis.Redis, prefix: str
    ) -> None:
        await create(api, "taken")
        users = [{"user_id": f"imp{n}", "nickname": f"I{n}"} for n in range(30)]
        users.insert(5, {"user_id": "taken"})
        answer = await api.post("/users/import", json={"users": users})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["created"] == [f"imp{n}" for n in range(30)]
        assert [(f["id"], f["name"], f["code"]) for f in result["failed"]] == [
            ("taken", "USER_EXISTS", 2000)
        ]
        assert (await api.get("/users/imp29")).json()["nickname"] == "I29"
        before = stored_state(redis_client, prefix)
        twice = [{"user_id": "new1"}, {"user_id": "new1"}]
        assert_error(await api.post("/users/import", json={"users": twice}), 422, "INVALID_FIELD")
        one_bad = [{"user_id": "new2"}, {"user_id": "bad_id"}]
        assert_error(await api.post("/users/import", json={"users": one_bad}), 422, "INVALID_FIELD")
        assert_error(await api.post("/users/import", json={"users": []}), 422, "INVALID_FIELD")
        assert stored_state(redis_client, prefix) == before

    async def test_online_status(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        for user_id in ("ada", "bob"):
            await create(api, user_id)
        device = await connect(api_node.url)
        await device.login_with_token(await token_for(api, "ada", Platform.ANDROID))
        answer = await api.post("/users/online_status", json={"user_ids": ["ada", "bob", "zed"]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "statuses": [
                {"user_id": "ada", "platforms": [int(Platform.ANDROID)]},
                {"user_id": "bob", "platforms": []},
                {"user_id": "zed", "platforms": []},
            ]
        }
        empty = await api.post("/users/online_status", json={"user_ids": []})
        assert_error(empty, 422, "INVALID_FIELD")


class TestTokens:
    async def test_an_issued_token_signs_in_over_the_websocket(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        await create(api, "ada", nickname="Ada")
        issued = await api.post("/users/ada/tokens", json={"platform": int(Platform.WEB)})
        assert issued.status_code == 201
        body = issued.json()
        assert body["user_id"] == "ada" and body["platform"] == int(Platform.WEB)
        assert body["expires_at"] > 0
        client = await connect(api_node.url)
        reply = await client.login_with_token(body["token"])
        assert reply.user_id == "ada" and reply.platform == Platform.WEB
        assert reply.profile.nickname == "Ada"
        assert (await client.get_self()).user_id == "ada"

    async def test_token_refusals(
        self, api: httpx.AsyncClient, redis_client: redis.Redis, prefix: str
    ) -> None:
        await create(api, "ada")
        before = stored_state(redis_client, prefix)
        missing = await api.post("/users/nobody/tokens", json={"platform": 1})
        assert_error(missing, 404, "USER_NOT_FOUND")
        for bad in ({"platform": 10}, {"platform": "ios"}, {}):
            assert_error(await api.post("/users/ada/tokens", json=bad), 422, "INVALID_FIELD")
        assert_error(await api.delete("/users/nobody/tokens"), 404, "USER_NOT_FOUND")
        assert_error(await api.post("/users/nobody/logout", json={}), 404, "USER_NOT_FOUND")
        bad_logout = await api.post("/users/ada/logout", json={"platform": 0})
        assert_error(bad_logout, 422, "INVALID_FIELD")
        assert stored_state(redis_client, prefix) == before

    async def test_revoking_closes_sessions_and_voids_the_tokens(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        await create(api, "ada")
        token = await token_for(api, "ada")
        client = await connect(api_node.url, reconnect=False)
        await client.login_with_token(token)
        unused = await token_for(api, "ada", Platform.MACOS)
        answer = await api.delete("/users/ada/tokens")
        assert answer.status_code == 200 and answer.json() == {"sessions_closed": 1}
        kicked = await client.next_event(m.Kicked)
        assert kicked.close_code == 4501
        await client.wait_closed()
        assert client.close_code == 4501
        for old in (token, unused):
            probe = await connect(api_node.url)
            with pytest.raises(ParleyError) as caught:
                await probe.login_with_token(old)
            assert caught.value.name == "TOKEN_REVOKED"


class TestForceLogout:
    async def test_force_logout_closes_every_session_with_4504(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        await create(api, "ada")
        phone = await connect(api_node.url, reconnect=False)
        await phone.login_with_token(await token_for(api, "ada", Platform.IOS))
        desktop = await connect(api_node.url, reconnect=False)
        token = await token_for(api, "ada", Platform.WINDOWS)
        await desktop.login_with_token(token)
        answer = await api.post("/users/ada/logout", json={})
        assert answer.status_code == 200 and answer.json() == {"sessions_closed": 2}
        for device in (phone, desktop):
            kicked = await device.next_event(m.Kicked)
            assert kicked.close_code == 4504
            await device.wait_closed()
            assert device.close_code == 4504
        probe = await connect(api_node.url)
        with pytest.raises(ParleyError) as caught:
            await probe.login_with_token(token)
        assert caught.value.name == "TOKEN_REVOKED"
        sessions = await api.get("/users/ada/sessions")
        assert sessions.json()["sessions"] == []

    async def test_force_logout_of_one_platform_leaves_the_others(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        await create(api, "ada")
        phone = await connect(api_node.url, reconnect=False)
        await phone.login_with_token(await token_for(api, "ada", Platform.IOS))
        desktop = await connect(api_node.url, reconnect=False)
        await desktop.login_with_token(await token_for(api, "ada", Platform.WINDOWS))
        answer = await api.post("/users/ada/logout", json={"platform": int(Platform.IOS)})
        assert answer.json() == {"sessions_closed": 1}
        await phone.wait_closed()
        assert phone.close_code == 4504
        assert (await desktop.get_self()).user_id == "ada"
        assert desktop.close_code is None

    async def test_force_logout_reaches_a_session_on_another_node(
        self, api: httpx.AsyncClient, start_node: StartNode, connect: Connect
    ) -> None:
        other = await start_node()
        await create(api, "ada")
        device = await connect(other.url, reconnect=False)
        await device.login_with_token(await token_for(api, "ada"))
        listed = (await api.get("/users/ada/sessions")).json()["sessions"]
        assert [s["node_id"] for s in listed] == [other.node_id]
        answer = await api.post("/users/ada/logout", json={})
        assert answer.json() == {"sessions_closed": 1}
        await device.wait_closed()
        assert device.close_code == 4504


class TestSessions:
    async def test_list_a_users_sessions(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        await create(api, "ada")
        phone = await connect(api_node.url)
        await phone.login_with_token(await token_for(api, "ada", Platform.IOS))
        web = await connect(api_node.url)
        await web.login_with_token(await token_for(api, "ada", Platform.WEB))
        answer = await api.get("/users/ada/sessions")
        assert answer.status_code == 200
        body = answer.json()
        assert body["user_id"] == "ada"
        sessions = body["sessions"]
        assert sorted(s["platform"] for s in sessions) == sorted([Platform.IOS, Platform.WEB])
        assert {s["node_id"] for s in sessions} == {api_node.node_id}
        now_ms = time.time() * 1000
        assert all(now_ms - 60_000 < s["since"] <= now_ms for s in sessions)
        assert len({s["session_id"] for s in sessions}) == 2
        assert_error(await api.get("/users/nobody/sessions"), 404, "USER_NOT_FOUND")


class TestMessages:
    async def test_a_send_arrives_as_a_push_with_the_conversations_seq(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        for user_id in ("ada", "bob"):
            await create(api, user_id)
        bob = await connect(api_node.url)
        await bob.login_with_token(await token_for(api, "bob"))
        ada = await connect(api_node.url)
        await ada.login_with_token(await token_for(api, "ada"))
        first = await ada.send_text("hello from the app", to_user_id="bob")
        sent = await api.post(
            "/messages", json={"send_id": "ada", "to_user_id": "bob", "content": text("hi")}
        )
        assert sent.status_code == 200, sent.text
        body = sent.json()
        assert body["conversation_id"] == "si_ada_bob"
        assert body["seq"] == first.seq + 1
        for device in (bob, ada):  # the recipient, and the sender's own device
            pushed = await device.next_event(m.NewMessage)
            while pushed.message.seq != body["seq"]:
                pushed = await device.next_event(m.NewMessage)
            assert pushed.message.send_id == "ada"
            assert pushed.message.content == m.TextContent(text="hi")
            assert pushed.message.server_msg_id == body["server_msg_id"]
        conversations = await bob.get_conversations()
        listed = {c.info.conversation_id: c for c in conversations.items}
        assert listed["si_ada_bob"].max_seq == body["seq"]
        assert listed["si_ada_bob"].unread_count == 2
        latest = listed["si_ada_bob"].latest_message
        assert latest is not None and latest.seq == body["seq"]

    async def test_a_retried_send_is_stored_once(self, api: httpx.AsyncClient) -> None:
        for user_id in ("ada", "bob"):
            await create(api, user_id)
        message = {"send_id": "ada", "to_user_id": "bob", "content": text("once"),
                   "client_msg_id": "backend-1"}  # fmt: skip
        first = (await api.post("/messages", json=message)).json()
        again = (await api.post("/messages", json=message)).json()
        assert first == again and first["client_msg_id"] == "backend-1"

    async def test_a_system_account_sends_to_a_group(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        for user_id in ("system", "ada", "bob"):
            await create(api, user_id)
        group = await api.post(
            "/groups",
            json={"owner_user_id": "ada", "name": "Team", "group_id": "team",
                  "member_user_ids": ["bob", "system"], "join_policy": "direct"},
        )  # fmt: skip
        assert group.status_code == 201, group.text
        bob = await connect(api_node.url)
        await bob.login_with_token(await token_for(api, "bob"))
        sent = await api.post(
            "/messages",
            json={"send_id": "system", "group_id": "team", "content": text("maintenance")},
        )
        assert sent.status_code == 200, sent.text
        pushed = await bob.next_event(m.NewMessage)
        assert pushed.message.conversation_id == "sg_team"
        assert pushed.message.seq == sent.json()["seq"]
        assert pushed.message.send_id == "system"
        outsider = await api.post(
            "/messages", json={"send_id": "nobody", "group_id": "team", "content": text("x")}
        )
        assert_error(outsider, 404, "USER_NOT_FOUND")

    async def test_send_refusals_change_nothing(
        self, api: httpx.AsyncClient, redis_client: redis.Redis, prefix: str
    ) -> None:
        for user_id in ("ada", "bob", "cy"):
            await create(api, user_id)
        await api.post("/groups", json={"owner_user_id": "ada", "name": "G", "group_id": "g1"})
        before = stored_state(redis_client, prefix)
        cases = [
            ({"send_id": "ada", "content": text("x")}, 422, "BAD_RECIPIENT"),
            ({"send_id": "ada", "to_user_id": "bob", "group_id": "g1", "content": text("x")},
             422, "BAD_RECIPIENT"),
            ({"send_id": "nobody", "to_user_id": "bob", "content": text("x")},
             404, "USER_NOT_FOUND"),
            ({"send_id": "ada", "to_user_id": "nobody", "content": text("x")},
             404, "USER_NOT_FOUND"),
            ({"send_id": "ada", "to_user_id": "bob", "content": {"type": 101, "text": ""}},
             422, "INVALID_FIELD"),
            ({"send_id": "ada", "to_user_id": "bob", "content": {"type": 999}},
             422, "INVALID_FIELD"),
            ({"send_id": "ada", "to_user_id": "bob",
              "content": {"type": 111, "revoked_seq": 1, "revoker_user_id": "ada",
                          "revoke_time": 1, "original_content_type": 101}},
             422, "CONTENT_NOT_ALLOWED"),
            ({"send_id": "cy", "group_id": "g1", "content": text("x")},
             403, "NOT_GROUP_MEMBER"),
            ({"send_id": "ada", "group_id": "nogroup", "content": text("x")},
             404, "GROUP_NOT_FOUND"),
        ]  # fmt: skip
        for message, status, name in cases:
            assert_error(await api.post("/messages", json=message), status, name)
        assert stored_state(redis_client, prefix) == before

    async def test_a_batch_send_reaches_each_recipient(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect,
        redis_client: redis.Redis, prefix: str,
    ) -> None:  # fmt: skip
        recipients = [f"r{n}" for n in range(12)]
        for user_id in ("notice", *recipients):
            await create(api, user_id)
        devices = []
        for user_id in recipients[:3]:
            device = await connect(api_node.url)
            await device.login_with_token(await token_for(api, user_id))
            devices.append(device)
        answer = await api.post(
            "/messages/batch",
            json={"send_id": "notice", "to_user_ids": [*recipients, "ghost"],
                  "content": text("news")},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert [s["to_user_id"] for s in result["sent"]] == recipients
        assert all(s["seq"] == 1 for s in result["sent"])
        assert [(f["id"], f["name"]) for f in result["failed"]] == [("ghost", "USER_NOT_FOUND")]
        for device in devices:
            pushed = await device.next_event(m.NewMessage)
            assert pushed.message.send_id == "notice"
            assert pushed.message.content == m.TextContent(text="news")
        before = stored_state(redis_client, prefix)
        twice = {"send_id": "notice", "to_user_ids": ["r1", "r1"], "content": text("x")}
        assert_error(await api.post("/messages/batch", json=twice), 422, "INVALID_FIELD")
        ghost_sender = {"send_id": "ghost", "to_user_ids": ["r1"], "content": text("x")}
        assert_error(await api.post("/messages/batch", json=ghost_sender), 404, "USER_NOT_FOUND")
        assert stored_state(redis_client, prefix) == before


class TestGroups:
    async def test_create_add_remove_and_dismiss(
        self, api: httpx.AsyncClient, api_node: server.RunningNode, connect: Connect
    ) -> None:
        for user_id in ("ada", "bob", "cy", "dan"):
            await create(api, user_id)
        created = await api.post(
            "/groups",
            json={"owner_user_id": "ada", "name": "Club", "member_user_ids": ["bob"],
                  "admin_user_ids": ["cy"]},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        info = created.json()
        group_id = info["group_id"]
        assert info["owner_user_id"] == "ada" and info["member_count"] == 3
        dan = await connect(api_node.url)
        await dan.login_with_token(await token_for(api, "dan"))
        added = await api.post(f"/groups/{group_id}/members", json={"user_ids": ["dan"]})
        assert added.status_code == 200, added.text
        assert added.json() == {"group_id": group_id, "joined": ["dan"]}
        assert group_id in (await dan.get_joined_group_ids()).group_ids
        removed = await api.post(f"/groups/{group_id}/members/remove", json={"user_ids": ["bob"]})
        assert removed.status_code == 200 and removed.json() == {"ok": True}
        members = await dan.get_group_member_ids(group_id)
        assert sorted(members.user_ids) == ["ada", "cy", "dan"]
        dismissed = await api.delete(f"/groups/{group_id}")
        assert dismissed.status_code == 200 and dismissed.json() == {"ok": True}
        assert_error(await api.delete(f"/groups/{group_id}"), 410, "GROUP_DISMISSED")

    async def test_group_refusals_change_nothing(
        self, api: httpx.AsyncClient, redis_client: redis.Redis, prefix: str
    ) -> None:
        for user_id in ("ada", "bob"):
            await create(api, user_id)
        made = await api.post(
            "/groups",
            json={"owner_user_id": "ada", "name": "G", "group_id": "g1",
                  "member_user_ids": ["bob"]},
        )  # fmt: skip
        assert made.status_code == 201
        before = stored_state(redis_client, prefix)
        cases = [
            (api.post("/groups", json={"owner_user_id": "ada", "name": "G", "group_id": "g1"}),
             409, "GROUP_EXISTS"),
            (api.post("/groups", json={"owner_user_id": "nobody", "name": "G"}),
             404, "USER_NOT_FOUND"),
            (api.post("/groups", json={"owner_user_id": "ada", "name": ""}),
             422, "INVALID_FIELD"),
            (api.post("/groups", json={"owner_user_id": "ada", "name": "G",
                                       "member_user_ids": ["ghost"]}),
             404, "USER_NOT_FOUND"),
            (api.post("/groups/g1/members", json={"user_ids": ["bob"]}), 409, "ALREADY_MEMBER"),
            (api.post("/groups/g1/members", json={"user_ids": ["ghost"]}),
             404, "USER_NOT_FOUND"),
            (api.post("/groups/g1/members", json={"user_ids": []}), 422, "INVALID_FIELD"),
            (api.post("/groups/nope/members", json={"user_ids": ["bob"]}),
             404, "GROUP_NOT_FOUND"),
            (api.post("/groups/g1/members/remove", json={"user_ids": ["ada"]}),
             422, "INVALID_FIELD"),  # the owner cannot be removed
            (api.post("/groups/g1/members/remove", json={"user_ids": ["ghost"]}),
             403, "NOT_GROUP_MEMBER"),
            (api.delete("/groups/nope"), 404, "GROUP_NOT_FOUND"),
            (api.delete("/groups/bad%20id"), 422, "INVALID_FIELD"),
        ]  # fmt: skip
        for request, status, name in cases:
            assert_error(await request, status, name)
        assert stored_state(redis_client, prefix) == before


class TestOpenApi:
    async def test_the_document_covers_every_route_and_schema(self, api: httpx.AsyncClient) -> None:
        from api.routes import TABLE

        answer = await api.get("/openapi.json", headers={"Authorization": ""})
        assert answer.status_code == 200
        document = answer.json()
        assert document["openapi"].startswith("3.")
        schemas = document["components"]["schemas"]
        refs: list[str] = []
        for route in TABLE:
            operation = document["paths"][f"/api/v1{route.path}"][route.method.lower()]
            assert operation["summary"] == route.summary and operation["description"]
            success = operation["responses"][str(route.status)]
            refs.append(success["content"]["application/json"]["schema"]["$ref"])
            assert "401" in operation["responses"]
            if route.body is not None:
                refs.append(
                    operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                )
            for name, _ in route.params:
                assert any(p["name"] == name for p in operation["parameters"])
        for ref in refs:
            assert ref.removeprefix("#/components/schemas/") in schemas
        assert set(schemas["ApiError"]["required"]) == {"code", "name", "message"}
        assert "TextContent" in schemas  # message content is the wire protocol's own
