"""Every GA4 session accounted for: `fct_ga4_traffic_daily` holds all GA4 traffic (organic, direct, referral, paid
campaigns outside the registry, GA4's odd values), its day totals equal the staging totals (the dbt test
`assert_ga4_traffic_reconciles_with_staging`, which fails when a row is lost or counted twice), and the unmapped
paid traffic check names the campaigns and their sessions. Real DuckDB files, the real assets and the dbt CLI."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse

from assets.dbt_project import DBT_PROJECT_DIR
from assets.ingestion import INGESTION_ASSETS
from assets.partitions import LOOKBACK_DAYS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.resources.ga4 import DemoGA4Resource
from tests.assets.conftest import LAST, RANGE
from tests.builders import partition_range

RECONCILIATION = "assert_ga4_traffic_reconciles_with_staging"
UNMAPPED = "assert_no_unmapped_paid_ga4_sessions"


def _con(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def test_the_traffic_mart_holds_every_ga4_session_and_reconciles_with_staging(built):
    result = built["result"]
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[RECONCILIATION].passed
    assert checks[RECONCILIATION].asset_key == dg.AssetKey("fct_ga4_traffic_daily")
    with _con(built["tmp"] / "data" / "published" / "warehouse.duckdb") as con:
        # per day, against the raw reports themselves (not only staging)
        differ = con.sql(
            "WITH mart AS (SELECT date, sum(sessions) s, sum(users) u, sum(key_events) k, sum(revenue) r "
            "FROM fct_ga4_traffic_daily GROUP BY date), "
            "raw_s AS (SELECT date, sum(sessions) s, sum(total_users) u FROM raw.ga4_sessions GROUP BY date), "
            "raw_k AS (SELECT date, sum(key_events) k, sum(revenue) r FROM raw.ga4_conversions GROUP BY date) "
            "SELECT * FROM mart FULL JOIN raw_s USING (date) FULL JOIN raw_k USING (date) "
            "WHERE mart.s IS DISTINCT FROM raw_s.s OR mart.u IS DISTINCT FROM raw_s.u "
            "OR abs(coalesce(mart.k, 0) - coalesce(raw_k.k, 0)) > 1e-6 "
            "OR abs(coalesce(mart.r, 0) - coalesce(raw_k.r, 0)) > 1e-6"
        ).fetchall()
        assert differ == []
        kinds = dict(
            con.sql(
                "SELECT campaign_name, sum(sessions) FROM fct_ga4_traffic_daily WHERE NOT is_registered_campaign "
                "GROUP BY ALL"
            ).fetchall()
        )
        (registered,) = con.sql(
            "SELECT sum(sessions), sum(key_events) FROM fct_ga4_traffic_daily WHERE is_registered_campaign"
        ).fetchall()
        (campaigns,) = con.sql("SELECT sum(sessions), sum(key_events) FROM fct_campaign_daily").fetchall()
    # organic and direct traffic are rows of their own, and much of the traffic
    assert kinds["(organic)"] > 0 and kinds["(direct)"] > 0
    # the registered rows are exactly what the campaign marts count
    assert registered[0] == campaigns[0] and registered[1] == pytest.approx(campaigns[1])


# Rows a real GA4 property's export holds and the demo market does not: GA4's own odd values, referral and organic
# traffic from other engines, a paid campaign nobody registered, and a registered campaign spelled in another case.
# (channel group, source / medium, campaign name, device) — "smart tv" keeps them apart from the demo's own rows.
EXPORT_ROWS = [
    ("Unassigned", "(data deleted)", "(data deleted)", "desktop"),
    ("<Other>", "<Other>", "<Other>", "desktop"),
    ("Referral", "example.com / referral", "(referral)", "mobile"),
    ("Organic Search", "bing / organic", "(organic)", "mobile"),
    ("Direct", "(direct) / (none)", "(direct)", "smart tv"),
    ("Paid Search", "google / cpc", "Search | Spring Sale (not registered)", "mobile"),
    ("Paid Search", "google / cpc", "search | brand", "smart tv"),  # campaign 101, lower case
]
EXPORT_SESSIONS = 7  # every metric of every added row (sessions, users, new users, key events, revenue)


class _RealPropertyGA4(DemoGA4Resource):
    """The demo property with a real property's odd rows added to every day of the first page of each report."""

    def _run_report(self, request: RunReportRequest) -> RunReportResponse:
        response = super()._run_report(request)
        pb = RunReportResponse.pb(response)
        if request.offset or not pb.rows:
            return response
        names = [h.name for h in pb.dimension_headers]
        days = {r.dimension_values[names.index("date")].value for r in pb.rows}
        template = pb.rows[0]
        for day in sorted(days):
            for channel, source_medium, campaign, device in EXPORT_ROWS:
                values = {
                    "date": day,
                    "hour": "12",
                    "sessionDefaultChannelGroup": channel,
                    "sessionSourceMedium": source_medium,
                    "sessionCampaignName": campaign,
                    "deviceCategory": device,
                }
                row = pb.rows.add()
                row.CopyFrom(template)
                for i, name in enumerate(names):
                    row.dimension_values[i].value = values[name]
                for metric in row.metric_values:
                    metric.value = str(EXPORT_SESSIONS)
        pb.row_count = len(pb.rows)
        return response


@pytest.fixture
def private(built, tmp_path, monkeypatch) -> dict:
    """A private copy of the built warehouse and world, with the session's resources pointed at it."""
    assert built["result"].success
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(built["tmp"] / "data" / "warehouse.duckdb", data / "warehouse.duckdb")
    shutil.copytree(built["tmp"] / "world", tmp_path / "world")
    monkeypatch.setenv("GAELP_DATA_DIR", str(data))
    ga4 = built["resources"]["ga4"]
    world = {"world_dir": str(tmp_path / "world"), "world_file": ga4.world_file, "seed": ga4.seed}
    resources = {
        **built["resources"],
        "ga4": DemoGA4Resource(**world),
        "duckdb": DuckDBResource(database=str(data / "warehouse.duckdb")),
    }
    return {"data": data, "world": world, "resources": resources}


def test_a_real_property_export_reconciles_and_the_unmapped_paid_campaign_is_named(private):
    first, last = "2025-01-20", LAST  # the GA4 reports of these days arrive as a real property would send them
    resources = {**private["resources"], "ga4": _RealPropertyGA4(**private["world"])}
    ga4 = [a for a in INGESTION_ASSETS if a.key.path[-1].startswith("ga4_")]
    assert dg.materialize(ga4, resources=resources, tags=partition_range(first, last)).success
    result = dg.materialize(WAREHOUSE_ASSETS, resources=resources, tags=RANGE, raise_on_error=False)

    assert result.success  # the reconciliation is an error-severity test: it passed
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[RECONCILIATION].passed
    unmapped = checks[UNMAPPED]
    assert not unmapped.passed and unmapped.severity == dg.AssetCheckSeverity.WARN
    # the run re-pulled its lookback too: the reports of 2025-01-17 .. 2025-01-29 came from the "real" property
    seen = dt.date.fromisoformat(first) - dt.timedelta(days=LOOKBACK_DAYS)
    days = (dt.date.fromisoformat(last) - seen).days + 1
    listed = unmapped.metadata["unmapped_paid_campaigns"]
    assert isinstance(listed, dg.TableMetadataValue)
    rows = [r.data for r in listed.records]
    assert rows == [
        {
            "source_medium": "google / cpc",
            "campaign_name": "Search | Spring Sale (not registered)",
            "first_seen": seen.isoformat(),
            "last_seen": "2025-01-29",
            "sessions": days * EXPORT_SESSIONS,
        }
    ]
    assert unmapped.metadata["unmapped_paid_campaigns_sessions"].value == days * EXPORT_SESSIONS

    with _con(private["data"] / "published" / "warehouse.duckdb") as con:
        mart = {
            r[0]: r[1:]
            for r in con.sql(
                "SELECT campaign_name, is_registered_campaign, is_paid_source_medium, platform, campaign_id, "
                "sum(sessions), sum(key_events), count(DISTINCT date) FROM fct_ga4_traffic_daily "
                "WHERE source_medium IN ('(data deleted)', '<Other>', 'example.com / referral', 'bing / organic') "
                "OR campaign_name IN ('Search | Spring Sale (not registered)', 'search | brand') GROUP BY ALL"
            ).fetchall()
        }
    odd = days * EXPORT_SESSIONS
    assert mart["(data deleted)"] == (False, False, None, None, odd, odd, days)
    assert mart["<Other>"] == (False, False, None, None, odd, odd, days)
    assert mart["(referral)"] == (False, False, None, None, odd, odd, days)
    assert mart["(organic)"] == (False, False, None, None, odd, odd, days)  # bing / organic only
    assert mart["Search | Spring Sale (not registered)"] == (False, True, None, None, odd, odd, days)
    assert mart["search | brand"] == (True, True, "google_ads", 101, odd, odd, days)


def _dbt(*args: str) -> subprocess.CompletedProcess:
    """The dbt CLI on the warehouse GAELP_DATA_DIR points at, as the warehouse asset runs it (no vars), with its
    target and logs under that data directory: the project's own target/ holds the manifest the definitions load,
    which a test must not rewrite (and a second call reuses the first one's parse)."""
    out = str(Path(os.environ["GAELP_DATA_DIR"]) / "dbt")
    command = [str(Path(sys.executable).parent / "dbt"), *args, "--target", "demo", "--target-path", out]
    command += ["--log-path", out, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    return subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, check=False)


LOSSES = {
    # a row the mart lost (e.g. a join that drops null keys or an inner join on campaigns)
    "row_lost": "DELETE FROM fct_ga4_traffic_daily WHERE rowid = (SELECT min(rowid) FROM fct_ga4_traffic_daily "
    "WHERE date = '2025-01-10' AND campaign_name = '(organic)' AND sessions > 0)",
    # a row counted twice (e.g. a campaign matched twice)
    "row_counted_twice": "INSERT INTO fct_ga4_traffic_daily SELECT * FROM fct_ga4_traffic_daily "
    "WHERE date = '2025-01-10' AND is_registered_campaign AND sessions > 0 LIMIT 1",
}


@pytest.mark.parametrize("fault", sorted(LOSSES))
def test_the_reconciliation_fails_on_the_day_a_row_is_lost_or_counted_twice(private, fault):
    select = ["--select", RECONCILIATION]
    passed = _dbt("test", *select)
    assert passed.returncode == 0, passed.stdout[-2000:]
    with duckdb.connect(str(private["data"] / "warehouse.duckdb")) as con:
        con.execute(LOSSES[fault])
    failed = _dbt("test", *select, "--store-failures")
    assert failed.returncode == 1, failed.stdout[-2000:]
    assert f"Failure in test {RECONCILIATION}" in failed.stdout
    with _con(private["data"] / "warehouse.duckdb") as con:
        stored = f"main_dbt_test__audit.{RECONCILIATION}"
        (day, diff), *more = con.sql(f"SELECT date::VARCHAR, mart_sessions - staged_sessions FROM {stored}").fetchall()
    assert (day, more) == ("2025-01-10", [])
    assert diff < 0 if fault == "row_lost" else diff > 0
