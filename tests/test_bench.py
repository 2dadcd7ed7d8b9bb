"""Smoke tests of the benchmark tool: tiny sizes, through ``bench/load.py`` as a user runs it.

The performance targets themselves are checked by the benchmark, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.delivery import DeliveryLedger
from bench.stats import latency_summary, percentile
from bench.summary import COMMON_FIELDS

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 60


def run_bench(*args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), *args, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    assert all(name in result for name in COMMON_FIELDS)
    return result


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


def test_messaging_scenarios_say_they_need_messaging() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "pairs", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 3
    assert "needs messaging" in completed.stderr
    assert completed.stdout == ""


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
