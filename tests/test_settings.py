"""Configuration: defaults, TOML file, ``PARLEY_*`` environment, command line.

Covers ``settings`` and the command-line front end in ``server`` (``_parser``,
``settings_from_args``, ``main``). Every rejected value must produce a
``ConfigError`` whose message names the offending key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import server
import settings as config
from protocol.handshake import HandshakePolicy
from settings import ConfigError, Settings

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def no_parley_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests see only the ``PARLEY_*`` variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("PARLEY_"):
            monkeypatch.delenv(name)
    yield


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "parley.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def from_cli(*argv: str) -> Settings:
    """What ``python server.py serve ARGV`` would run with."""
    return server.settings_from_args(server._parser().parse_args(["serve", *argv]))


def config_error(*argv: str) -> str:
    with pytest.raises(ConfigError) as info:
        from_cli(*argv)
    return str(info.value)


def build_error(values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        config.build(values)
    return str(info.value)


# --------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------


def test_no_source_gives_the_defaults() -> None:
    settings = config.load(None, environ={})
    assert settings == Settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.node_id == ""
    assert settings.redis.url == ""
    assert settings.redis.prefix == "parley:"
    assert settings.session.idle_timeout == 60.0
    assert settings.session.multi_login == "one_per_platform_except_web"
    assert settings.auth.token_ttl == 7 * 24 * 3600
    assert settings.log.level == "info"


def test_build_without_sources_gives_the_defaults() -> None:
    assert config.build() == Settings()
    assert config.build({}, {}, {}) == Settings()


def test_command_line_without_options_gives_the_defaults() -> None:
    assert from_cli() == Settings()


# --------------------------------------------------------------------------
# TOML file
# --------------------------------------------------------------------------


def test_file_values_are_loaded(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [server]
        host = "0.0.0.0"
        port = 9000

        [redis]
        url = "redis://db:6379/2"

        [session]
        idle_timeout = 12.5
        multi_login = "single"

        [log]
        level = "debug"
        """,
    )
    settings = config.load(path, environ={})
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 9000
    assert settings.redis.url == "redis://db:6379/2"
    assert settings.session.idle_timeout == 12.5
    assert settings.session.multi_login == "single"
    assert settings.log.level == "debug"
    # Keys the file does not mention keep their defaults.
    assert settings.session.max_pending == Settings().session.max_pending
    assert settings.auth == Settings().auth


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert config.load(write_config(tmp_path, ""), environ={}) == Settings()


def test_integer_is_accepted_for_a_float_setting(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[session]\nidle_timeout = 5\n")
    idle_timeout = config.load(path, environ={}).session.idle_timeout
    assert idle_timeout == 5.0
    assert isinstance(idle_timeout, float)


def test_config_option_reads_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[actors]\nidle_timeout = 7\n")
    assert from_cli("--config", path).actors.idle_timeout == 7.0


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------


def test_environment_variables_map_to_dotted_keys() -> None:
    values = config.from_environment(
        {
            "PARLEY_SESSION_IDLE_TIMEOUT": "5",
            "PARLEY_REDIS_URL": "redis://db:6379/0",
            "PARLEY_SESSION_MULTI_LOGIN": "single",
            "HOME": "/root",
            "PARLEYX_IGNORED": "1",
        }
    )
    assert values == {
        "session": {"idle_timeout": 5, "multi_login": "single"},
        "redis": {"url": "redis://db:6379/0"},
    }


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[session]\nidle_timeout = 30\nmax_pending = 9\n")
    settings = config.load(path, environ={"PARLEY_SESSION_IDLE_TIMEOUT": "5"})
    assert settings.session.idle_timeout == 5.0
    # Other keys of the same section still come from the file.
    assert settings.session.max_pending == 9


def test_environment_value_is_typed_like_a_toml_literal() -> None:
    settings = config.load(
        environ={
            "PARLEY_SERVER_PORT": "9001",
            "PARLEY_SESSION_PING_INTERVAL": "2.5",
            "PARLEY_SERVER_NODE_ID": '"42"',
            "PARLEY_REDIS_PREFIX": "app:",
        }
    )
    assert settings.server.port == 9001
    assert settings.session.ping_interval == 2.5
    assert settings.server.node_id == "42"
    assert settings.redis.prefix == "app:"


def test_command_line_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_SESSION_IDLE_TIMEOUT", "5")
    assert from_cli().session.idle_timeout == 5.0


def test_digit_only_string_setting_from_environment() -> None:
    settings = config.load(environ={"PARLEY_SERVER_NODE_ID": "42"})
    assert settings.server.node_id == "42"


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def test_command_line_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_SERVER_PORT", "9000")
    monkeypatch.setenv("PARLEY_SESSION_IDLE_TIMEOUT", "5")
    settings = from_cli("--port", "9001", "--set", "session.idle_timeout=7")
    assert settings.server.port == 9001
    assert settings.session.idle_timeout == 7.0


def test_precedence_file_then_environment_then_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path, "[session]\nidle_timeout = 1\nping_interval = 1\nauth_timeout = 1\n"
    )
    monkeypatch.setenv("PARLEY_SESSION_PING_INTERVAL", "2")
    monkeypatch.setenv("PARLEY_SESSION_AUTH_TIMEOUT", "2")
    settings = from_cli("--config", path, "--set", "session.auth_timeout=3")
    assert settings.session.idle_timeout == 1.0  # file only
    assert settings.session.ping_interval == 2.0  # env over file
    assert settings.session.auth_timeout == 3.0  # command line over env and file


def test_named_options_set_their_keys() -> None:
    settings = from_cli(
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--redis-url",
        "redis://db:6379/1",
        "--data-dir",
        "/var/lib/parley",
        "--prefix",
        "p1:",
        "--node-id",
        "123",
    )
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 0
    assert settings.redis.url == "redis://db:6379/1"
    assert settings.redis.data_dir == "/var/lib/parley"
    assert settings.redis.prefix == "p1:"
    assert settings.server.node_id == "123"


def test_set_multi_login() -> None:
    assert from_cli("--set", "session.multi_login=single").session.multi_login == "single"


@pytest.mark.parametrize(
    "policy", ["all", "one_per_platform_except_web", "one_per_platform", "one_per_class", "single"]
)
def test_every_multi_login_policy_is_accepted(policy: str) -> None:
    assert from_cli("--set", f"session.multi_login={policy}").session.multi_login == policy


def test_set_is_repeatable() -> None:
    settings = from_cli(
        "--set", "session.idle_timeout=9", "--set", "auth.token_ttl=60", "--set", "log.level=error"
    )
    assert settings.session.idle_timeout == 9.0
    assert settings.auth.token_ttl == 60
    assert settings.log.level == "error"


def test_set_splits_at_the_first_equals_sign() -> None:
    url = "redis://db:6379/0?ssl_cert_reqs=none"
    assert from_cli("--set", f"redis.url={url}").redis.url == url


def test_set_tolerates_spaces_around_the_key() -> None:
    assert from_cli("--set", " session.max_pending = 3").session.max_pending == 3


def test_set_accepts_a_quoted_string() -> None:
    assert from_cli("--set", 'server.node_id="007"').server.node_id == "007"


# --------------------------------------------------------------------------
# Errors name the key: unknown settings
# --------------------------------------------------------------------------


def test_unknown_section_in_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[databse]\nurl = 'x'\n")
    with pytest.raises(ConfigError, match="databse"):
        config.load(path, environ={})


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[session]\nidle_timeot = 5\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert "session" in str(info.value)
    assert "idle_timeot" in str(info.value)


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    path = write_config(tmp_path, "session = 5\n")
    with pytest.raises(ConfigError, match="session"):
        config.load(path, environ={})


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("PARLEY_SESSION_IDLE_TIMEOT", "session.idle_timeot"),
        ("PARLEY_DATABSE_URL", "databse"),
        ("PARLEY_SESSION", "session"),
    ],
)
def test_unknown_key_in_environment(variable: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        config.load(environ={variable: "5"})


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ("session.idle_timeot=5", "session.idle_timeot"),
        ("databse.url=x", "databse.url"),
        ("session=5", "session"),
        ("session.idle_timeout.x=5", "session.idle_timeout.x"),
    ],
)
def test_unknown_key_in_set(item: str, key: str) -> None:
    message = config_error("--set", item)
    assert key in message
    assert "unknown" in message


def test_set_without_equals_sign() -> None:
    message = config_error("--set", "session.idle_timeout")
    assert "session.idle_timeout" in message
    assert "SECTION.KEY=VALUE" in message


# --------------------------------------------------------------------------
# Errors name the key: wrong types and values
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "key"),
    [
        pytest.param({"session": {"idle_timeout": "abc"}}, "session.idle_timeout", id="str-float"),
        pytest.param({"session": {"idle_timeout": True}}, "session.idle_timeout", id="bool-float"),
        pytest.param({"session": {"max_pending": True}}, "session.max_pending", id="bool-int"),
        pytest.param({"session": {"max_pending": 1.5}}, "session.max_pending", id="float-int"),
        pytest.param({"server": {"port": "8080"}}, "server.port", id="str-int"),
        pytest.param({"server": {"host": 5}}, "server.host", id="int-str"),
        pytest.param({"redis": {"url": ["a"]}}, "redis.url", id="list-str"),
    ],
)
def test_wrong_type_names_the_key(values: dict[str, Any], key: str) -> None:
    assert key in build_error(values)


def test_wrong_type_from_environment_names_the_key() -> None:
    with pytest.raises(ConfigError, match=re.escape("session.idle_timeout")):
        config.load(environ={"PARLEY_SESSION_IDLE_TIMEOUT": "abc"})


def test_wrong_type_from_set_names_the_key() -> None:
    assert "auth.token_ttl" in config_error("--set", "auth.token_ttl=true")


def test_empty_value_for_a_number_names_the_key() -> None:
    assert "session.idle_timeout" in config_error("--set", "session.idle_timeout=")


POSITIVE_KEYS = [
    "redis.max_connections",
    "session.max_frame_bytes",
    "session.max_pending",
    "session.request_deadline",
    "session.outbound_queue",
    "session.ping_interval",
    "session.idle_timeout",
    "session.handshake_timeout",
    "session.auth_timeout",
    "auth.token_ttl",
    "auth.argon2_time_cost",
    "auth.argon2_memory_kib",
    "auth.argon2_parallelism",
    "auth.login_failure_window",
    "actors.idle_timeout",
]


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("key", POSITIVE_KEYS)
def test_positive_setting_rejects_zero_and_negative(key: str, value: int) -> None:
    section, name = key.split(".")
    message = build_error({section: {name: value}})
    assert key in message
    assert "> 0" in message


@pytest.mark.parametrize("key", POSITIVE_KEYS)
def test_positive_setting_accepts_one(key: str) -> None:
    section, name = key.split(".")
    settings = config.build({section: {name: 1}})
    assert getattr(getattr(settings, section), name) == 1


@pytest.mark.parametrize("key", sorted(config._NON_NEGATIVE))
def test_non_negative_setting(key: str) -> None:
    section, name = key.split(".")
    assert getattr(getattr(config.build({section: {name: 0}}), section), name) == 0
    message = build_error({section: {name: -1}})
    assert key in message
    assert ">= 0" in message


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_port_out_of_range(port: int) -> None:
    message = build_error({"server": {"port": port}})
    assert "server.port" in message
    assert str(port) in message


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_port_in_range(port: int) -> None:
    assert config.build({"server": {"port": port}}).server.port == port


def test_multi_login_outside_the_choices_lists_them() -> None:
    message = config_error("--set", "session.multi_login=many")
    assert "session.multi_login" in message
    for choice in ("all", "one_per_platform", "one_per_class", "single"):
        assert repr(choice) in message


def test_log_level_outside_the_choices() -> None:
    assert "log.level" in build_error({"log": {"level": "INFO"}})


def test_every_bad_key_is_reported_at_once() -> None:
    message = build_error(
        {"session": {"idle_timeout": "x", "multi_login": "many"}, "server": {"port": True}}
    )
    for key in ("session.idle_timeout", "session.multi_login", "server.port"):
        assert key in message


def test_every_out_of_range_key_is_reported_at_once() -> None:
    message = build_error({"session": {"idle_timeout": -1, "max_pending": 0}})
    assert "session.idle_timeout" in message
    assert "session.max_pending" in message


def test_nan_is_rejected_where_positive_is_required() -> None:
    assert "session.idle_timeout" in config_error("--set", "session.idle_timeout=nan")


# --------------------------------------------------------------------------
# Errors: the configuration file itself
# --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        config.load(str(path), environ={})
    assert str(path) in str(info.value)
    assert "cannot read" in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(str(tmp_path), environ={})
    assert str(tmp_path) in str(info.value)
    assert "cannot read" in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[session]\nidle_timeout = = 3\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert path in str(info.value)
    assert "TOML" in str(info.value)


def test_invalid_toml_through_the_command_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server\n")
    assert path in config_error("--config", path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("# caf\xe9\n[server]\nport = 1\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape("latin1.toml")):
        config.load(str(path), environ={})


# --------------------------------------------------------------------------
# Exit status
# --------------------------------------------------------------------------


def test_main_returns_2_and_names_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert server.main(["serve", "--set", "session.idle_timeout=-1"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert "session.idle_timeout" in err


def test_main_returns_2_for_set_without_equals_sign(capsys: pytest.CaptureFixture[str]) -> None:
    assert server.main(["serve", "--set", "oops"]) == 2
    assert "oops" in capsys.readouterr().err


def test_server_script_exits_2_on_a_bad_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    result = subprocess.run(
        [
            sys.executable,
            "server.py",
            "serve",
            "--port",
            "0",
            "--set",
            "session.idle_timeout=-1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "session.idle_timeout" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------
# server.allowed_origins: a list of origins
# --------------------------------------------------------------------------

ORIGINS = ("https://app.example.com", "http://localhost:3000")


def test_allowed_origins_default_to_none_listed() -> None:
    assert Settings().server.allowed_origins == ()


def test_allowed_origins_from_a_toml_array(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[server]\nallowed_origins = ["https://app.example.com", "http://localhost:3000"]\n',
    )
    assert config.load(path, environ={}).server.allowed_origins == ORIGINS


@pytest.mark.parametrize(
    "text",
    [
        "https://app.example.com,http://localhost:3000",
        " https://app.example.com , http://localhost:3000 ,",
        '["https://app.example.com", "http://localhost:3000"]',
    ],
    ids=["commas", "spaces", "toml-array"],
)
def test_allowed_origins_from_set(text: str) -> None:
    assert from_cli("--set", f"server.allowed_origins={text}").server.allowed_origins == ORIGINS


def test_allowed_origins_from_the_environment() -> None:
    settings = config.load(environ={"PARLEY_SERVER_ALLOWED_ORIGINS": "https://app.example.com"})
    assert settings.server.allowed_origins == ("https://app.example.com",)


def test_empty_text_gives_no_allowed_origins(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[server]\nallowed_origins = ["https://app.example.com"]\n')
    settings = from_cli("--config", path, "--set", "server.allowed_origins=")
    assert settings.server.allowed_origins == ()


def test_allowed_origins_are_kept_as_written() -> None:
    settings = config.build({"server": {"allowed_origins": ["HTTPS://App.Example.com:443"]}})
    assert settings.server.allowed_origins == ("HTTPS://App.Example.com:443",)


@pytest.mark.parametrize(
    "value",
    ["https://app.example.com", 5, ["https://app.example.com", 5], [["https://a.example"]]],
    ids=["string", "number", "mixed", "nested"],
)
def test_allowed_origins_must_be_a_list_of_strings(value: Any) -> None:
    message = build_error({"server": {"allowed_origins": value}})
    assert message.startswith("server.allowed_origins: expected a list of strings, got ")


@pytest.mark.parametrize(
    "origin",
    [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/chat",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "null",
        "*",
        "",
    ],
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused(origin: str) -> None:
    message = build_error({"server": {"allowed_origins": ["https://ok.example", origin]}})
    assert message == (
        "server.allowed_origins: expected an origin such as 'https://app.example.com'"
        f" (scheme://host[:port], no path), got {origin!r}"
    )


def test_a_bad_allowed_origin_from_set_stops_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "--set", "server.allowed_origins=https://app.example.com/"]
    assert server.main(argv) == 2
    assert "server.allowed_origins" in capsys.readouterr().err


def test_allowed_origins_that_pass_the_settings_make_a_handshake_policy() -> None:
    settings = config.build({"server": {"allowed_origins": ["HTTPS://App.Example.com:443"]}})
    policy = HandshakePolicy.build(settings.server.allowed_origins)
    assert policy.allowed_origins == {"https://app.example.com"}


# server.trusted_proxies: addresses and networks
# --------------------------------------------------------------------------


def test_trusted_proxies_from_set() -> None:
    settings = from_cli("--set", "server.trusted_proxies=10.0.0.0/8, ::1")
    assert settings.server.trusted_proxies == ("10.0.0.0/8", "::1")


@pytest.mark.parametrize("bad", ["proxy.example.com", "10.0.0.0/33", ""])
def test_trusted_proxies_must_be_addresses_or_networks(bad: str) -> None:
    message = build_error({"server": {"trusted_proxies": [bad]}})
    assert "server.trusted_proxies" in message
    assert repr(bad) in message


@pytest.mark.parametrize("key", ["limits.request_burst", "limits.message_burst"])
def test_bursts_are_positive(key: str) -> None:
    section, name = key.split(".")
    assert "> 0" in build_error({section: {name: 0}})
