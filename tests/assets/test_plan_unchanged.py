"""No behaviour change from the refactors of issue 16 (settings in one place, stores in rl/, the closed loop in cli/):
one loop day on the session's demo warehouse plans exactly what the code before them planned. The golden file was
written by the same procedure with the code at the merge of issue 17 (the closed loop then in
orchestration/closed_loop.py, its own asset list and resources); regenerate it only for an intended change of plans.
The same day is the suite's loop day for the published copy and for the agreement of the click-date reports."""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path

import dagster as dg
import duckdb

from cli.loop import run_loop
from tests.assets.conftest import LAST
from tests.assets.test_click_date_reports import check_lag_test_passed
from tests.assets.test_published_copy import _last_dates, check_published_copy

GOLDEN = Path(__file__).parent / "golden" / "loop_day_plan.json"


def test_one_loop_day_plans_what_it_planned_before_the_refactor_and_republishes_the_copy(demo_data):
    data = demo_data
    day = (dt.date.fromisoformat(LAST) + dt.timedelta(days=1)).isoformat()
    assert set(_last_dates(data / "published" / "warehouse.duckdb").values()) == {dt.date.fromisoformat(LAST)}
    frozen = []  # the heap that lives before a day is kept out of its garbage collections, and given back after
    (result,) = run_loop(
        [day],
        data,
        dg.DagsterInstance.ephemeral(),
        {"policy": "online_lp"},
        lambda _: frozen.append(gc.get_freeze_count()),
    )
    assert result.ok, result.error
    assert frozen[0] > 10_000 and gc.get_freeze_count() == 0
    check_lag_test_passed(result.checks)  # the two click-date conversion reports agree after the loop's ingestion
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT platform, campaign_id, daily_budget, bid, device_modifiers, hour_modifiers, budget_target, "
            "bid_targets, policy_version FROM bid_plan WHERE data_partition = ? ORDER BY platform, campaign_id",
            [day],
        ).fetchall()
    golden = json.loads(GOLDEN.read_text())
    assert golden["day"] == day
    assert [list(r) for r in rows] == golden["rows"]
    check_published_copy(data, LAST, day)  # the same day republished the analysts' copy
