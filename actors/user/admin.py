"""The server API's commands of the user actor (``protocol.admin``): create an
account, issue and revoke tokens, force a logout. They run in the user's actor like
the user's own commands, so they are serialized with its sign-ins; a WebSocket
client cannot send them (they are not in the client protocol)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import now_ms
from actors.user.accounts import close_sessions, create_account
from protocol import admin
from protocol import messages as m
from protocol.errors import CloseCode, ErrorCode, ProtocolError


class AdminCommands:
    def __init__(self, user_id: str, services: NodeServices) -> None:
        self.user_id = user_id
        self._services = services
        self._accounts = services.storage.accounts
        self._presence = services.storage.presence

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            admin.CreateUser: self.create_user,
            admin.IssueToken: self.issue_token,
            admin.RevokeTokens: self.revoke_tokens,
            admin.ForceLogout: self.force_logout,
        }

    async def _require_account(self) -> None:
        if not await self._accounts.exists(self.user_id):
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")

    async def create_user(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, admin.CreateUser)
        await create_account(self._services, self.user_id, request, request.password)
        return m.Registered(rid=request.rid, user_id=self.user_id)

    async def issue_token(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, admin.IssueToken)
        await self._require_account()
        issued = self._services.signer.issue(self.user_id, request.platform)
        claims = issued.claims
        await self._accounts.add_token(
            self.user_id, claims.token_id, request.platform, claims.expires_at_ms, now_ms()
        )
        return m.TokenIssued(rid=request.rid, token=issued.token, expires_at=claims.expires_at_ms)

    async def revoke_tokens(self, command: Command) -> m.Reply:
        await self._require_account()
        await self._accounts.revoke_all_tokens(self.user_id)
        sessions = await self._presence.sessions(self.user_id)
        await close_sessions(
            self._services, self.user_id, sessions, CloseCode.TOKEN_REVOKED, "tokens revoked"
        )
        return m.Count(rid=command.request.rid, count=len(sessions))

    async def force_logout(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, admin.ForceLogout)
        await self._require_account()
        sessions = [
            s
            for s in await self._presence.sessions(self.user_id)
            if request.platform is None or s.platform == request.platform
        ]
        await self._accounts.revoke_tokens(self.user_id, [s.token_id for s in sessions])
        await close_sessions(
            self._services, self.user_id, sessions, CloseCode.FORCED_LOGOUT, "logged out"
        )
        return m.Count(rid=request.rid, count=len(sessions))
