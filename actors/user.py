"""The user actor: one pykka thread per active user, owning the user's account
state, live sessions and profile version.

Every method runs in the actor's own thread. Redis calls block that thread
only. Replies and pushes go back to sessions through their ``SessionOutbox``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import pykka

from actors.credentials import IssuedToken, TokenClaims
from actors.messages import Command, SessionClosed, SessionRef
from actors.relations import RelationCommands
from actors.services import NodeServices
from actors.supervisor import StoppedNotice
from protocol import messages as m
from protocol.codec import encode_server_message
from protocol.errors import CloseCode, ErrorCode, ProtocolError
from protocol.platforms import Platform
from storage import AccountRecord

log = logging.getLogger(__name__)

KIND = "user"


class CommandGroup(Protocol):
    """A set of user commands kept in its own module (groups, messages, ...)."""

    def __init__(self, user_id: str, services: NodeServices) -> None: ...

    def handlers(self) -> dict[type[m.Request], Callable[[Command], m.Reply | None]]: ...


@dataclass(frozen=True)
class LiveSession:
    ref: SessionRef
    platform: int
    token_id: str


def error_frame(rid: int, code: ErrorCode, message: str) -> bytes:
    return encode_server_message(m.Error(rid=rid, code=int(code), name=code.name, message=message))


def _is_sign_in(request: m.Request) -> bool:
    return isinstance(request, m.Login | m.TokenLogin)


def now_ms() -> int:
    return int(time.time() * 1000)


class UserActor(pykka.ThreadingActor):
    """Owns one user. Created by the supervisor; all methods run in this actor's thread."""

    def __init__(
        self,
        user_id: str,
        services: NodeServices,
        stopped: StoppedNotice,
        command_groups: Sequence[type[CommandGroup]] = (),
    ) -> None:
        super().__init__()
        self.user_id = user_id
        self._services = services
        self._storage = services.storage
        self._stopped = stopped
        self._account: AccountRecord | None = None
        self._loaded = False
        self._sessions: dict[str, LiveSession] = {}
        self._relations = RelationCommands(user_id, services)
        self._handlers: dict[type[m.Request], Callable[[Command], m.Reply | None]] = {
            kind: partial(handler, self) for kind, handler in self._account_handlers.items()
        }
        self._handlers.update(self._relations.handlers())
        for command_group in command_groups:
            self._handlers.update(command_group(user_id, services).handlers())

    @classmethod
    def factory(
        cls, services: NodeServices, command_groups: Sequence[type[CommandGroup]] = ()
    ) -> Any:
        """Starts the actor of a user id; ``command_groups`` add further commands."""

        def start(user_id: str, stopped: StoppedNotice) -> pykka.ActorRef[Any]:
            return cls.start(user_id, services, stopped, command_groups)

        return start

    # -- pykka hooks (actor thread) ------------------------------------------

    def on_stop(self) -> None:
        for session_id in list(self._sessions):
            self._forget_session(session_id)
        self._stopped(self.actor_urn)

    def on_failure(self, *_exc: object) -> None:
        self._stopped(self.actor_urn)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Command):
            self._handle_command(message)
        elif isinstance(message, SessionClosed):
            self._forget_session(message.session_id)
        else:
            log.error("user actor %s: unexpected message %r", self.user_id, message)
        return None

    # -- dispatch ------------------------------------------------------------

    def _handle_command(self, command: Command) -> None:
        request = command.request
        outbox = command.session.outbox
        try:
            if not self._loaded:
                self._account = self._storage.accounts.load(self.user_id)
                self._loaded = True
            handler = self._handlers.get(type(request))
            if handler is None:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_COMMAND, f"{type(request).__name__} is not for user actors"
                )
            reply = handler(command)
        except ProtocolError as exc:
            outbox.reply(error_frame(request.rid, exc.code, exc.message), _is_sign_in(request))
        except Exception:
            # Restart from the stored snapshot: drop cached state, reload on next use.
            log.exception("user actor %s failed on %s", self.user_id, type(request).__name__)
            self._loaded = False
            self._account = None
            frame = error_frame(request.rid, ErrorCode.INTERNAL, "internal server error")
            outbox.reply(frame, _is_sign_in(request))
        else:
            if reply is not None:
                outbox.reply(encode_server_message(reply))

    def _require_account(self) -> AccountRecord:
        if self._account is None:
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")
        return self._account

    def _profile(self) -> m.UserProfile:
        account = self._require_account()
        return m.UserProfile(
            user_id=account.user_id,
            nickname=account.nickname,
            face_url=account.face_url,
            ex=account.ex,
            created_at=account.created_at,
            version=account.version,
        )

    # -- accounts and sign-in ----------------------------------------------------

    def _register(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.Register)
        if self._account is not None:
            raise ProtocolError(ErrorCode.USER_EXISTS, f"user {self.user_id!r} already exists")
        record = AccountRecord(
            user_id=self.user_id,
            password_hash=self._services.hasher.hash(request.password),
            nickname=request.nickname,
            face_url=request.face_url,
            ex=request.ex,
            created_at=now_ms(),
            version=1,
        )
        if not self._storage.accounts.create(record):
            self._account = self._storage.accounts.load(self.user_id)
            raise ProtocolError(ErrorCode.USER_EXISTS, f"user {self.user_id!r} already exists")
        self._account = record
        return m.Registered(rid=request.rid, user_id=self.user_id)

    def _check_rate(self, command: Command) -> None:
        auth = self._services.settings.auth
        by_user, by_address = self._storage.accounts.login_failures(
            self.user_id, command.session.address
        )
        if (auth.login_failures_per_user and by_user >= auth.login_failures_per_user) or (
            auth.login_failures_per_address and by_address >= auth.login_failures_per_address
        ):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many failed logins; try again within {auth.login_failure_window} s",
                command.request.rid,
            )

    def _check_password(self, command: Command, password: str) -> AccountRecord:
        self._check_rate(command)
        account = self._account
        if not self._services.hasher.verify(account.password_hash if account else None, password):
            window = self._services.settings.auth.login_failure_window
            self._storage.accounts.count_login_failure(
                self.user_id, command.session.address, window
            )
            raise ProtocolError(ErrorCode.BAD_CREDENTIALS, "wrong user id or password")
        assert account is not None
        return account

    def _login(self, command: Command) -> None:
        request = command.request
        assert isinstance(request, m.Login)
        self._check_password(command, request.password)
        self._storage.accounts.clear_login_failures(self.user_id)
        issued = self._services.signer.issue(self.user_id, request.platform)
        self._sign_in(command, issued, new_token=True)

    def _token_login(self, command: Command) -> None:
        request = command.request
        assert isinstance(request, m.TokenLogin)
        claims = self._services.signer.verify(request.token, request.rid)
        if claims.user_id != self.user_id:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "token was routed to the wrong user")
        if claims.platform not in {p.value for p in Platform}:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "token names an unknown platform")
        if self._account is None or not self._storage.accounts.token_is_valid(
            self.user_id, claims.token_id
        ):
            raise ProtocolError(ErrorCode.TOKEN_REVOKED, "token has been revoked")
        self._sign_in(command, IssuedToken(request.token, claims), new_token=False)

    def _sign_in(self, command: Command, issued: IssuedToken, new_token: bool) -> None:
        claims: TokenClaims = issued.claims
        displaced = self._displaced_by(claims.platform)
        revoke = {s.token_id for s in displaced} - {claims.token_id}
        if new_token:
            self._storage.accounts.add_token(
                self.user_id,
                claims.token_id,
                claims.platform,
                claims.expires_at_ms,
                now_ms(),
                revoke,
            )
        else:
            self._storage.accounts.revoke_tokens(self.user_id, revoke)
        kicked = encode_server_message(
            m.Kicked(
                close_code=CloseCode.KICKED,
                reason=f"signed in on platform {claims.platform} elsewhere",
            )
        )
        for old in displaced:
            old.ref.outbox.close(CloseCode.KICKED, "signed in elsewhere", kicked)
            self._forget_session(old.ref.session_id)
        ref = command.session
        self._sessions[ref.session_id] = LiveSession(ref, claims.platform, claims.token_id)
        self._storage.presence.session_online(self.user_id, ref.session_id, claims.platform)
        reply = m.LoginOk(
            rid=command.request.rid,
            user_id=self.user_id,
            platform=claims.platform,
            token=issued.token,
            expires_at=claims.expires_at_ms,
            profile=self._profile(),
        )
        ref.outbox.signed_in(self.user_id, claims.platform, encode_server_message(reply))

    def _displaced_by(self, platform: int) -> list[LiveSession]:
        """Sessions the multi-login policy ends when a session signs in on ``platform``."""
        policy = self._services.settings.session.multi_login
        sessions = list(self._sessions.values())
        if policy == "all":
            return []
        if policy == "single":
            return sessions
        if policy == "one_per_platform":
            return [s for s in sessions if s.platform == platform]
        device_class = Platform(platform).device_class
        return [s for s in sessions if Platform(s.platform).device_class == device_class]

    def _forget_session(self, session_id: str) -> None:
        if self._sessions.pop(session_id, None) is not None:
            self._storage.presence.session_offline(self.user_id, session_id)

    def _logout(self, command: Command) -> None:
        session = self._sessions.get(command.session.session_id)
        if session is not None:
            self._storage.accounts.revoke_tokens(self.user_id, [session.token_id])
            self._forget_session(session.ref.session_id)
        done = encode_server_message(m.Ok(rid=command.request.rid))
        command.session.outbox.close(CloseCode.LOGGED_OUT, "logged out", done)

    def _change_password(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.ChangePassword)
        self._check_password(command, request.old_password)
        new_hash = self._services.hasher.hash(request.new_password)
        version = self._storage.accounts.change_password(self.user_id, new_hash)
        if version < 0:
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")
        self._account = replace(self._require_account(), password_hash=new_hash, version=version)
        current = self._sessions.get(command.session.session_id)
        platform = current.platform if current else (command.platform or Platform.LINUX)
        issued = self._services.signer.issue(self.user_id, platform)
        self._storage.accounts.add_token(
            self.user_id, issued.claims.token_id, platform, issued.claims.expires_at_ms, now_ms()
        )
        if current is not None:
            self._sessions[current.ref.session_id] = replace(
                current, token_id=issued.claims.token_id
            )
        revoked = encode_server_message(
            m.Kicked(close_code=CloseCode.TOKEN_REVOKED, reason="password changed")
        )
        for other in list(self._sessions.values()):
            if other.ref.session_id != command.session.session_id:
                other.ref.outbox.close(CloseCode.TOKEN_REVOKED, "password changed", revoked)
                self._forget_session(other.ref.session_id)
        return m.TokenIssued(
            rid=request.rid, token=issued.token, expires_at=issued.claims.expires_at_ms
        )

    # -- profile -------------------------------------------------------------

    def _get_self(self, command: Command) -> m.Reply:
        return m.Profile(rid=command.request.rid, profile=self._profile())

    def _set_profile(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SetProfile)
        account = self._require_account()
        changes = {
            name: value
            for name in ("nickname", "face_url", "ex")
            if (value := getattr(request, name)) is not None
        }
        version = self._storage.accounts.update_profile(self.user_id, changes)
        if version < 0:
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {self.user_id!r}")
        self._account = replace(account, version=version, **changes)
        profile = self._profile()
        pushed = encode_server_message(m.SelfUpdated(profile=profile))
        for session in self._sessions.values():
            if session.ref.session_id != command.session.session_id:
                session.ref.outbox.push(pushed)
        public = m.PublicUser(
            user_id=profile.user_id,
            nickname=profile.nickname,
            face_url=profile.face_url,
            ex=profile.ex,
        )
        self._relations.notify_followers(public, command.session.session_id)
        return m.Profile(rid=request.rid, profile=profile)

    def _get_users(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetUsers)
        wanted = list(dict.fromkeys(request.user_ids))
        found = self._storage.accounts.public_profiles(wanted)
        return m.Users(
            rid=request.rid,
            users=[
                m.PublicUser(user_id=p.user_id, nickname=p.nickname, face_url=p.face_url, ex=p.ex)
                for uid in wanted
                if (p := found.get(uid)) is not None
            ],
            not_found=[uid for uid in wanted if uid not in found],
        )

    def _get_online_status(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetOnlineStatus)
        wanted = list(dict.fromkeys(request.user_ids))
        online = self._storage.presence.online_platforms(wanted)
        return m.OnlineStatus(
            rid=request.rid,
            statuses=[m.UserOnline(user_id=uid, platforms=online[uid]) for uid in wanted],
        )

    _account_handlers: dict[type[m.Request], Any] = {
        m.Register: _register,
        m.Login: _login,
        m.TokenLogin: _token_login,
        m.Logout: _logout,
        m.ChangePassword: _change_password,
        m.GetSelf: _get_self,
        m.SetProfile: _set_profile,
        m.GetUsers: _get_users,
        m.GetOnlineStatus: _get_online_status,
    }
