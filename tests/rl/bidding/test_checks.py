"""The guardrail checks: each names its failures, and every plan that passes them satisfies the bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from rl.bidding.checks import CHECKS, PlanLimits, passes, run_checks
from rl.bidding.platform_rules import PLATFORM_RULES, whole_cents

CAMPAIGNS = {("google_ads", 101): "enabled", ("meta", 201): "enabled", ("tiktok", 301): "paused"}
LIMITS = PlanLimits(500.0, {k: 10.0 for k in CAMPAIGNS}, max_step=0.2, budget_floor=6.25)


@dataclass
class Row:
    platform: str
    campaign_id: int
    daily_budget: float | None
    bid: float | None
    current_budget: float | None
    current_bid: float | None
    device_modifiers: tuple | None = None
    hour_modifiers: tuple | None = None
    current_device_modifiers: tuple | None = None
    current_hour_modifiers: tuple | None = None


def ok_rows() -> list[Row]:
    return [Row("google_ads", 101, 200.0, 3.0, 190.0, 2.9), Row("meta", 201, 250.0, 9.0, 260.0, 8.5)]


def failed(rows, limits=LIMITS) -> set[str]:
    return {name for name, fails in run_checks(rows, limits, CAMPAIGNS).items() if fails}


def test_a_sound_plan_passes_every_check():
    results = run_checks(ok_rows(), LIMITS, CAMPAIGNS)
    assert list(results) == list(CHECKS) and passes(results)


def test_each_bound_has_its_named_failure():
    rows = ok_rows()
    rows[0].daily_budget = 228.0  # +20% of 190 is 228: fine
    assert not failed(rows)
    rows[1].daily_budget = 272.01  # total 500.01
    assert "total_within_account_budget" in failed(rows)
    rows = ok_rows()
    rows[1].bid, rows[1].current_bid = 10.01, 9.5
    assert failed(rows) == {"bids_within_max_bid"}
    rows = ok_rows()
    rows[0].bid = 3.49  # 2.9 * 1.2 = 3.48
    assert failed(rows) == {"changes_within_daily_step"}
    rows = ok_rows()
    rows[0].daily_budget = 151.99  # 190 * 0.8 = 152
    assert failed(rows) == {"changes_within_daily_step"}
    rows = ok_rows() + [Row("tiktok", 301, 30.0, 5.0, 30.0, 5.0)]
    assert failed(rows) == {"campaigns_known_and_enabled"}
    rows = ok_rows() + [Row("tiktok", 999, 10.0, 5.0, 10.0, 5.0)]
    assert "campaigns_known_and_enabled" in failed(rows)
    rows = ok_rows()
    rows[0].bid = float("nan")
    assert "no_nan" in failed(rows)
    results = run_checks(rows, LIMITS, CAMPAIGNS)
    assert "google_ads/101" in results["no_nan"][0].message


def test_sub_cent_values_and_budgets_under_the_platform_minimum_are_refused():
    """Issue 15: plans accepted sub-cent and zero budgets that Meta and TikTok refuse."""
    campaigns = {**CAMPAIGNS, ("tiktok", 301): "enabled"}
    limits = PlanLimits(500.0, {k: 30.0 for k in campaigns}, max_step=1.0, budget_floor=6.25)

    def fails(row):
        return run_checks([row], limits, campaigns)["within_platform_rules"]

    assert fails(Row("meta", 201, 10.005, 9.0, 10.0, 9.0))[0].message == (
        "meta/201: budget 10.005 is not a whole number of cents"
    )
    assert (
        "below meta's minimum daily budget 1.00 (and 0 is not accepted)"
        in fails(Row("meta", 201, 0.0, 9.0, 1.0, 9.0))[0].message
    )
    assert "below tiktok's minimum daily budget 20.00" in fails(Row("tiktok", 301, 19.99, 9.0, 20.0, 9.0))[0].message
    assert "bid 2.345 is not a whole number of cents" in fails(Row("google_ads", 101, 5.0, 2.345, 5.0, 2.3))[0].message
    assert not fails(Row("google_ads", 101, 0.0, 2.0, 1.0, 2.0))  # Google takes a budget of 0 (sent as 0)
    assert not fails(Row("tiktok", 301, 20.0, 9.0, 20.0, 9.0))


def test_a_zero_budget_may_restart_by_the_floor_and_an_over_cap_bid_may_drop_to_the_cap():
    rows = [Row("google_ads", 101, 7.5, 10.0, 0.0, 14.0)]  # floor 6.25 * 0.2 = 1.25 → 1.25 allowed; 7.5 is not
    assert failed(rows) == {"changes_within_daily_step"}
    rows = [Row("google_ads", 101, 1.25, 10.0, 0.0, 14.0)]  # bid 14 → the cap 10 (the hard cap wins over the band)
    assert not failed(rows)


values = st.one_of(
    st.none(), st.floats(min_value=-10, max_value=1000), st.sampled_from([float("nan"), float("inf"), 0.0, 500.0])
)
rows_strategy = st.lists(
    st.builds(
        Row,
        st.sampled_from(["google_ads", "meta", "tiktok", "microsoft_ads"]),
        st.sampled_from([101, 201, 301, 401]),
        values,
        values,
        values,
        values,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(rows=rows_strategy, step=st.sampled_from([0.0, 0.1, 0.2, 0.5]))
def test_no_plan_that_passes_the_checks_exceeds_the_budget_the_max_bid_or_the_step(rows, step):
    limits = PlanLimits(500.0, {k: 10.0 for k in CAMPAIGNS}, max_step=step, budget_floor=6.25)
    if not passes(run_checks(rows, limits, CAMPAIGNS)):
        return
    cent = 0.01 + 1e-9  # pushes round to the cent: bands are widened outwards to whole cents
    assert sum(r.daily_budget for r in rows) <= 500.0 + 0.005 * len(rows)
    for r in rows:
        assert CAMPAIGNS[(r.platform, r.campaign_id)] == "enabled"
        rule = PLATFORM_RULES[r.platform]
        if r.daily_budget != r.current_budget:  # what is sent is what the platform takes
            assert whole_cents(r.daily_budget)
            assert r.daily_budget >= rule.min_budget or (r.daily_budget == 0 and rule.zero_budget_allowed)
        if r.bid != r.current_bid:
            assert whole_cents(r.bid) and r.bid >= rule.min_bid
        assert all(math.isfinite(v) for v in (r.daily_budget, r.bid, r.current_budget, r.current_bid))
        assert r.bid <= 10.0 + 0.005
        assert abs(r.daily_budget - r.current_budget) <= step * max(r.current_budget, 6.25) + cent
        if r.current_bid <= 10.0:
            assert abs(r.bid - r.current_bid) <= step * r.current_bid + cent
        else:
            assert r.bid <= r.current_bid


def test_modifiers_only_where_the_platform_has_them_within_its_range_and_the_step():
    rows = ok_rows()
    rows[0].device_modifiers, rows[0].current_device_modifiers = (1.2, 1.0, 0.0), (1.0, 1.0, 0.0)
    rows[0].hour_modifiers, rows[0].current_hour_modifiers = (0.9, 1, 1, 1, 1, 1.1), (1.0,) * 6
    assert not failed(rows)
    rows[0].device_modifiers = (1.21, 1.0, 0.0)  # +20% of 1.00 is 1.20
    assert failed(rows) == {"modifiers_within_rules"}
    rows[0].device_modifiers = (1.2, 1.0, 0.02)  # from 0 the band is ±20% of 0.1
    assert not failed(rows)
    rows[0].hour_modifiers, rows[0].current_hour_modifiers = (0.09, 1, 1, 1, 1, 1), (0.1, 1, 1, 1, 1, 1)
    message = run_checks(rows, LIMITS, CAMPAIGNS)["modifiers_within_rules"][0].message
    assert "google_ads/101: h00_04 modifier 0.09 is outside google_ads's range [0.1, 10]" in message
    rows = ok_rows()
    rows[1].device_modifiers = (1.0, 1.0, 1.0)
    message = run_checks(rows, LIMITS, CAMPAIGNS)["modifiers_within_rules"][0].message
    assert "meta/201: meta has no device or hour-of-day bid modifiers" in message
    rows = ok_rows()
    rows[0].device_modifiers = (1.005, 1.0, 1.0)
    assert "not a whole percentage point" in run_checks(rows, LIMITS, CAMPAIGNS)["modifiers_within_rules"][0].message


def test_the_highest_cell_bids_within_the_max_bid():
    rows = ok_rows()
    rows[0].bid, rows[0].current_bid = 8.0, 8.0  # max bid 10
    rows[0].device_modifiers = (1.2, 1.0, 1.0)
    rows[0].hour_modifiers = (1.1, 1, 1, 1, 1, 1)
    results = run_checks(rows, LIMITS, CAMPAIGNS)
    assert [f.message for f in results["bids_within_max_bid"]] == [
        "google_ads/101: bid 8.00 with its modifiers bids up to 10.56 in its highest device and hour block, above "
        "the max bid 10.00"
    ]
    rows[0].bid = 7.57  # 10 / 1.32 = 7.575…: the cap wins over the step band (8.00 → 7.57 is within it anyway)
    assert not failed(rows)
    rows[0].current_bid = 9.99  # 9.99 -> 7.57 is more than 20% down, but the cap wins
    assert not failed(rows)
