"""Account commands of the user actor: register, sign in, tokens, logout,
password, profile, public profiles and online status.

:class:`AccountCommands` runs in the user actor's task on the node's event loop
and awaits storage (the commands of every actor in one loop tick travel to Redis
as one pipeline); password hashing runs in a worker thread, off the loop
(``services.hasher``). It keeps no copy of the account between commands: every
command reads what it needs from Redis, so a change made through another node is
never missed. Sessions are known from presence in Redis (all nodes), and sessions
on other nodes are closed through the cluster link.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from actors.runtime.callbacks import ask_before, tell_after, tell_session_event
from actors.runtime.credentials import IssuedToken
from actors.runtime.logs import log_event
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import now_ms
from actors.user.relations import notify_followers
from protocol import messages as m
from protocol.codec import encode_server_message
from protocol.errors import CloseCode, ErrorCode, ProtocolError
from protocol.platforms import PLATFORM_IDS, Platform
from storage import AccountRecord, PresenceEntry

log = logging.getLogger(__name__)


def profile_of(account: AccountRecord) -> m.UserProfile:
    return m.UserProfile(
        user_id=account.user_id,
        nickname=account.nickname,
        face_url=account.face_url,
        ex=account.ex,
        created_at=account.created_at,
        version=account.version,
    )


def _refuse_if_too_late(command: Command) -> None:
    """Refuse a sign-in that its session has answered ``UNAVAILABLE`` by now (it waited
    too long for this node, e.g. behind a lease held by a node that did not answer):
    carried out, it would register a session, issue a token and end other sessions of
    the user that the client does not know of. The session drops this refusal."""
    if command.answer_by_ms and now_ms() > command.answer_by_ms:
        raise ProtocolError(ErrorCode.UNAVAILABLE, "sign-in arrived after its deadline")


class ProfileFields(Protocol):
    """The profile of a new account, as ``register`` and the API's ``CreateUser`` give it."""

    @property
    def nickname(self) -> str: ...

    @property
    def face_url(self) -> str: ...

    @property
    def ex(self) -> str: ...


async def create_account(
    services: NodeServices,
    user_id: str,
    profile: ProfileFields,
    password: str | None,
    before: Callable[[], Awaitable[None]] | None = None,
) -> AccountRecord:
    """Store a new account (``USER_EXISTS`` if the id is taken). Without a password no
    password matches it: the user signs in with tokens only (``protocol.admin``).
    ``before`` (the before-callback) runs once the id is known to be free."""
    accounts = services.storage.accounts
    exists = ProtocolError(ErrorCode.USER_EXISTS, f"user {user_id!r} already exists")
    if await accounts.exists(user_id):
        raise exists
    if before is not None:
        await before()
    record = AccountRecord(
        user_id=user_id,
        password_hash="" if password is None else await services.hasher.hash(password),
        nickname=profile.nickname,
        face_url=profile.face_url,
        ex=profile.ex,
        created_at=now_ms(),
        version=1,
    )
    if not await accounts.create(record):
        raise exists
    return record


async def close_sessions(
    services: NodeServices,
    user_id: str,
    sessions: list[PresenceEntry],
    code: CloseCode,
    reason: str,
) -> None:
    """End sessions of ``user_id``, wherever they are held: out of presence, then the
    ``kicked`` push and the close with ``code``."""
    frame = encode_server_message(m.Kicked(close_code=code, reason=reason))
    await services.storage.presence.remove_sessions(user_id, sessions)
    for other in sessions:
        log_event(
            log,
            "kick",
            user=user_id,
            session=other.session_id,
            node=other.node_id,
            reason=reason,
            platform=other.platform,
        )
        services.cluster.close_session(other.node_id, other.session_id, code, reason, frame)
        if services.webhooks.on:
            tell_session_event(
                services,
                user_id,
                "after_user_kicked",
                other.session_id,
                close_code=int(code),
                reason=reason,
                platform=other.platform,
            )


class AccountCommands:
    def __init__(self, user_id: str, services: NodeServices) -> None:
        self.user_id = user_id
        self._services = services
        self._storage = services.storage
        self._accounts = services.storage.accounts

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.Register: self.register,
            m.Login: self.login,
            m.TokenLogin: self.token_login,
            m.Logout: self.logout,
            m.ChangePassword: self.change_password,
            m.GetSelf: self.get_self,
            m.SetProfile: self.set_profile,
            m.GetUsers: self.get_users,
            m.GetOnlineStatus: self.get_online_status,
        }

    async def _account(self) -> AccountRecord:
        account = await self._accounts.load(self.user_id)
        if account is None:
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")
        return account

    # -- registration and sign-in ------------------------------------------------

    async def register(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.Register)
        hooks = self._services.webhooks

        async def before() -> None:
            await ask_before(self._services, command, user_id=self.user_id)

        record = await create_account(
            self._services,
            self.user_id,
            request,
            request.password,
            before if hooks.on else None,
        )
        if hooks.on:
            tell_after(
                self._services, command, self.user_id, user_id=self.user_id, user=profile_of(record)
            )
        return m.Registered(rid=request.rid, user_id=self.user_id)

    async def _check_password(self, command: Command, password: str) -> AccountRecord:
        """The account, if ``password`` is its password and no failure limit is reached.

        Failures for an existing user id count for that id and for the client address;
        failures for ids with no account count in the address's separate unknown-id
        counter, so guessing ids from behind a shared address (a NAT, a proxy) never
        locks out the real users there."""
        auth = self._services.settings.auth
        metrics = self._services.limit_metrics
        address = command.session.address
        account = await self._accounts.load(self.user_id)
        known = account is not None
        counts = await self._accounts.login_failures(self.user_id, address, known)
        limits = (
            [auth.login_failures_per_user, auth.login_failures_per_address]
            if known
            else [auth.unknown_user_failures_per_address]
        )
        if any(limit and count >= limit for count, limit in zip(counts, limits, strict=True)):
            metrics.refused["logins"] += 1
            wait_ms = await self._accounts.login_failure_wait_ms(self.user_id, address, known)
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many failed logins; try again within {auth.login_failure_window} s",
                retry_after_ms=max(1, wait_ms),
            )
        password_hash = account.password_hash if account else None
        if not await self._services.hasher.verify(password_hash, password):
            metrics.login_failures["bad_password" if known else "unknown_user"] += 1
            await self._accounts.count_login_failure(
                self.user_id, address, known, auth.login_failure_window
            )
            raise ProtocolError(ErrorCode.BAD_CREDENTIALS, "wrong user id or password")
        assert account is not None
        return account

    async def login(self, command: Command) -> None:
        request = command.request
        assert isinstance(request, m.Login)
        _refuse_if_too_late(command)
        account = await self._check_password(command, request.password)
        await self._accounts.clear_login_failures(self.user_id)
        issued = self._services.signer.issue(self.user_id, request.platform)
        await self._sign_in(command, account, issued, new_token=True)

    async def token_login(self, command: Command) -> None:
        request = command.request
        assert isinstance(request, m.TokenLogin)
        _refuse_if_too_late(command)
        claims = self._services.signer.verify(request.token, request.rid)
        if claims.user_id != self.user_id:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "token was routed to the wrong user")
        if claims.platform not in PLATFORM_IDS:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "token names an unknown platform")
        account = await self._accounts.load_for_token(self.user_id, claims.token_id)
        if account is None:
            raise ProtocolError(ErrorCode.TOKEN_REVOKED, "token has been revoked")
        await self._sign_in(command, account, IssuedToken(request.token, claims), new_token=False)

    def _displaced_platforms(self, platform: int) -> list[int] | None:
        """Platforms whose sessions a sign-in on ``platform`` ends (None: every one)."""
        policy = self._services.settings.session.multi_login
        if policy == "all":
            return []
        if policy == "single":
            return None
        if policy == "one_per_platform":
            return [platform]
        if policy == "one_per_platform_except_web":
            # Browser tabs: each tab holds a session of its own, none ends another.
            return [] if Platform(platform).device_class == "web" else [platform]
        device_class = Platform(platform).device_class
        return [p.value for p in Platform if p.device_class == device_class]

    async def _sign_in(
        self, command: Command, account: AccountRecord, issued: IssuedToken, new_token: bool
    ) -> None:
        claims = issued.claims
        session = command.session
        entry = f"{claims.platform}:{claims.expires_at_ms}" if new_token else None
        _refuse_if_too_late(command)
        displaced = await self._storage.presence.sign_in(
            self.user_id,
            session.session_id,
            claims.platform,
            claims.token_id,
            self._displaced_platforms(claims.platform),
            entry,
            now_ms(),
            self._services.cluster.node_of(session),
        )
        kicked = encode_server_message(
            m.Kicked(
                close_code=CloseCode.KICKED,
                reason=f"signed in on platform {claims.platform} elsewhere",
            )
        )
        hooks = self._services.webhooks
        for other_session, node in displaced:
            log_event(
                log,
                "kick",
                user=self.user_id,
                session=other_session,
                node=node,
                reason="multi-login",
                by_session=session.session_id,
                platform=claims.platform,
            )
            self._services.cluster.close_session(
                node, other_session, CloseCode.KICKED, "signed in elsewhere", kicked
            )
            if hooks.on:
                tell_session_event(
                    self._services,
                    self.user_id,
                    "after_user_kicked",
                    other_session,
                    close_code=int(CloseCode.KICKED),
                    reason="signed in elsewhere",
                    by_session_id=session.session_id,
                    by_platform=claims.platform,
                )
        reply = m.LoginOk(
            rid=command.request.rid,
            user_id=self.user_id,
            platform=claims.platform,
            token=issued.token,
            expires_at=claims.expires_at_ms,
            profile=profile_of(account),
        )
        session.outbox.signed_in(
            command.request.rid,
            self.user_id,
            claims.platform,
            claims.token_id,
            encode_server_message(reply),
        )
        if hooks.on:
            tell_session_event(
                self._services,
                self.user_id,
                "after_user_online",
                session.session_id,
                platform=claims.platform,
                address=session.address,
                with_password=new_token,
            )

    async def logout(self, command: Command) -> None:
        session_id = command.session.session_id
        sessions = await self._storage.presence.sessions(self.user_id)
        mine = [s for s in sessions if s.session_id == session_id]
        await self._accounts.revoke_tokens(self.user_id, [s.token_id for s in mine])
        await self._storage.presence.remove_sessions(self.user_id, mine)
        log_event(
            log,
            "logout",
            user=self.user_id,
            platform=command.platform,
            session=session_id,
            node=self._services.cluster.node_of(command.session),
        )
        done = encode_server_message(m.Ok(rid=command.request.rid))
        command.session.outbox.close(CloseCode.LOGGED_OUT, "logged out", done)

    async def change_password(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.ChangePassword)
        await self._check_password(command, request.old_password)
        new_hash = await self._services.hasher.hash(request.new_password)
        if await self._accounts.change_password(self.user_id, new_hash) < 0:
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")
        platform = command.platform or Platform.LINUX
        issued = self._services.signer.issue(self.user_id, platform)
        claims = issued.claims
        await self._accounts.add_token(
            self.user_id, claims.token_id, platform, claims.expires_at_ms, now_ms()
        )
        session_id = command.session.session_id
        node = self._services.cluster.node_of(command.session)
        await self._storage.presence.set_token(
            self.user_id, session_id, platform, claims.token_id, node
        )
        sessions = await self._storage.presence.sessions(self.user_id)
        others = [s for s in sessions if s.session_id != session_id]
        await close_sessions(
            self._services, self.user_id, others, CloseCode.TOKEN_REVOKED, "password changed"
        )
        return m.TokenIssued(rid=request.rid, token=issued.token, expires_at=claims.expires_at_ms)

    # -- profile ---------------------------------------------------------------------

    async def get_self(self, command: Command) -> m.Reply:
        return m.Profile(rid=command.request.rid, profile=profile_of(await self._account()))

    async def set_profile(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SetProfile)
        changes = {
            name: value
            for name in ("nickname", "face_url", "ex")
            if (value := getattr(request, name)) is not None
        }
        hooks = self._services.webhooks
        if hooks.on:
            await ask_before(self._services, command, user_id=self.user_id)
        if await self._accounts.update_profile(self.user_id, changes) < 0:
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")
        profile = profile_of(await self._account())
        pushed = encode_server_message(m.SelfUpdated(profile=profile))
        self._services.hub.push_soon([self.user_id], pushed, command.session.session_id)
        public = m.PublicUser(
            user_id=profile.user_id,
            nickname=profile.nickname,
            face_url=profile.face_url,
            ex=profile.ex,
        )
        await notify_followers(self._services, self.user_id, public)
        if hooks.on:
            tell_after(self._services, command, self.user_id, user_id=self.user_id, user=profile)
        return m.Profile(rid=request.rid, profile=profile)

    async def get_users(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetUsers)
        wanted = list(dict.fromkeys(request.user_ids))
        found = await self._accounts.public_profiles(wanted)
        return m.Users(
            rid=request.rid,
            users=[
                m.PublicUser(user_id=p.user_id, nickname=p.nickname, face_url=p.face_url, ex=p.ex)
                for uid in wanted
                if (p := found.get(uid)) is not None
            ],
            not_found=[uid for uid in wanted if uid not in found],
        )

    async def get_online_status(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetOnlineStatus)
        wanted = list(dict.fromkeys(request.user_ids))
        online = await self._storage.presence.online_platforms(wanted)
        return m.OnlineStatus(
            rid=request.rid,
            statuses=[m.UserOnline(user_id=uid, platforms=online[uid]) for uid in wanted],
        )
