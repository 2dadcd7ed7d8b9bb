"""The pure parts of webhooks: signing a request and checking it as a receiver does,
the idempotency id, never sending secrets, reading the app's verdict, and the
``webhooks`` settings (tables per callback, environment, command line, errors)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

import settings as config
from settings import ConfigError
from webhooks import catalog, signing
from webhooks.answers import MAX_ANSWER_BYTES, BadAnswer, Verdict, read_verdict
from webhooks.dispatcher import enabled_callbacks

SECRET = b"shared-secret"


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = signing.encode_body({"callback": "after_register", "user_id": "alice"})
    request = signing.signed_request(SECRET, "after_register", "id-1", body, 1_700_000_000)
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert request.headers[signing.SIGNATURE_HEADER] == f"v1={expected}"
    assert request.headers[signing.TIMESTAMP_HEADER] == "1700000000"
    assert request.headers[signing.ID_HEADER] == "id-1"
    assert request.headers[signing.CALLBACK_HEADER] == "after_register"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"callback": "after_register", "user_id": "alice"}


def test_receiver_check_accepts_the_signed_and_rejects_the_rest() -> None:
    body = b'{"a":1}'
    now = 1_700_000_000
    headers = signing.signed_request(SECRET, "x", "id", body, now).headers
    assert signing.verify(SECRET, headers, body, now + 10)
    assert not signing.verify(b"other", headers, body, now)
    assert not signing.verify(SECRET, headers, b'{"a":2}', now)
    # A replay later than the window, or a timestamp from the future.
    assert not signing.verify(SECRET, headers, body, now + signing.REPLAY_WINDOW_S + 1)
    assert not signing.verify(SECRET, headers, body, now - signing.REPLAY_WINDOW_S - 1)
    # A timestamp changed without re-signing, a missing or malformed one.
    moved = {**headers, signing.TIMESTAMP_HEADER: str(now + 1)}
    assert not signing.verify(SECRET, moved, body, now)
    for stamp in ("", "-5", "1.5e9", "abc"):
        assert not signing.verify(SECRET, {**headers, signing.TIMESTAMP_HEADER: stamp}, body, now)
    assert not signing.verify(SECRET, {}, body, now)


def test_call_ids_are_unique_and_random() -> None:
    ids = {signing.new_call_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_secrets_never_leave_at_any_depth() -> None:
    body = {
        "request": {"t": "register", "user_id": "a", "password": "p"},
        "list": [{"token": "t", "keep": 1}],
        "old_password": "o",
        "new_password": "n",
        "password_hash": "h",
    }
    sent = json.loads(signing.encode_body(body))
    assert sent == {"request": {"t": "register", "user_id": "a"}, "list": [{"keep": 1}]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"allow": true}', Verdict(allow=True)),
        (b'{"allow": false, "code": 12, "message": "no"}', Verdict(False, 12, "no")),
        (
            b'{"allow": true, "content": {"type": 101, "text": "x"}, "ex": "e", "other": 1}',
            Verdict(True, content={"type": 101, "text": "x"}, ex="e"),
        ),
    ],
)
def test_verdicts(body: bytes, expected: Verdict) -> None:
    assert read_verdict(200, body) == expected


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (500, b'{"allow": true}', "HTTP status 500"),
        (204, b"", "HTTP status 204"),
        (200, b"", "not JSON"),
        (200, b"<html>", "not JSON"),
        (200, b"[true]", "not a verdict"),
        (200, b"{}", "not a verdict"),
        (200, b'{"allow": "yes"}', "not a verdict"),
        (200, b'{"allow": true, "code": "x"}', "not a verdict"),
        (200, b'{"allow": false, "message": "' + b"m" * 2000 + b'"}', "not a verdict"),
        (200, b" " * (MAX_ANSWER_BYTES + 1), "bytes"),
    ],
)
def test_bad_answers(status: int, body: bytes, says: str) -> None:
    with pytest.raises(BadAnswer, match=says):
        read_verdict(status, body)


# -- settings ---------------------------------------------------------------------


def test_callback_blocks_inherit_from_the_default() -> None:
    settings = config.build(
        {
            "webhooks": {
                "secret": "s",
                "default": {"url": "http://app/hook", "timeout": 2},
                "before_send_single_message": {
                    "enable": True,
                    "failed_continue": False,
                    "content_types": [101, 102],
                },
                "after_user_online": {"enable": True, "url": "https://audit/online"},
            }
        }
    )
    callbacks = enabled_callbacks(settings.webhooks)
    assert set(callbacks) == {"before_send_single_message", "after_user_online"}
    send = callbacks["before_send_single_message"]
    assert (send.url, send.timeout, send.failed_continue) == ("http://app/hook", 2.0, False)
    assert send.content_types == frozenset({101, 102})
    online = callbacks["after_user_online"]
    assert (online.url, online.timeout) == ("https://audit/online", 2.0)


def test_everything_off_by_default() -> None:
    assert enabled_callbacks(config.build({}).webhooks) == {}


def test_callbacks_from_environment_and_command_line() -> None:
    env = config.from_environment(
        {
            "PARLEY_WEBHOOKS_SECRET": "s",
            "PARLEY_WEBHOOKS_DEFAULT_URL": "http://app/hook",
            "PARLEY_WEBHOOKS_AFTER_SEND_GROUP_MESSAGE_ENABLE": "true",
            "PARLEY_WEBHOOKS_AFTER_SEND_GROUP_MESSAGE_CONTENT_TYPES": "101, 110",
        }
    )
    cli = config.text_setting("webhooks.before_create_group.enable", "true")
    settings = config.build(None, env, cli)
    callbacks = enabled_callbacks(settings.webhooks)
    assert callbacks["after_send_group_message"].content_types == frozenset({101, 110})
    assert callbacks["before_create_group"].url == "http://app/hook"
    assert config.text_setting("webhooks.default.timeout", "1.5") == {
        "webhooks": {"default": {"timeout": 1.5}}
    }


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"before_sending": {"enable": True}}, "webhooks.before_sending: unknown setting"),
        ({"callbacks": {}}, "webhooks.callbacks: unknown setting"),
        ({"default": {"urls": "x"}}, "webhooks.default.urls: unknown setting"),
        ({"after_register": 1}, "webhooks.after_register: expected a table"),
        ({"after_register": {"enable": True}}, "enabled without a url"),
        (
            {"default": {"url": "http://a"}, "after_register": {"enable": True}},
            "webhooks.secret: required",
        ),
        ({"default": {"url": "ftp://a"}}, "webhooks.default.url: expected an http"),
        ({"default": {"timeout": 0}}, "webhooks.default.timeout: expected a number > 0"),
        ({"after_register": {"failed_continue": False}}, "before_* callbacks only"),
        ({"before_register": {"content_types": [101]}}, "message send callbacks only"),
        ({"default": {"content_types": ["x"]}}, "expected a list of integers"),
        ({"workers": 0}, "webhooks.workers: expected a number > 0"),
        ({"retries": -1}, "webhooks.retries: expected a number >= 0"),
    ],
)
def test_bad_webhook_settings_name_the_key(values: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("*", r"\*")):
        config.build({"webhooks": values})


def test_unknown_environment_and_cli_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="PARLEY_WEBHOOKS_BEFORE_NOTHING_URL"):
        config.from_environment({"PARLEY_WEBHOOKS_BEFORE_NOTHING_URL": "http://a"})
    with pytest.raises(ConfigError, match=r"webhooks\.after_register\.retries: unknown"):
        config.text_setting("webhooks.after_register.retries", "1")


def test_catalog() -> None:
    assert catalog.BEFORE.isdisjoint(catalog.AFTER)
    assert all(n.startswith("before_") for n in catalog.BEFORE)
    assert {"after_user_online", "after_user_offline", "after_user_kicked"} <= catalog.AFTER
    assert catalog.CONTENT_FILTERED <= catalog.ALL


def test_every_callback_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "WEBHOOKS.md").read_text(encoding="utf-8")
    for name in catalog.ALL:
        assert f"#### `{name}`" in text, name
