"""The daily report's figures against a hand computation, and its page: the sections, the numbers, nothing fetched
from outside, missing plan or push said in words."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
import pytest

from rl.reporting.daily import ALL_PLATFORMS, cpa
from rl.reporting.page import summary_markdown
from rl.reporting.report import build_report

DAY = dt.date(2025, 3, 10)
TARGET = 80.0


def _row(days_before: int, platform: str, cid: int, spend: float, conv: float, budget: float | None, ke=0.0):
    return {
        "date": DAY - dt.timedelta(days=days_before),
        "platform": platform,
        "campaign_id": cid,
        "campaign_name": None,
        "spend": spend,
        "clicks": spend / 2,
        "conversions": conv,
        "key_events": ke,
        "daily_budget": budget,
    }


@pytest.fixture
def marts() -> pl.DataFrame:
    return pl.DataFrame(
        [
            _row(0, "google_ads", 101, 120.0, 3.0, 150.0, ke=2.0),
            _row(1, "google_ads", 101, 80.0, 1.0, 150.0),
            _row(28, "google_ads", 101, 1000.0, 1.0, 150.0),  # the day before the window: left out
            _row(0, "meta", 201, 50.0, 0.0, 100.0),
            _row(10, "meta", 201, 70.0, 2.0, 100.0, ke=1.0),
        ]
    )


@pytest.fixture
def campaigns() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "platform": ["google_ads", "meta", "tiktok"],
            "campaign_id": [101, 201, 301],
            "campaign_name": ["Search | Brand", "Meta | <Retargeting>", "TikTok | Prospecting"],
            "status": ["enabled", "enabled", "paused"],
        }
    )


def _plan() -> pl.DataFrame:
    base = {
        "plan_date": DAY + dt.timedelta(days=1),
        "bid_kind": "max_cpc",
        "policy_version": "baseline:proportional",
        "policy_source": "fallback",
        "fallback_reason": "no promoted model in the policy registry",
        "account_daily_budget": 500.0,
        "max_step": 0.2,
    }
    return pl.DataFrame(
        [
            {**base, "platform": "google_ads", "campaign_id": 101, "campaign_name": "Search | Brand",
             "daily_budget": 165.0, "bid": 2.2, "current_budget": 150.0, "current_bid": 2.0, "max_bid": 4.0},
            {**base, "platform": "meta", "campaign_id": 201, "campaign_name": "Meta | <Retargeting>",
             "bid_kind": "cpm_cap", "daily_budget": 90.0, "bid": 20.0, "current_budget": 100.0,
             "current_bid": 20.0, "max_bid": 40.0},
        ]
    )  # fmt: skip


def _audit() -> pl.DataFrame:
    t = dt.datetime(2025, 3, 11, 6, 0)
    rows = []
    for n, (push, status) in enumerate([("p1", "applied"), ("p2", "skipped_unchanged")]):
        rows.append(
            {"audit_id": n + 1, "push_id": push, "policy_version": "baseline:proportional", "platform": "google_ads",
             "campaign_id": 101, "field": "budget", "target": "10100", "old_value": 150.0, "new_value": 165.0,
             "mode": "demo", "status": status, "response": "ok", "intended_at_utc": t + dt.timedelta(minutes=n)}
        )  # fmt: skip
    return pl.DataFrame(rows)


def test_cpa_is_spend_over_conversions_and_absent_without_conversions():
    assert cpa(200.0, 4.0) == 50.0
    assert cpa(50.0, 0.0) is None


def test_platform_figures_match_a_hand_computation(marts, campaigns):
    report = build_report(marts, campaigns, None, None, DAY, TARGET)
    rows = {r["platform"]: r for r in report.platforms.iter_rows(named=True)}
    assert list(rows) == ["google_ads", "meta", ALL_PLATFORMS]  # the total last
    google, meta, total = rows["google_ads"], rows["meta"], rows[ALL_PLATFORMS]
    # google: yesterday 120 / 3 = 40; window (the day 28 days back excluded) (120 + 80) / (3 + 1) = 50 = 0.625 × 80
    assert (google["spend_day"], google["conversions_day"], google["cpa_day"]) == (120.0, 3.0, 40.0)
    assert (google["spend_window"], google["conversions_window"], google["cpa_window"]) == (200.0, 4.0, 50.0)
    assert google["cpa_vs_target"] == pytest.approx(0.625)
    # meta: nothing converted yesterday -> no CPA; window (50 + 70) / 2 = 60 = 0.75 × 80
    assert meta["cpa_day"] is None and meta["cpa_window"] == pytest.approx(60.0)
    assert meta["cpa_vs_target"] == pytest.approx(0.75)
    # all: yesterday 170 / 3, window 320 / 6 = 53.33 = 0.667 × 80
    assert total["cpa_day"] == pytest.approx(170 / 3)
    assert total["spend_window"] == 320.0 and total["cpa_window"] == pytest.approx(320 / 6)
    assert total["cpa_vs_target"] == pytest.approx(320 / 6 / 80)
    assert total["key_events_window"] == 3.0


def test_campaign_pacing_and_registry_campaigns_without_rows(marts, campaigns):
    report = build_report(marts, campaigns, None, None, DAY, TARGET)
    rows = {r["campaign_id"]: r for r in report.campaigns.iter_rows(named=True)}
    assert set(rows) == {101, 201, 301}
    assert rows[101]["pacing_day"] == pytest.approx(120 / 150)
    assert rows[201]["pacing_day"] == pytest.approx(50 / 100)
    assert rows[301]["spend_window"] == 0.0 and rows[301]["pacing_day"] is None and rows[301]["status"] == "paused"
    daily = report.daily
    assert daily.height == 28 and daily["date"].min() == DAY - dt.timedelta(days=27)
    assert daily.filter(pl.col("date") == DAY)["budget_in_force"].item() == 250.0
    assert daily.filter(pl.col("date") == DAY - dt.timedelta(days=2))["budget_in_force"].item() is None


def test_the_page_has_every_section_the_numbers_and_nothing_external(marts, campaigns):
    report = build_report(marts, campaigns, _plan(), _audit(), DAY, TARGET)
    page = report.html
    for section in ("platforms", "pacing", "cpa", "campaigns", "plan", "push"):
        assert f'id="{section}"' in page
    for number in ("$170.00", "$56.67", "$320.00", "$53.33", "0.67× target", "$40.00", "$50.00", "0.62× target"):
        assert number in page, number
    assert "80%" in page and "50%" in page  # yesterday's pacing
    assert "no conversions" in page
    # below target: google, meta and all platforms, then campaigns 101 and 201; nothing above it
    assert page.count('class="below"') == 5 and 'class="above"' not in page
    assert "Meta | &lt;Retargeting&gt;" in page and "<Retargeting>" not in page  # escaped
    # the plan and why; the latest push only, the re-push said
    assert "baseline:proportional" in page and "no promoted model in the policy registry" in page
    assert "+10.0%" in page and "-10.0%" in page  # the budgets' change against the settings in force
    assert "pushed 2 times" in page and "skipped_unchanged" in page
    # self-contained: every image inline, no URL to fetch, CSS inline
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) == 3 and all('src="data:image/png;base64,' in i for i in images)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page) and "@import" not in page
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    assert all(png.startswith(b"\x89PNG") for png in report.charts.values())
    assert set(report.charts) == {"spend_pacing", "cpa_vs_target", "campaigns"}


def test_a_missing_plan_and_push_are_said_and_an_empty_window_renders(campaigns):
    marts = pl.DataFrame(
        schema={
            "date": pl.Date, "platform": pl.Utf8, "campaign_id": pl.Int64, "campaign_name": pl.Utf8,
            "spend": pl.Float64, "clicks": pl.Float64, "conversions": pl.Float64, "key_events": pl.Float64,
            "daily_budget": pl.Float64,
        }
    )  # fmt: skip
    report = build_report(marts, campaigns, pl.DataFrame(), None, DAY, TARGET)
    assert "No bid plan is stored for 2025-03-10" in report.html
    assert "No push is recorded for 2025-03-10" in report.html
    assert "no spend reported" not in report.html  # the charts say it in the picture, the tables in words
    total = report.platforms.filter(pl.col("platform") == ALL_PLATFORMS).row(0, named=True)
    assert total["spend_window"] == 0.0 and total["cpa_window"] is None


def test_the_metadata_summary_is_a_markdown_table_without_placeholders(marts, campaigns):
    report = build_report(marts, campaigns, None, None, DAY, TARGET)
    text = summary_markdown(report.platforms, report.window, TARGET)
    lines = text.splitlines()
    assert lines[1].startswith("|---") and len(lines) == 2 + 3
    assert "**all platforms**" in lines[-1] and "$53.33" in lines[-1]
    cells = [c.strip().strip("*") for line in lines[2:] for c in line.strip("|").split("|")]
    assert all(c and c.lower() not in {"none", "nan", "n/a", "null", "inf"} for c in cells), cells
    assert "no conversions" in text  # meta yesterday


def test_a_target_cpa_must_be_positive(marts, campaigns):
    with pytest.raises(ValueError, match="target_cpa"):
        build_report(marts, campaigns, None, None, DAY, 0.0)
