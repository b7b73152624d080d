"""The two reports that carry conversions by click date agree: the lag report (conversions per click date and lag
bucket) summed over its buckets is the delivery report's click-date conversions, campaign by campaign and day by day
(issue 18, item 5). They keep agreeing because both are re-pulled over one window — in a backfill, in a second
backfill after it, in the daily loop, on a world whose conversions take days to start arriving — and the dbt test
that compares them is an error: a lag report cut short fails its Dagster check and blocks the plan. One loop day
after a backfill passing the check is asserted in tests/assets/test_plan_unchanged.py (`check_lag_test_passed`), so
the suite runs that day once."""

from __future__ import annotations

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.bidding import BIDDING_ASSETS, PLAN_TABLE
from assets.ingestion import INGESTION_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.definitions import defs
from orchestration.jobs import BIDDING_LOOP_SELECTION
from orchestration.resources.ads import DemoAdsReportingResource
from rl.market.params import load_market_params
from rl.world.paths import OTHER_WORLD_FILE
from tests.assets.conftest import LAST
from tests.conftest import scaled

LAG_TEST = "assert_conversion_lag_matches_click_date_conversions"
LAG_CHECK = dg.AssetCheckKey(dg.AssetKey("stg_ads__conversion_lag"), LAG_TEST)
CLICK_DATE_REPORTS = ("ad_performance", "ad_conversion_lag")

# Campaign-days where the raw lag report, summed over buckets, and the raw delivery report differ (the dbt test's
# comparison, one step earlier).
DISAGREEING = """
    SELECT platform, campaign_id, date, coalesce(d.conversions, 0) AS delivery, coalesce(l.conversions, 0) AS lag
    FROM (SELECT platform, campaign_id, date, sum(conversions) AS conversions FROM raw.ad_performance GROUP BY ALL) d
    FULL JOIN (SELECT platform, campaign_id, date, sum(conversions) AS conversions FROM raw.ad_conversion_lag
               GROUP BY ALL) l USING (platform, campaign_id, date)
    WHERE abs(coalesce(d.conversions, 0) - coalesce(l.conversions, 0)) > 0.01
    ORDER BY ALL
"""


def check_lag_test_passed(checks: dict[str, bool]) -> None:
    """A loop day's checks (cli.loop.LoopDay.checks) include the agreement test, and it passed."""
    assert checks.get(LAG_TEST) is True, {name: ok for name, ok in checks.items() if not ok} or sorted(checks)


def test_every_job_that_pulls_delivery_pulls_the_lag_report_and_checks_their_agreement():
    graph = defs.resolve_asset_graph()
    pulling = []
    for job in defs.jobs:
        keys = job.selection.resolve(graph)
        if dg.AssetKey("ad_performance") in keys:
            pulling.append(job.name)
            assert dg.AssetKey("ad_conversion_lag") in keys, job.name
        if dg.AssetKey("stg_ads__performance") in keys:  # the test runs as a check of the job, not an observation
            assert LAG_CHECK in job.selection.resolve_checks(graph), job.name
    assert {"bidding_loop_job", "daily_bidding_job", "daily_data_job"} <= set(pulling)


def _windows(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {t: str(result.asset_materializations_for_node(t)[0].metadata["window"].value) for t in CLICK_DATE_REPORTS}


def test_both_reports_re_pull_one_window_and_agree_on_a_world_with_long_lags(tmp_path, monkeypatch):
    """The second world: its fastest buyers convert 2 days after the click, so the two newest click days of every
    pull have no lag rows. Counted on the lag report's own rows, the next pull's lookback stopped there and left
    every older click day as it was while the delivery report revised it."""
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    world_file = tmp_path / "world.yaml"
    world_file.write_text(scaled(load_market_params(OTHER_WORLD_FILE), 0.1).to_yaml())
    world = {"world_dir": str(tmp_path / "world"), "world_file": str(world_file), "seed": 3}
    db = tmp_path / "warehouse.duckdb"
    resources = {"ads": DemoAdsReportingResource(**world), "duckdb": DuckDBResource(database=str(db))}
    reports = [a for a in INGESTION_ASSETS if a.key.path[-1] in CLICK_DATE_REPORTS]

    def pull(first: str, last: str) -> dict[str, str]:
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        result = dg.materialize(reports, resources=resources, tags=tags)
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.sql(DISAGREEING).fetchall() == [], f"{first}..{last}"
            empty = con.execute(
                "SELECT count(*) FROM raw.ad_performance WHERE date NOT IN (SELECT date FROM raw.ad_conversion_lag)"
            ).fetchone()[0]
        assert empty > 0  # days without lag rows were loaded: the case the lookback has to count right
        return _windows(result)

    pull("2024-12-01", "2024-12-10")  # a backfill
    # a second backfill and a daily run: both reports re-pull from the first day loaded, 30 days at most
    assert set(pull("2024-12-11", "2024-12-14").values()) == {
        "2024-12-01..2024-12-14 (partitions 2024-12-11..2024-12-14, 10-day lookback)"
    }
    assert set(pull("2024-12-15", "2024-12-15").values()) == {
        "2024-12-01..2024-12-15 (partitions 2024-12-15..2024-12-15, 14-day lookback)"
    }


def test_a_lag_report_cut_short_fails_the_check_as_an_error_and_blocks_the_plan(copy, built):
    db = copy["tmp"] / "data" / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        # the click day with the most conversions (at this volume some days have none, hence no lag rows)
        day, conversions = con.execute(
            "SELECT date, sum(conversions) FROM raw.ad_conversion_lag GROUP BY date ORDER BY 2 DESC, date LIMIT 1"
        ).fetchone()
        con.execute("DELETE FROM raw.ad_conversion_lag WHERE date = ?", [day])
    # the loop day's dbt build and plan, without its ingestion: that re-pulls 30 days and would restore the day
    graph = defs.resolve_asset_graph()
    build = {k for k in BIDDING_LOOP_SELECTION.resolve(graph) if graph.get(k).group_name == "warehouse"}
    result = dg.materialize(
        [*WAREHOUSE_ASSETS, *BIDDING_ASSETS],
        selection=[*build, dg.AssetKey("daily_bid_plan")],
        partition_key=LAST,
        resources={**copy["resources"], "dbt": built["resources"]["dbt"]},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    (lag,) = [c for c in result.get_asset_check_evaluations() if c.check_name == LAG_TEST]
    assert (lag.passed, lag.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert lag.asset_check_key == LAG_CHECK
    # the check lists the campaign-days the two reports disagree on: the day cut from the lag report, all of it
    listed = [r.data for r in lag.metadata["disagreeing_campaign_days"].records]
    assert {r["date"] for r in listed} == {day.isoformat()} and all(r["lag_conversions"] == 0 for r in listed)
    assert lag.metadata["disagreeing_campaign_days_conversions_apart"].value == conversions
    done = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey("stg_ads__performance") in done  # the build ran; its failed test stopped what follows
    assert not done & {dg.AssetKey("daily_bid_plan"), dg.AssetKey("published_warehouse")}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        assert PLAN_TABLE not in tables or con.execute(f"SELECT count(*) FROM {PLAN_TABLE}").fetchone()[0] == 0
