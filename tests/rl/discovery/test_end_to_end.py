"""End to end: a year of the demo market ingested and built into marts (the ingestion assets' reports, parsers and
writes, then the dbt build: `tests.builders.build_long_warehouse`), then discovery on a read-only connection to the
(published) warehouse finds the structure planted in the world — from observable data alone.

The world's true parameters are read here only to score the result; `discover` never sees them.

Why a year and not a few months: tablets are 3% of sessions and the account converts ~7 sessions a day, so over
120 days the tablet rate rests on ~25 key events and the posterior probability that tablet beats mobile is only
~0.8 — the ranking check would pass or fail by the luck of the seed. Over a year it is ~0.9+.
"""

from __future__ import annotations

import datetime as dt
import time

import duckdb
import numpy as np
import pytest
from scipy.stats import spearmanr

from rl.discovery.drift import drift, exceeds
from rl.discovery.engine import discover
from rl.discovery.plots import plot_patterns
from rl.discovery.schema import DiscoveredPatterns
from rl.market.params import DEVICES, MarketParams

pytestmark = pytest.mark.slow

FIRST, DAYS = dt.date(2024, 11, 26), 365  # the default world's history starts on FIRST
LAST = FIRST + dt.timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, reference_params):
    """A year of the default world (full volume, seed 0): the ingestion assets' reports and writes, the dbt build and
    the published copy, without a Dagster run over 365 partitions (`tests.builders.build_long_warehouse`)."""
    from tests.builders import build_long_warehouse, demo_resources

    tmp = tmp_path_factory.mktemp("discovery")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    resources = demo_resources(tmp, reference_params, scale=1.0, seed=0)
    # Discovery reads the published copy, as the Dagster discovery asset does.
    yield build_long_warehouse(resources, FIRST.isoformat(), LAST.isoformat())
    mp.undo()


@pytest.fixture(scope="module")
def found(warehouse) -> tuple[DiscoveredPatterns, float]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        started = time.perf_counter()
        patterns = discover(con)
        return patterns, time.perf_counter() - started


def _search_campaigns(params: MarketParams) -> list[str]:
    kinds = {p.name: p.kind for p in params.platforms}
    return [f"{c.platform}:{c.id}" for c in params.campaigns if kinds[c.platform] == "search"]


def _true_peak_hours(params: MarketParams) -> set[int]:
    """Hours where a search platform's hour_profile is at its maximum."""
    peaks = set()
    for p in params.platforms:
        if p.kind == "search":
            top = max(p.hour_profile)
            peaks |= {h for h, v in enumerate(p.hour_profile) if v == top}
    return peaks


def _near(hour: int, hours: set[int], tolerance: int) -> bool:
    return any(min(abs(hour - h), 24 - abs(hour - h)) <= tolerance for h in hours)


def test_discovery_covers_the_window_quickly(found):
    patterns, seconds = found
    assert patterns.data_window.last_date == LAST
    assert patterns.data_window.days >= DAYS
    assert seconds < 30
    assert DiscoveredPatterns.from_json(patterns.to_json()) == patterns


def test_search_demand_peaks_at_the_planted_hours(found, reference_params):
    """The hour profile of search auctions (impressions / impression share — demand before competition and budget
    stops act) peaks at the platforms' planted peak hours, for every search campaign and for paid search."""
    patterns, _ = found
    truth = _true_peak_hours(reference_params)
    assert truth == {20, 21}
    search = _search_campaigns(reference_params)
    for key in search:
        p = patterns.hour_of_day.get("campaign", key, "auctions")
        assert _near(p.peak_hour, truth, 1), (key, p.peak_hour, truth)
    group = patterns.hour_of_day.get("channel_group", "Paid Search", "auctions")
    assert _near(group.peak_hour, truth, 1) and all(_near(h, truth, 1) for h in group.peak_hours_90)


def test_search_clicks_peak_in_the_evening_but_earlier_than_demand(found, reference_params):
    """Clicks are demand × the auctions won: rivals bid up to 20% more late at night, so the paid-search click peak
    comes an hour or two before the demand peak (and a competitive campaign's click profile can be flat all day),
    which is why the planted hours are checked on auctions above."""
    patterns, _ = found
    truth = _true_peak_hours(reference_params)
    clicks = patterns.hour_of_day.get("channel_group", "Paid Search", "clicks")
    assert _near(clicks.peak_hour, truth, 2), clicks.peak_hour
    assert clicks.peak_hour <= max(truth)
    evening = sum(clicks.shares[h] for h in range(17, 23))
    assert evening > 6 / 24 * 1.2  # the evening holds clearly more than its flat share


def test_the_device_ranking_matches_the_planted_conversion_multipliers(found, reference_params):
    patterns, _ = found
    truth = [DEVICES[i] for i in np.argsort(-np.array(reference_params.device_cvr_mult), kind="stable")]
    assert truth == ["desktop", "tablet", "mobile"]
    account = patterns.devices.get()
    assert account.ranking == truth
    assert account.ranking_probability > 0.5
    for d in account.devices:
        assert d.interval.lo < d.conversion_rate < d.interval.hi


def test_campaigns_ordered_by_lag_follow_their_buyer_mix(found, reference_params):
    """The mean lag a campaign shows follows from which buyers it reaches: each segment's share of the campaign's
    conversions (mix × CTR multiplier × conversion rate) times the middle of that segment's lag range."""
    patterns, _ = found
    seg = {s.name: s for s in reference_params.segments}
    implied = {}
    for c in reference_params.campaigns:
        w = {s: share * seg[s].ctr_mult * seg[s].cvr for s, share in c.segment_mix.items()}
        mid = {s: (seg[s].lag_days_min + seg[s].lag_days_max) / 2 for s in w}
        implied[f"{c.platform}:{c.id}"] = sum(w[s] * mid[s] for s in w) / sum(w.values())
    observed = {c.campaign: c.mean_lag_days for c in patterns.conversion_lag.campaigns}
    keys = sorted(implied)
    rho = spearmanr([implied[k] for k in keys], [observed[k] for k in keys]).statistic
    assert rho >= 0.6, (rho, patterns.conversion_lag.order)


def test_segments_separate_fast_converting_buyers_from_slow_ones(found):
    """The planted buyer segments tie conversion rate to lag (crisis parents convert most, soonest): the segment
    with the higher conversion rate has the shorter lag."""
    patterns, _ = found
    segs = patterns.segments.segments
    assert patterns.segments.choice.chosen_k >= 2
    by_cvr = sorted(segs, key=lambda s: s.conversion_rate, reverse=True)
    assert by_cvr[0].mean_lag_days < by_cvr[-1].mean_lag_days
    assert "google_ads:101/desktop" in {m.unit for m in by_cvr[0].members}  # brand search on desktop


def test_cpa_intervals_and_plot(found, tmp_path):
    patterns, _ = found
    for c in patterns.channels.campaigns:
        assert c.cpa is not None and c.cpa_interval.lo < c.cpa < c.cpa_interval.hi
    assert patterns.channels.cpa_ranking[0] in {"google_ads:101", "meta:202"}  # brand and retargeting are cheapest
    assert plot_patterns(patterns, tmp_path / "p.png").stat().st_size > 10_000
    assert exceeds(drift(patterns, patterns)) == []
