"""Each discovery section finds what was planted in small hand-made mart frames."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import polars as pl
import pytest

from rl.discovery.engine import discover, discover_marts
from rl.discovery.marts import Calendar
from rl.discovery.performance import channels_section, conversion_lag_section, devices_section
from rl.discovery.profiles import day_of_week_section, hour_of_day_section, hour_profile
from rl.discovery.segments import segment_units, segments_section
from tests.rl.discovery.synthetic import Planted, synthetic_marts, to_duckdb

FIRST = dt.date(2025, 1, 6)  # a Monday


@pytest.fixture(scope="module")
def marts():
    return synthetic_marts(120, seed=3)


def cal(days: int) -> Calendar:
    return Calendar(first=FIRST, days=days)


# ------------------------------------------------------------------------------------------------------ hour of day


@pytest.mark.parametrize("peak", [3, 14, 21])
def test_a_planted_peak_hour_is_found_with_high_probability(peak):
    m = synthetic_marts(60, planted=Planted(peak_hour=peak), seed=peak)
    hod = hour_of_day_section(m.hourly, m.campaigns, cal(60), n_bootstrap=200, seed=0)
    for scope, key in [("account", "all"), ("campaign", "google_ads:1"), ("channel_group", "Paid Social")]:
        p = hod.get(scope, key, "clicks")
        assert abs(p.peak_hour - peak) <= 1
        assert peak in p.peak_hours_90 or p.peak_hour in p.peak_hours_90
        assert sum(p.shares) == pytest.approx(1.0)
        assert all(lo <= s <= hi for lo, s, hi in zip(p.shares_lo, p.shares, p.shares_hi, strict=True))
    assert hod.get("account", "all", "clicks").peak_probability > 0.5


def test_auctions_are_reported_for_search_only():
    m = synthetic_marts(30, seed=1)
    hod = hour_of_day_section(m.hourly, m.campaigns, cal(30), n_bootstrap=50)
    assert hod.get("campaign", "google_ads:1", "auctions").peak_hour == 14
    assert hod.get("channel_group", "Paid Search", "auctions")
    with pytest.raises(KeyError):
        hod.get("campaign", "meta:3", "auctions")
    with pytest.raises(KeyError):
        hod.get("account", "all", "auctions")  # the account mixes in social, which reports no share


def test_auctions_treat_hours_after_a_budget_stop_as_unobserved_not_zero():
    """Demand peaks at 20h, but on most days the budget runs out at 17h: clicks peak early, auctions do not."""
    days, rng = 200, np.random.default_rng(0)
    demand = np.array([0.2] * 6 + [1.0] * 12 + [1.5, 1.8, 2.0, 1.8, 1.2, 0.6])
    stop = np.where(rng.random(days) < 0.7, 17, 24)  # hours ≥ stop have no delivery that day
    elig = rng.poisson(1000 * demand[None, :] * np.ones((days, 1))).astype(float)
    served = np.arange(24)[None, :] < stop[:, None]
    impressions = np.where(served, elig * 0.4, 0.0)
    rows = [(FIRST + dt.timedelta(days=int(d)), int(h)) for d in range(days) for h in range(24) if served[d, h]]
    hourly = pl.DataFrame(
        {
            "date": [r[0] for r in rows],
            "hour": [r[1] for r in rows],
            "platform": "google_ads",
            "campaign_id": 1,
            "impressions": impressions[served],
            "clicks": impressions[served] * 0.05,
            "conversions": 0.0,
            "sessions": 0.0,
            "impression_share": 0.4,
        }
    )
    campaigns = pl.DataFrame({"platform": ["google_ads"], "campaign_id": [1], "campaign_name": ["S"]})
    hod = hour_of_day_section(hourly, campaigns, cal(days), n_bootstrap=100)
    assert hod.get("campaign", "google_ads:1", "clicks").peak_hour < 17
    auctions = hod.get("campaign", "google_ads:1", "auctions")
    assert auctions.peak_hour == 20
    truth = demand / demand.sum()
    assert 0.5 * np.abs(np.array(auctions.shares) - truth).sum() < 0.02


def test_hour_profile_of_nothing_is_none():
    assert hour_profile("account", "all", "clicks", np.zeros((5, 24))) is None


# ------------------------------------------------------------------------------------------------------ day of week


def test_a_planted_weekday_profile_survives_a_trend(marts):
    m = synthetic_marts(210, seed=5, trend_per_day=0.004)  # +84% over the window
    dow = day_of_week_section(m.daily, m.campaigns, cal(210), m.hourly)
    planted = np.array(Planted().dow) / np.mean(Planted().dow)
    p = dow.get("account", "all", "clicks")
    assert p.trough_day == "Saturday"
    assert np.abs(np.array(p.index) - planted).max() < 0.04
    assert np.mean(p.index) == pytest.approx(1.0)
    inside = [lo <= t <= hi for lo, t, hi in zip(p.index_lo, planted, p.index_hi, strict=True)]
    assert sum(inside) >= 5
    assert dow.get("campaign", "google_ads:2", "auctions").trough_day == "Saturday"


# ---------------------------------------------------------------------------------------------------------- devices


def test_a_planted_device_ranking_is_found_with_intervals(marts):
    dev = devices_section(marts.device, marts.campaigns, seed=0)
    account = dev.get()
    assert account.ranking == ["desktop", "tablet", "mobile"]
    assert account.ranking_probability > 0.95
    assert [d.rank for d in account.devices] == [1, 2, 3]
    for d in account.devices:
        assert d.interval.lo < d.conversion_rate < d.interval.hi
    assert sum(d.session_share for d in account.devices) == pytest.approx(1.0)
    assert {g.key for g in dev.groups} == {"all", "Paid Search", "Paid Social"}


def test_device_rates_and_jeffreys_interval_on_a_tiny_frame():
    frame = pl.DataFrame(
        {
            "date": [FIRST] * 3,
            "device": ["mobile", "desktop", "tablet"],
            "platform": "google_ads",
            "campaign_id": 1,
            "sessions": [1000.0, 1000.0, 10.0],
            "key_events": [10.0, 40.0, 0.0],
        }
    )
    g = devices_section(frame, pl.DataFrame({"platform": ["google_ads"], "campaign_id": [1]})).get()
    assert g.ranking == ["desktop", "mobile", "tablet"]
    desktop = g.devices[0]
    assert desktop.conversion_rate == pytest.approx(0.04)
    assert desktop.interval.lo == pytest.approx(0.0307, abs=1e-3) and desktop.interval.hi == pytest.approx(
        0.0518, abs=1e-3
    )
    assert g.pairwise[0].probability > 0.99 and g.pairwise[1].probability < 0.95  # 0 of 10 says little


# --------------------------------------------------------------------------------------------------------- channels


def test_cpa_per_campaign_and_platform_with_intervals(marts):
    ch = channels_section(marts.daily, marts.campaigns, mature_days=30)
    assert ch.last_click_date == FIRST + dt.timedelta(days=119 - 30) and not ch.includes_immature_days
    assert ch.cpa_ranking == ["google_ads:1", "meta:3", "google_ads:2"]  # planted: 1/0.05, 0.5/0.01, 2/0.02
    for c, truth in [("google_ads:1", 20.0), ("meta:3", 50.0), ("google_ads:2", 100.0)]:
        s = ch.campaign(c)
        assert s.cpa == pytest.approx(s.spend / s.conversions)
        assert s.cpa_interval.lo < s.cpa < s.cpa_interval.hi
        assert s.cpa_interval.lo < truth * 1.15 and s.cpa_interval.hi > truth * 0.85
    google = next(p for p in ch.platforms if p.key == "google_ads")
    assert google.spend == pytest.approx(ch.campaign("google_ads:1").spend + ch.campaign("google_ads:2").spend)
    assert ch.account.conversions == pytest.approx(sum(c.conversions for c in ch.campaigns))


def test_cpa_interval_widens_with_overdispersion():
    days = [FIRST + dt.timedelta(days=i) for i in range(60)]
    steady = pl.DataFrame(
        {
            "date": days,
            "platform": "meta",
            "campaign_id": 3,
            "spend": 100.0,
            "impressions": 1e4,
            "clicks": 100.0,
            "conversions": 2.0,
            "sessions": 90.0,
            "key_events": 2.0,
        }
    )
    lumpy = steady.with_columns(conversions=pl.Series([0.0, 0.0, 0.0, 8.0] * 15))
    campaigns = pl.DataFrame({"platform": ["meta"], "campaign_id": [3]})
    a = channels_section(steady, campaigns, mature_days=0).campaign("meta:3")
    b = channels_section(lumpy, campaigns, mature_days=0).campaign("meta:3")
    assert a.cpa == b.cpa == pytest.approx(50.0)
    assert b.dispersion > 3 and a.dispersion == 1.0
    assert (b.cpa_interval.hi - b.cpa_interval.lo) > 1.5 * (a.cpa_interval.hi - a.cpa_interval.lo)


def test_a_short_window_keeps_its_immature_days_and_says_so(marts):
    short = marts.daily.filter(pl.col("date") < FIRST + dt.timedelta(days=40))
    ch = channels_section(short, marts.campaigns, mature_days=30)
    assert ch.includes_immature_days and ch.last_click_date == FIRST + dt.timedelta(days=39)


# --------------------------------------------------------------------------------------------------- conversion lag


def test_planted_lag_order_mean_and_share_within_a_week():
    rows = []
    for cid, buckets in [(1, {(1, 2): 90, (2, 3): 10}), (2, {(7, 8): 50, (14, 21): 50}), (3, {(3, 4): 100})]:
        for order, (lo, hi) in enumerate([(0, 1), (1, 2), (2, 3), (3, 4), (7, 8), (14, 21)], start=1):
            rows.append(("google_ads", cid, f"B{order}", order, float(lo), float(hi), float(buckets.get((lo, hi), 0))))
    rows.append(("google_ads", 2, "UNKNOWN", 98, None, None, 40.0))
    lag = pl.DataFrame(
        rows,
        schema=[
            "platform",
            "campaign_id",
            "conversion_lag_bucket",
            "bucket_order",
            "lag_days_min",
            "lag_days_max",
            "conversions",
        ],
        orient="row",
    )
    campaigns = pl.DataFrame({"platform": ["google_ads"] * 3, "campaign_id": [1, 2, 3]})
    out = conversion_lag_section(lag, campaigns)
    assert out.order == ["google_ads:1", "google_ads:3", "google_ads:2"]
    a, b, c = (out.campaign(f"google_ads:{i}") for i in (1, 2, 3))
    assert a.mean_lag_days == pytest.approx(0.9 * 1.5 + 0.1 * 2.5)
    assert b.mean_lag_days == pytest.approx(0.5 * 7.5 + 0.5 * 17.5) and b.conversions == 100  # UNKNOWN left out
    assert c.mean_lag_interval.lo == c.mean_lag_interval.hi == pytest.approx(3.5)
    assert (a.share_within_7_days, b.share_within_7_days, c.share_within_7_days) == (1.0, 0.0, 1.0)
    assert (a.median_lag_bucket, b.median_lag_bucket) == ("B2", "B5")
    assert [a.rank, c.rank, b.rank] == [1, 2, 3]


def test_a_campaign_without_mature_conversions_has_no_lag_and_no_rank():
    lag = pl.DataFrame(
        {
            "platform": ["meta"],
            "campaign_id": [3],
            "conversion_lag_bucket": ["B1"],
            "bucket_order": [1],
            "lag_days_min": [0.0],
            "lag_days_max": [1.0],
            "conversions": [0.0],
        }
    )
    out = conversion_lag_section(lag, pl.DataFrame({"platform": ["meta"], "campaign_id": [3]}))
    assert out.campaigns[0].mean_lag_days is None and out.campaigns[0].rank is None and out.order == []


# --------------------------------------------------------------------------------------------------------- segments


def _units(centres: list[tuple[float, float]], per: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g, (cvr, lag) in enumerate(centres):
        for i in range(per):
            rows.append(
                {
                    "unit": f"g{g}:{i}/mobile",
                    "campaign": f"g{g}:{i}",
                    "device": "mobile",
                    "sessions": 1000.0,
                    "key_events": 1000.0 * cvr,
                    "conversion_rate": cvr * np.exp(rng.normal(0, 0.05)),
                    "mean_lag_days": lag + rng.normal(0, 0.2),
                }
            )
    return pl.DataFrame(rows)


def test_two_obvious_groups_give_k_2_with_the_right_members():
    units = _units([(0.05, 2.0), (0.01, 10.0)], per=6)
    seg = segments_section(units, seed=0)
    assert seg.choice.chosen_k == 2
    scores = {s.k: s.silhouette for s in seg.choice.scores}
    assert scores[2] == max(v for v in scores.values() if v is not None) and scores[2] > 0.8
    groups = sorted(sorted(m.campaign.split(":")[0] for m in s.members) for s in seg.segments)
    assert groups == [["g0"] * 6, ["g1"] * 6]
    fast = next(s for s in seg.segments if s.members[0].campaign.startswith("g0"))
    assert fast.label == "high conversion rate, short lag" or fast.label == "short lag, high conversion rate"
    assert fast.mean_lag_days == pytest.approx(2.0, abs=0.3) and fast.conversion_rate == pytest.approx(0.05)
    assert "silhouette" in seg.choice.criterion and seg.choice.features == ["conversion_rate", "mean_lag_days"]


def test_three_groups_give_k_3_and_clustering_is_deterministic():
    units = _units([(0.05, 2.0), (0.02, 6.0), (0.005, 12.0)], per=5, seed=1)
    a, b = segments_section(units, seed=7), segments_section(units, seed=7)
    assert a.choice.chosen_k == 3 and a == b


def test_segment_units_are_campaign_by_device_with_shrunk_rates(marts):
    lag = conversion_lag_section(marts.lag, marts.campaigns)
    units, excluded = segment_units(marts.device, marts.daily, marts.hourly, lag, marts.campaigns)
    assert units.height == 9 and excluded == []
    assert set(units["device"]) == {"mobile", "desktop", "tablet"}
    row = units.filter(pl.col("unit") == "google_ads:1/desktop").row(0, named=True)
    raw = row["key_events"] / row["sessions"]
    campaign = units.filter(pl.col("campaign") == "google_ads:1")
    pooled = campaign["key_events"].sum() / campaign["sessions"].sum()
    assert min(raw, pooled) <= row["conversion_rate"] <= max(raw, pooled)


def test_too_few_units_make_one_segment():
    seg = segments_section(_units([(0.05, 2.0)], per=2), seed=0)
    assert seg.choice.chosen_k == 1 and seg.segments[0].size == 2


# ------------------------------------------------------------------------------------------------------ whole thing


def test_discover_reads_the_marts_through_duckdb_and_is_deterministic(marts):
    con = to_duckdb(marts)
    a, b = discover(con, seed=4), discover(con, seed=4)
    assert a == b
    assert a == discover_marts(marts, seed=4)
    assert a.data_window.days == 120 and a.data_window.first_date == FIRST
    assert a.campaigns == ["google_ads:1", "google_ads:2", "meta:3"]
    assert set(a.source_tables) == {
        "dim_campaign",
        "fct_campaign_daily",
        "fct_campaign_hourly",
        "fct_conversion_lag",
        "fct_device_daily",
    }
    assert (
        a.segments.segment_of("google_ads:1/desktop").conversion_rate
        > a.segments.segment_of("meta:3/mobile").conversion_rate
    )


def test_two_years_of_marts_are_discovered_well_within_30_seconds():
    planted = Planted(
        campaigns=tuple(
            (p, 10 + i, f"C{i}", g, 150.0 + 40 * i, 1.0 + 0.2 * i, 0.01 + 0.005 * i, i)
            for i, (p, g) in enumerate([("google_ads", "Paid Search")] * 4 + [("meta", "Paid Social")] * 4)
        )
    )
    con = to_duckdb(synthetic_marts(730, planted=planted, seed=2))
    started = time.perf_counter()
    p = discover(con)
    elapsed = time.perf_counter() - started
    assert p.data_window.days == 730 and len(p.campaigns) == 8
    assert elapsed < 30, f"discovery took {elapsed:.1f} s"
