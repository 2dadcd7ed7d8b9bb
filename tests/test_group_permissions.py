"""Who may do what to whom in a group: a table of role x action (x target), each
case run end to end on a fresh group through the SDK.

The group of every case: ``owner`` (100), admins ``admin`` and ``admin2`` (60),
ordinary members ``member`` and ``member2`` (20); ``outsider`` is not a member.
Outcomes: ``ok``; ``self`` -- INVALID_FIELD (an action on oneself that has its own
command, or makes no sense); ``deny`` -- PERMISSION_DENIED; ``out`` --
NOT_GROUP_MEMBER (the actor, or the target, is not in the group); ``quit`` --
OWNER_CANNOT_QUIT. A refused case must leave the group as it was."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from client import ErrorCode, ParleyClient, ParleyError
from server import RunningNode
from tests.support import Connect, both_stores, signed_in

pytestmark = both_stores

ACTORS = ("owner", "admin", "member", "outsider")
TARGETS = ("owner", "admin", "admin2", "member", "member2", "outsider")
OUTCOMES = {
    "ok": None,
    "self": ErrorCode.INVALID_FIELD,
    "deny": ErrorCode.PERMISSION_DENIED,
    "out": ErrorCode.NOT_GROUP_MEMBER,
    "quit": ErrorCode.OWNER_CANNOT_QUIT,
}
OUT = ("out",) * len(TARGETS)

# Actions on a target.  actor -> outcome per target:
#                  owner   admin   admin2  member  member2 outsider
RANK = {  # kick, mute, unmute: only over members of lower rank
    "owner":    ("self", "ok",   "ok",   "ok",   "ok",   "out"),
    "admin":    ("deny", "self", "deny", "ok",   "ok",   "out"),
    "member":   ("deny", "deny", "deny", "self", "deny", "out"),
    "outsider": OUT,
}  # fmt: skip
TARGETED: dict[str, dict[str, tuple[str, ...]]] = {
    "kick": {
        **RANK,
        # An ordinary member may kick no one, whoever it is.
        "member": ("deny",) * len(TARGETS),
    },
    "mute": RANK,
    "unmute": RANK,
    "set_member_info": {  # oneself, or members of lower rank
        "owner":    ("ok",   "ok",   "ok",   "ok",   "ok",   "out"),
        "admin":    ("deny", "ok",   "deny", "ok",   "ok",   "out"),
        "member":   ("deny", "deny", "deny", "ok",   "deny", "out"),
        "outsider": OUT,
    },
    "make_admin": {  # the owner only
        "owner":    ("self", "ok",   "ok",   "ok",   "ok",   "out"),
        "admin":    ("deny",) * 6,
        "member":   ("deny",) * 6,
        "outsider": OUT,
    },
    "make_member": {
        "owner":    ("self", "ok",   "ok",   "ok",   "ok",   "out"),
        "admin":    ("deny",) * 6,
        "member":   ("deny",) * 6,
        "outsider": OUT,
    },
    "transfer": {
        "owner":    ("self", "ok",   "ok",   "ok",   "ok",   "out"),
        "admin":    ("deny",) * 6,
        "member":   ("deny",) * 6,
        "outsider": OUT,
    },
}  # fmt: skip

# Actions without a target:          owner   admin   member  outsider
UNTARGETED: dict[str, tuple[str, ...]] = {
    "set_info":                      ("ok",   "ok",   "deny", "out"),
    "mute_all":                      ("ok",   "ok",   "deny", "out"),
    "unmute_all":                    ("ok",   "ok",   "deny", "out"),
    "dismiss":                       ("ok",   "deny", "deny", "out"),
    "respond_application":           ("ok",   "ok",   "deny", "out"),
    "invite":                        ("ok",   "ok",   "ok",   "out"),
    "quit":                          ("quit", "ok",   "ok",   "out"),
    "read_members":                  ("ok",   "ok",   "ok",   "out"),
}  # fmt: skip


@dataclass
class Case:
    action: str
    actor: str
    target: str | None
    outcome: str

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target or ''}".strip()


CASES = [
    Case(action, actor, target, outcome)
    for action, table in TARGETED.items()
    for actor in ACTORS
    for target, outcome in zip(TARGETS, table[actor], strict=True)
] + [
    Case(action, actor, None, outcome)
    for action, row in UNTARGETED.items()
    for actor, outcome in zip(ACTORS, row, strict=True)
]

Act = Callable[[ParleyClient, str, str], Awaitable[object]]

ACTIONS: dict[str, Act] = {
    "kick": lambda c, g, t: c.kick_group_members(g, [t]),
    "mute": lambda c, g, t: c.mute_group_member(g, t, 600),
    "unmute": lambda c, g, t: c.unmute_group_member(g, t),
    "set_member_info": lambda c, g, t: c.set_group_member_info(g, t, nickname="nick"),
    "make_admin": lambda c, g, t: c.set_group_member_role(g, t, 60),
    "make_member": lambda c, g, t: c.set_group_member_role(g, t, 20),
    "transfer": lambda c, g, t: c.transfer_group_owner(g, t),
    "set_info": lambda c, g, _: c.set_group_info(g, name="renamed"),
    "mute_all": lambda c, g, _: c.mute_group(g),
    "unmute_all": lambda c, g, _: c.unmute_group(g),
    "dismiss": lambda c, g, _: c.dismiss_group(g),
    "respond_application": lambda c, g, _: c.respond_group_application(g, "applicant", True),
    "invite": lambda c, g, _: c.invite_to_group(g, ["applicant"]),
    "quit": lambda c, g, _: c.quit_group(g),
    "read_members": lambda c, g, _: c.get_group_members(g),
}


def test_table_covers_every_action() -> None:
    assert set(ACTIONS) == set(TARGETED) | set(UNTARGETED)
    assert set(OUTCOMES) >= {c.outcome for c in CASES}


async def _view(owner: ParleyClient, group_id: str) -> tuple[object, ...]:
    """What a case may change: the group's info and members, and the applications."""
    info = (await owner.get_groups_info([group_id])).items
    try:
        members = (await owner.get_group_members(group_id, limit=100)).items
    except ParleyError as exc:
        members = [exc.code]  # type: ignore[list-item]
    applications = (await owner.get_group_applications(limit=100)).items
    return info, members, applications


async def _check_effect(case: Case, clients: dict[str, ParleyClient], group_id: str) -> None:
    """An allowed action had its effect (seen by the owner, or the new owner)."""
    owner_id = "owner"
    if case.action == "transfer":
        assert case.target is not None
        owner_id = case.target
    viewer = clients[owner_id]
    if case.action == "dismiss":
        [info] = (await viewer.get_groups_info([group_id])).items
        assert info.status == "dismissed"
        return
    info = (await viewer.get_groups_info([group_id])).items[0]
    members = {r.user_id: r for r in (await viewer.get_group_members(group_id, limit=100)).items}
    target = members.get(case.target or "")
    effects: dict[str, Callable[[], bool]] = {
        "kick": lambda: case.target not in members,
        "mute": lambda: target is not None and target.muted_until > 0,
        "unmute": lambda: target is not None and target.muted_until == 0,
        "set_member_info": lambda: target is not None and target.nickname == "nick",
        "make_admin": lambda: target is not None and target.role_level == 60,
        "make_member": lambda: target is not None and target.role_level == 20,
        "transfer": lambda: info.owner_user_id == case.target and members["owner"].role_level == 20,
        "set_info": lambda: info.name == "renamed",
        "mute_all": lambda: info.mute_all,
        "unmute_all": lambda: not info.mute_all,
        "respond_application": lambda: "applicant" in members,
        # An ordinary member's invitation waits for approval under the "approval" policy.
        "invite": lambda: ("applicant" in members) == (case.actor != "member"),
        "quit": lambda: case.actor not in members,
        "read_members": lambda: len(members) == 5,
    }
    assert effects[case.action](), f"{case}: no effect"


async def test_role_by_action(node: RunningNode, connect: Connect) -> None:
    names = [*TARGETS, "applicant"]
    clients: dict[str, ParleyClient] = {}
    for name in names:
        clients[name] = await connect(node.url)
        await signed_in(clients[name], name)
    owner = clients["owner"]
    failures: list[str] = []
    for n, case in zip(itertools.count(), CASES):
        group_id = f"case{n}"
        await owner.create_group(
            str(case),
            group_id=group_id,
            admin_user_ids=["admin", "admin2"],
            member_user_ids=["member", "member2"],
        )
        if case.action == "unmute":
            assert case.target is not None
            if case.target not in ("outsider", "owner"):
                await owner.mute_group_member(group_id, case.target, 600)
        if case.action == "unmute_all":
            await owner.mute_group(group_id)
        if case.action == "respond_application":
            await clients["applicant"].apply_join_group(group_id)
        before = await _view(owner, group_id)
        expected = OUTCOMES[case.outcome]
        try:
            await ACTIONS[case.action](clients[case.actor], group_id, case.target or "")
        except ParleyError as exc:
            if exc.code != expected:
                failures.append(f"{case}: {exc.name}, expected {case.outcome}")
            elif await _view(owner, group_id) != before:
                failures.append(f"{case}: refused but changed the group")
            continue
        if expected is not None:
            failures.append(f"{case}: allowed, expected {case.outcome}")
            continue
        try:
            await _check_effect(case, clients, group_id)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


async def test_managed_applications_follow_the_role(node: RunningNode, connect: Connect) -> None:
    """Applications show to a member while an admin, and the role shows in their own
    joined-group entry."""
    owner, other, applicant = [await connect(node.url) for _ in range(3)]
    for client, name in ((owner, "owner"), (other, "other"), (applicant, "applicant")):
        await signed_in(client, name)
    await owner.create_group("g", group_id="g", member_user_ids=["other"])
    await applicant.apply_join_group("g")
    for role, visible in ((20, 0), (60, 1), (20, 0)):
        await owner.set_group_member_role("g", "other", role)  # type: ignore[arg-type]
        assert (await other.get_group_applications()).total == visible
        [entry] = (await other.get_joined_groups()).items
        assert entry.role_level == role
