"""The callbacks a node can make, by name. Pure data: settings read it to check the
names of ``[webhooks.<name>]`` blocks, the dispatcher to resolve them.

A *before* callback (``before_*``) is awaited inside the actor's handling of the
command and may refuse the action; an *after* callback (``after_*``) is queued once
the action is stored. Most actions are named after the request that causes them
(``before_create_group`` for ``create_group``); sending is split into single and
group chat, and the session events have only an after callback.
"""

from __future__ import annotations

REQUEST_ACTIONS: tuple[str, ...] = (
    # users
    "register",
    "set_profile",
    # friends and the blacklist
    "apply_friend",
    "respond_friend_application",
    "delete_friend",
    "add_black",
    "remove_black",
    # groups
    "create_group",
    "set_group_info",
    "apply_join_group",
    "respond_group_application",
    "invite_to_group",
    "kick_group_members",
    "quit_group",
    "set_group_member_role",
    "mute_group_member",
    "unmute_group_member",
    "mute_group",
    "unmute_group",
    "transfer_group_owner",
    "dismiss_group",
)
"""Actions named by their request's ``t``: each has a before and an after callback."""

SEND_SINGLE = "send_single_message"
SEND_GROUP = "send_group_message"
REVOKE = "revoke_message"
MESSAGE_ACTIONS: tuple[str, ...] = (SEND_SINGLE, SEND_GROUP, REVOKE)

SESSION_EVENTS: tuple[str, ...] = ("after_user_online", "after_user_offline", "after_user_kicked")
"""Session events: after callbacks only (nothing to refuse)."""

BEFORE: frozenset[str] = frozenset(f"before_{a}" for a in (*MESSAGE_ACTIONS, *REQUEST_ACTIONS))
AFTER: frozenset[str] = frozenset(
    (*(f"after_{a}" for a in (*MESSAGE_ACTIONS, *REQUEST_ACTIONS)), *SESSION_EVENTS)
)
ALL: frozenset[str] = BEFORE | AFTER

CONTENT_FILTERED: frozenset[str] = frozenset(
    f"{when}_{action}" for when in ("before", "after") for action in (SEND_SINGLE, SEND_GROUP)
)
"""Message callbacks that a ``content_types`` filter applies to."""


def before(action: str) -> str:
    return f"before_{action}"


def after(action: str) -> str:
    return f"after_{action}"
