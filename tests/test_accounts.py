"""Accounts, passwords, tokens and profiles, end to end through the SDK."""

from __future__ import annotations

import pytest
import redis

from client import ConnectionLost, ErrorCode, Platform
from server import RunningNode
from tests.conftest import StartNode
from tests.support import Connect, both_stores, expect_error, signed_in

pytestmark = both_stores


class TestRegister:
    async def test_register_then_login_returns_profile(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await client.register(
            "alice", "password-1", nickname="Alice", face_url="https://x/a.png", ex='{"k":1}'
        )
        reply = await client.login("alice", "password-1", Platform.IOS)
        assert reply.user_id == "alice"
        assert reply.platform == Platform.IOS
        assert reply.profile.nickname == "Alice"
        assert reply.profile.face_url == "https://x/a.png"
        assert reply.profile.ex == '{"k":1}'
        assert reply.profile.version == 1
        assert reply.token

    async def test_duplicate_user_id_is_refused_and_keeps_first_account(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await client.register("bob", "password-1", nickname="First")
        await expect_error(
            ErrorCode.USER_EXISTS, client.register("bob", "password-2", nickname="Second")
        )
        reply = await client.login("bob", "password-1")
        assert reply.profile.nickname == "First"

    async def test_password_is_stored_hashed(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        client = await connect(node.url)
        await client.register("carol", "password-1")
        stored = redis_client.hget(f"{prefix}{{u:carol}}:account", "password_hash")
        assert isinstance(stored, bytes)
        assert stored.startswith(b"$argon2id$")
        assert b"password-1" not in stored


class TestLogin:
    async def test_wrong_password_and_unknown_user_look_the_same(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await client.register("dave", "password-1")
        wrong = await expect_error(ErrorCode.BAD_CREDENTIALS, client.login("dave", "password-2"))
        unknown = await expect_error(
            ErrorCode.BAD_CREDENTIALS, client.login("nobody", "password-1")
        )
        assert wrong.message == unknown.message
        await client.login("dave", "password-1")

    async def test_failed_logins_are_rate_limited_per_user(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(auth={"login_failures_per_user": 3})
        client = await connect(node.url)
        await client.register("erin", "password-1")
        for _ in range(3):
            await expect_error(ErrorCode.BAD_CREDENTIALS, client.login("erin", "wrong-pw"))
        # Even the right password is refused while the window lasts.
        await expect_error(ErrorCode.RATE_LIMITED, client.login("erin", "password-1"))
        # Other users are not affected.
        other = await connect(node.url)
        await signed_in(other, "frank")

    async def test_failed_logins_are_rate_limited_per_address(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(
            auth={"login_failures_per_address": 4, "login_failures_per_user": 100}
        )
        client = await connect(node.url)
        for n in range(5):
            await client.register(f"real{n}", "password-1")
        for n in range(4):
            await expect_error(ErrorCode.BAD_CREDENTIALS, client.login(f"real{n}", "wrong-pw"))
        # The address's counter holds for every existing user id, from any connection.
        again = await connect(node.url)
        refused = await expect_error(ErrorCode.RATE_LIMITED, again.login("real4", "password-1"))
        assert refused.retry_after is not None and 0 < refused.retry_after <= 300

    async def test_second_login_on_a_signed_in_session_is_refused(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await signed_in(client, "gina")
        await expect_error(ErrorCode.ALREADY_AUTHENTICATED, client.login("gina", "password-1"))
        await expect_error(ErrorCode.ALREADY_AUTHENTICATED, client.register("gina2", "password-1"))


class TestTokens:
    async def test_token_login_on_a_new_connection(
        self, node: RunningNode, connect: Connect
    ) -> None:
        first = await connect(node.url)
        token = await signed_in(first, "hank", Platform.IOS)
        second = await connect(node.url)
        reply = await second.login_with_token(token)
        assert reply.user_id == "hank"
        assert reply.platform == Platform.IOS
        assert (await second.get_self()).user_id == "hank"

    async def test_forged_and_garbage_tokens_are_refused(
        self, node: RunningNode, connect: Connect
    ) -> None:
        import jwt

        client = await connect(node.url)
        await expect_error(ErrorCode.TOKEN_INVALID, client.login_with_token("not-a-token"))
        forged = jwt.encode(
            {"sub": "ivan", "pid": 7, "jti": "x", "exp": 4102444800},
            "a-wrong-key-of-sufficient-length-0123456789",
            "HS256",
        )
        await expect_error(ErrorCode.TOKEN_INVALID, client.login_with_token(forged))
        await expect_error(ErrorCode.NOT_AUTHENTICATED, client.get_self())

    async def test_expired_token_is_refused(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        import jwt

        secret = redis_client.get(f"{prefix}token_secret")
        assert isinstance(secret, bytes)
        expired = jwt.encode(
            {"sub": "ivan", "pid": 7, "jti": "x", "exp": 1000}, secret.decode(), "HS256"
        )
        client = await connect(node.url)
        await expect_error(ErrorCode.TOKEN_EXPIRED, client.login_with_token(expired))

    async def test_logout_revokes_the_token(self, node: RunningNode, connect: Connect) -> None:
        client = await connect(node.url)
        token = await signed_in(client, "judy")
        await client.logout()
        await client.wait_closed()
        assert client.close_code == 4502
        again = await connect(node.url)
        await expect_error(ErrorCode.TOKEN_REVOKED, again.login_with_token(token))

    async def test_password_change_revokes_tokens_and_ends_other_sessions(
        self, node: RunningNode, connect: Connect
    ) -> None:
        phone = await connect(node.url)
        old_token = await signed_in(phone, "kate", Platform.IOS)
        desktop = await connect(node.url)
        await desktop.login("kate", "password-1", Platform.WINDOWS)

        new_token = await phone.change_password("password-1", "password-2")
        kicked = await desktop.next_event()
        assert kicked.close_code == 4501
        await desktop.wait_closed()
        assert desktop.close_code == 4501

        # The session that changed the password keeps working.
        assert (await phone.get_self()).user_id == "kate"
        fresh = await connect(node.url)
        await expect_error(ErrorCode.TOKEN_REVOKED, fresh.login_with_token(old_token))
        await expect_error(ErrorCode.BAD_CREDENTIALS, fresh.login("kate", "password-1"))
        assert (await fresh.login_with_token(new_token)).user_id == "kate"

    async def test_password_change_needs_the_old_password(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await signed_in(client, "liam")
        await expect_error(
            ErrorCode.BAD_CREDENTIALS, client.change_password("wrong-old", "password-2")
        )
        other = await connect(node.url)
        await other.login("liam", "password-1")


class TestProfile:
    async def test_set_profile_changes_only_given_fields_and_bumps_version(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await signed_in(client, "mia")
        before = await client.get_self()
        after = await client.set_profile(face_url="https://x/m.png")
        assert after.nickname == before.nickname
        assert after.face_url == "https://x/m.png"
        assert after.version == before.version + 1
        assert await client.get_self() == after

    async def test_profile_change_reaches_other_devices(
        self, node: RunningNode, connect: Connect
    ) -> None:
        from protocol.messages import SelfUpdated

        phone = await connect(node.url)
        await signed_in(phone, "noah", Platform.IOS)
        web = await connect(node.url)
        await web.login("noah", "password-1", Platform.WEB)
        await phone.set_profile(nickname="Noah N.")
        update = await web.next_event(SelfUpdated)
        assert update.profile.nickname == "Noah N."

    async def test_invalid_profile_fields_change_nothing(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        await signed_in(client, "olga")
        before = await client.get_self()
        await expect_error(ErrorCode.INVALID_FIELD, client.set_profile(nickname="x" * 65))
        assert await client.get_self() == before

    async def test_get_users_returns_public_profiles_and_not_found(
        self, node: RunningNode, connect: Connect
    ) -> None:
        a = await connect(node.url)
        await signed_in(a, "pam")
        b = await connect(node.url)
        await signed_in(b, "quinn")
        reply = await a.get_users(["quinn", "pam", "nobody", "quinn"])
        assert [u.user_id for u in reply.users] == ["quinn", "pam"]
        assert reply.users[0].nickname == "Quinn"
        assert reply.not_found == ["nobody"]

    async def test_batch_limit(self, node: RunningNode, connect: Connect) -> None:
        client = await connect(node.url)
        await signed_in(client, "rita")
        await expect_error(ErrorCode.INVALID_FIELD, client.get_users([f"u{n}" for n in range(101)]))


class TestOnlineStatus:
    async def test_platforms_online_follow_sessions(
        self, node: RunningNode, connect: Connect
    ) -> None:
        from tests.support import eventually

        phone = await connect(node.url)
        await signed_in(phone, "sam", Platform.ANDROID)
        desktop = await connect(node.url, reconnect=False)
        await desktop.login("sam", "password-1", Platform.MACOS)
        watcher = await connect(node.url)
        await signed_in(watcher, "tess")
        status = await watcher.get_online_status(["sam", "tess", "nobody"])
        assert status == {"sam": [2, 4], "tess": [7], "nobody": []}

        await desktop.aclose()

        async def only_android() -> bool:
            return (await watcher.get_online_status(["sam"]))["sam"] == [2]

        await eventually(only_android)


async def test_requests_fail_cleanly_when_connection_is_gone(
    node: RunningNode, connect: Connect
) -> None:
    client = await connect(node.url, reconnect=False)
    await signed_in(client, "uma")
    await client.logout()
    await client.wait_closed()
    with pytest.raises((ConnectionLost, Exception)):
        await client.get_self()
