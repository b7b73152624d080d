"""The best baseline's comparison run in a background process (`cli.comparison.Comparison`), as `make demo` starts
it while the policy trains: the same loop day on a copy plans exactly what the loop plans in process (the golden
plan of `test_plan_unchanged`, which is online_lp's), the parent sees its progress and outcome, it runs at the
lowest CPU priority, and a run that is not needed any more is stopped."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from pathlib import Path

import duckdb

from cli.comparison import COMPARISON_NICE, PROGRESS_FILE, Comparison, main
from tests.assets.conftest import LAST
from tests.assets.test_plan_unchanged import GOLDEN

DAY = (dt.date.fromisoformat(LAST) + dt.timedelta(days=1)).isoformat()


def _plan(warehouse) -> list[list]:
    """The day's stored plan rows (none when no plan was ever stored: no bid_plan table)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'bid_plan'").fetchone()[0]:
            return []
        rows = con.execute(
            "SELECT platform, campaign_id, daily_budget, bid, device_modifiers, hour_modifiers, budget_target, "
            "bid_targets, policy_version FROM bid_plan WHERE data_partition = ? ORDER BY platform, campaign_id",
            [DAY],
        ).fetchall()
    return [list(r) for r in rows]


def test_the_background_run_plans_what_the_loop_plans_in_process(demo_data, tmp_path):
    comparison = Comparison.prepare([DAY], "online_lp")
    assert comparison.baseline[0] == demo_data / "compare" / "baseline_online_lp"
    comparison.start(tmp_path / "baseline.log")
    lines = []
    assert comparison.run_baseline(lines.append), (tmp_path / "baseline.log").read_text()[-3000:]
    assert comparison.process.returncode == 0
    (progress,) = (comparison.baseline[0] / PROGRESS_FILE).read_text().splitlines()
    assert json.loads(progress) | {"wall_s": 0} == {"day": DAY, "ok": True, "wall_s": 0, "error": ""}
    assert comparison.days_done() == 1
    assert _plan(comparison.baseline[0] / "warehouse.duckdb") == json.loads(GOLDEN.read_text())["rows"]
    # the copies were taken before anything ran on them, and the static operator's copy is left as it was
    assert _plan(comparison.static[0] / "warehouse.duckdb") == []
    assert _plan(demo_data / "warehouse.duckdb") == []


def test_a_comparison_run_that_is_not_needed_is_stopped(demo_data, tmp_path):
    comparison = Comparison.prepare([DAY], "online_lp")
    comparison.start(tmp_path / "baseline.log")
    time.sleep(3)  # into Dagster's import or run, where a SIGTERM would be swallowed
    # it yields the CPU to training, the yardsticks and the loop
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, comparison.process.pid) == min(mine + COMPARISON_NICE, 19)
    group = Path(f"/proc/{comparison.process.pid}/autogroup")  # its session's share too, where sessions share first
    if group.exists():
        assert group.read_text().split()[-1] == str(COMPARISON_NICE)
    started = time.perf_counter()
    comparison.cancel()
    assert time.perf_counter() - started < 5
    assert comparison.process.returncode == -signal.SIGKILL
    assert comparison.days_done() == 0
    comparison.cancel()  # idempotent


def test_a_comparison_run_without_a_copy_is_refused(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nothing"), "--policy", "online_lp", DAY]) == 2
    assert "no warehouse.duckdb" in capsys.readouterr().out
