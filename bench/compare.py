"""A/B runs: one scenario against the servers of two commits, in alternating rounds.

    python bench/load.py compare [--base REV|PATH] [--head REV|PATH] --rounds N SCENARIO [options]
    make bench-compare BASE=REV [HEAD=REV|PATH] [ROUNDS=3] SCENARIO=pairs ARGS="--pairs 500"

The base commit (and the head, when it is a commit) is checked out into a
temporary git worktree (``git worktree add --detach``), removed afterwards.
Without ``--head`` the head is this checkout as it is, local changes included;
a path names another checkout. Each round runs the scenario once per side,
every run as its own ``bench/load.py SCENARIO ... --server-tree TREE``, which
starts that side's ``server.py serve`` (a commit's own Python files, this
virtual environment's interpreter) and stops it after. The load client and the
set-up code are always this checkout's, so only the server differs (unless
``--base-client`` / ``--head-client`` differ: the same server with two load
clients, or ``--base-set`` / ``--head-set`` give one side's server a setting of
its own: two settings of one revision, e.g. ``--base HEAD --head .
--base-set redis.durability=everysec --head-set redis.durability=always``, or
``--base-args`` / ``--head-args`` give one side's runs scenario options of their
own: two deployments of one tree). Without ``--base`` both sides run the head's
tree (this checkout by default) and must differ by those options, e.g.

    python bench/load.py compare --base-args '--store redis' \
        --head-args '--store cluster' --rounds 4 cluster --pairs 500 --duration 10
    python bench/load.py compare --head-args '--workers 2' --rounds 4 \
        pairs --pairs 500 --duration 10

The order of the two sides flips every round (base first in odd rounds, head
first in even ones), so a drift of the machine's speed during the run weighs on
both.

Reported: each figure per round and side, the medians, and the ratio head/base
as the median of the rounds' ratios (a round's two runs are minutes apart at
most, so their ratio cancels most of what the shared machine adds). Lost,
duplicated and out-of-order messages and failures are summed over every run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.clients import load_client

REPO = Path(__file__).resolve().parent.parent
LOAD = REPO / "bench" / "load.py"
FIGURES = (
    "server_cpu_us_per_msg", "msgs_per_s", "p50_ms", "p99_ms", "rss_kb_per_connection",
    "client_cpu_us_per_msg", "redis_cpu_us_per_msg", "server_rss_mb", "logins_per_s",
    "server_cpu_us_per_login", "server_cpu_us_per_send", "server_cpu_us_per_incremental",
    "redis_replica_cpu_us_per_msg",
)  # fmt: skip
"""Figures compared, where a scenario reports them."""
CHECKS = ("lost", "duplicates", "out_of_order", "failures")
RUN_TIMEOUT_S = 1800.0
STOP_TIMEOUT_S = 20.0
GIT_TIMEOUT_S = 120.0
GIT_TRIES = 5
REFUSED = ("--url", "--server-tree")
"""Scenario options the compare mode sets itself, or that make no sense in it."""


class CompareError(RuntimeError):
    """A worktree could not be made, or a run failed without a result."""


@dataclass(frozen=True)
class Side:
    name: str
    """``base`` or ``head``."""
    rev: str
    """What was asked for: a commit, a path, or ``(this checkout)``."""
    commit: str
    tree: Path
    client: str | None
    """``--client`` for this side's runs (None: the scenario's own option or default)."""
    settings: tuple[str, ...] = ()
    """``--set`` options for this side's server (``--base-set`` / ``--head-set``)."""
    options: tuple[str, ...] = ()
    """Scenario options of this side's runs only (``--base-args`` / ``--head-args``)."""


def add_arguments(parser: argparse.ArgumentParser, scenarios: Sequence[str]) -> None:
    parser.add_argument(
        "--base",
        metavar="REV|PATH",
        help="the base: a commit, or a checkout's path (default: the head's tree, for two "
        "deployments or settings of one tree: --base-args / --head-args, --*-set)",
    )
    parser.add_argument(
        "--head",
        metavar="REV|PATH",
        help="the head: a commit, or a checkout's path (default: this checkout as it is)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (one run per side each)")
    parser.add_argument("--base-client", help="--client for the base side's runs")
    parser.add_argument("--head-client", help="--client for the head side's runs")
    for side in ("base", "head"):
        parser.add_argument(
            f"--{side}-set",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help=f"setting for the {side} side's server only (repeatable), e.g. to enable"
            " a feature the other side does not have",
        )
    for side in ("base", "head"):
        parser.add_argument(
            f"--{side}-args",
            action="append",
            default=[],
            metavar="'OPTIONS'",
            help=f"scenario options for the {side} side's runs only (repeatable; split like a "
            "shell line), e.g. --head-args '--store cluster' or --head-args=--workers=2",
        )
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--save", metavar="PATH", help="also write the JSON result to PATH")
    parser.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT_S, help="longest run, s")
    parser.add_argument("compared", choices=scenarios, metavar="SCENARIO")
    parser.add_argument("scenario_args", nargs=argparse.REMAINDER, help="the scenario's options")


def _git(*args: str, cwd: Path = REPO) -> str:
    """Run git; retried while another git holds a lock (others work in this repository)."""
    for attempt in range(GIT_TRIES):
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return done.stdout.strip()
        if ".lock" not in done.stderr or attempt == GIT_TRIES - 1:
            raise CompareError(f"git {' '.join(args)}: {done.stderr.strip()}")
        time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


class Worktrees:
    """Temporary detached worktrees of commits; removed by ``close``."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="parley-compare-"))
        self.trees: list[Path] = []

    def add(self, name: str, rev: str) -> tuple[Path, str]:
        commit = _git("rev-parse", "--verify", "--short", f"{rev}^{{commit}}")
        tree = self.folder / name
        _git("worktree", "add", "--detach", str(tree), commit)
        self.trees.append(tree)
        return tree, commit

    def close(self) -> None:
        for tree in self.trees:
            try:
                _git("worktree", "remove", "--force", str(tree))
            except (CompareError, OSError, subprocess.TimeoutExpired) as exc:
                print(f"compare: could not remove the worktree {tree}: {exc}", file=sys.stderr)
        self.trees.clear()
        with contextlib.suppress(CompareError, OSError, subprocess.TimeoutExpired):
            _git("worktree", "prune")
        with contextlib.suppress(OSError):
            self.folder.rmdir()


def _split(lines: Sequence[str]) -> tuple[str, ...]:
    """``--base-args`` / ``--head-args`` values, each split like a shell line."""
    return tuple(option for line in lines for option in shlex.split(line))


def _side(name: str, rev: str | None, args: argparse.Namespace, worktrees: Worktrees) -> Side:
    """A side from what was asked for: None (this checkout as it is), a checkout's path,
    or a commit (checked out into a temporary worktree)."""
    client = getattr(args, f"{name}_client")
    settings = tuple(getattr(args, f"{name}_set"))
    options = _split(getattr(args, f"{name}_args"))
    if rev is None:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return Side(name, "(this checkout)", f"{commit}+" if dirty else commit, REPO,
                    client, settings, options)  # fmt: skip
    path = Path(rev)
    if path.is_dir() and (path / "server.py").exists():
        commit = _git("rev-parse", "--short", "HEAD", cwd=path)
        return Side(name, rev, commit, path.resolve(), client, settings, options)
    tree, commit = worktrees.add(name, rev)
    return Side(name, rev, commit, tree, client, settings, options)


def _sides(args: argparse.Namespace, worktrees: Worktrees) -> tuple[Side, Side]:
    """Base and head; without ``--base`` the base is the head's tree, and the two sides
    must differ by their options, settings or client."""
    head = _side("head", args.head, args, worktrees)
    if args.base is not None:
        return _side("base", args.base, args, worktrees), head
    base = replace(
        head, name="base", client=args.base_client, settings=tuple(args.base_set),
        options=_split(args.base_args),
    )  # fmt: skip
    if (base.client, base.settings, base.options) == (head.client, head.settings, head.options):
        raise CompareError(
            "without --base both sides run the same tree: give them different "
            "--base-args / --head-args, --base-set / --head-set or --base-client / --head-client"
        )
    return base, head


def _run(side: Side, args: argparse.Namespace) -> dict[str, Any]:
    """One run of the scenario against ``side``'s server; its JSON result."""
    command = [
        sys.executable, str(LOAD), args.compared, *args.scenario_args, *side.options,
        "--server-tree", str(side.tree), "--json",
    ]  # fmt: skip
    if side.client is not None:
        command += ["--client", side.client]
    for setting in side.settings:
        command += ["--set", setting]
    print(f"compare: {side.name} ({side.commit}): {shlex.join(command[1:])}", file=sys.stderr)
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, _ = process.communicate(timeout=args.run_timeout)
    except BaseException:
        # Its own process group: the servers and client processes it started go with it.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        raise
    lines = stdout.strip().splitlines()
    if process.returncode not in (0, 1) or not lines:
        raise CompareError(f"the {side.name} run exited with {process.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarize(
    compared: str, sides: Sequence[Side], rounds: Sequence[dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Per-round figures, medians and head/base ratios (median of the rounds' ratios)."""
    figures = [
        f for f in FIGURES
        if any(_number(r[s.name].get(f)) is not None for r in rounds for s in sides)
    ]  # fmt: skip
    per_round = []
    ratios: dict[str, list[float | None]] = {f: [] for f in figures}
    for number, run in enumerate(rounds, 1):
        entry: dict[str, Any] = {"round": number, "order": run["order"]}
        for side in sides:
            result = run[side.name]
            entry[side.name] = {
                **{f: _number(result.get(f)) for f in figures},
                **{c: result.get(c) for c in CHECKS},
                "client": result.get("client"),
                "server_commit": result.get("server_commit"),
            }
        for f in figures:
            base, head = _number(run["base"].get(f)), _number(run["head"].get(f))
            ratios[f].append(round(head / base, 3) if base and head is not None else None)
        per_round.append(entry)
    totals = {c: sum(int(r[s.name].get(c) or 0) for r in rounds for s in sides) for c in CHECKS}
    return {
        "scenario": "compare",
        "compared": compared,
        "rounds": len(rounds),
        "sides": {
            s.name: {
                "rev": s.rev,
                "commit": s.commit,
                "client": s.client or _client_of(rounds, s),
                "settings": list(s.settings),
                "options": list(s.options),
            }
            for s in sides
        },
        **totals,
        "ratios": {f: _median(v) for f, v in ratios.items()},
        "medians": {
            s.name: {f: _median([_number(r[s.name].get(f)) for r in rounds]) for f in figures}
            for s in sides
        },
        "round_ratios": ratios,
        "per_round": per_round,
    }


def _client_of(rounds: Sequence[dict[str, dict[str, Any]]], side: Side) -> str | None:
    clients = {r[side.name].get("client") for r in rounds}
    return clients.pop() if len(clients) == 1 else None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}"
    return str(value)


def report_lines(summary: dict[str, Any]) -> list[str]:
    """A Markdown table: each figure per round and side, medians, ratio head/base."""
    sides = summary["sides"]
    described = {
        name: f"{side['commit']} (client {side['client']}"
        + "".join(f", {o}" for o in side.get("options", []))
        + "".join(f", --set {o}" for o in side.get("settings", []))
        + ")"
        for name, side in sides.items()
    }
    lines = [
        f"compare {summary['compared']}: base {described['base']}, head {described['head']}, "
        f"{summary['rounds']} rounds; " + ", ".join(f"{c} {summary[c]}" for c in CHECKS),
        "",
        "| figure | base per round | head per round | base median | head median "
        "| head/base (median of rounds) |",
        "|---|---|---|---|---|---|",
    ]
    for figure, ratio in summary["ratios"].items():
        base = " / ".join(_cell(r["base"][figure]) for r in summary["per_round"])
        head = " / ".join(_cell(r["head"][figure]) for r in summary["per_round"])
        lines.append(
            f"| {figure} | {base} | {head} | {_cell(summary['medians']['base'][figure])} "
            f"| {_cell(summary['medians']['head'][figure])} | {_cell(ratio)} |"
        )
    return lines


def _take_own_options(args: argparse.Namespace) -> None:
    """``--json`` and ``--save PATH`` written after the scenario are the compare's own."""
    rest: list[str] = []
    items = iter(args.scenario_args)
    for item in items:
        if item == "--json":
            args.json = True
        elif item == "--save":
            args.save = next(items, None)
        elif item.startswith("--save="):
            args.save = item.partition("=")[2]
        else:
            rest.append(item)
    args.scenario_args = rest


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the rounds, print the table (and the JSON); 1 when a run had failures."""
    _take_own_options(args)
    if args.rounds < 1:
        raise CompareError("--rounds must be 1 or more")
    side_options = _split([*args.base_args, *args.head_args])
    refused = [a for a in (*args.scenario_args, *side_options) if a.split("=")[0] in REFUSED]
    if refused:
        raise CompareError(f"compare sets or refuses {', '.join(refused)} itself")
    for client in (args.base_client, args.head_client):
        if client is not None:
            load_client(client)  # an unknown name fails here, not in the first run
    worktrees = Worktrees()
    try:
        base, head = _sides(args, worktrees)
        rounds: list[dict[str, Any]] = []
        for number in range(args.rounds):
            order = (base, head) if number % 2 == 0 else (head, base)
            run_of: dict[str, Any] = {"order": [s.name for s in order]}
            for side in order:
                run_of[side.name] = _run(side, args)
            rounds.append(run_of)
    finally:
        worktrees.close()
    summary = summarize(args.compared, (base, head), rounds)
    summary["command"] = shlex.join(["python", "bench/load.py", *argv])
    sys.stdout.write("\n" + "\n".join(report_lines(summary)) + "\n")
    if args.save:
        path = Path(args.save)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
    return 1 if summary["failures"] else 0
