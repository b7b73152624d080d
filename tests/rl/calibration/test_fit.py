"""Calibration estimators on data whose answer is known, and the clear errors / flagged priors on bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

from rl.account import AccountSettings
from rl.bidding.plan import Reference
from rl.bidding.planner import PlanSettings, guardrail_limits
from rl.calibration import data as calibration_data
from rl.calibration import priors
from rl.calibration.auction import _Sample, predict
from rl.calibration.backtest import BacktestResult
from rl.calibration.data import CalibrationError
from rl.calibration.estimators import lag_weights
from rl.calibration.fit import WIDE, calibrate
from rl.calibration.measures import segment_mean_lag
from rl.calibration.response import ResponseModels
from rl.calibration.rivals import fit_rivals
from rl.env.guardrails import GuardrailLimits
from rl.market.engine import LAG_SKEW


def _bucket_shares(weights: dict[tuple[int, int], float]) -> pl.DataFrame:
    """fct_conversion_lag rows for a mix of basis segments under the engine's lag law."""
    lo = list(range(14)) + [14, 21]
    hi = list(range(1, 15)) + [21, 30]
    conv = np.zeros(len(lo))
    for (a, b), w in weights.items():
        span = b - a + 1
        for k in range(span):
            p = ((k + 1) / span) ** (1 / LAG_SKEW) - (k / span) ** (1 / LAG_SKEW)
            day = a + k
            conv[next(i for i, (x, y) in enumerate(zip(lo, hi, strict=True)) if x <= day < y)] += 1000 * w * p
    return pl.DataFrame({"lag_days_min": lo, "lag_days_max": hi, "conversions": conv})


def test_lag_mixture_recovers_the_basis_weights():
    truth = {(0, 1): 0.2, (3, 7): 0.5, (7, 21): 0.3}
    fitted = lag_weights(_bucket_shares(truth))
    assert fitted.keys() == truth.keys()
    for k, w in truth.items():
        assert fitted[k] == pytest.approx(w, abs=1e-6)
    mean = sum(w * segment_mean_lag(*k) for k, w in fitted.items())
    assert mean == pytest.approx(sum(w * segment_mean_lag(*k) for k, w in truth.items()))


def test_rival_fit_recovers_the_rivals_that_generated_the_reports():
    s = priors.structure("google_ads")
    hour_w = np.full(24, 1 / 24)
    median, sigma, n = 3.0, 0.35, 4
    bids = np.array([2.0, 2.5, 3.0, 3.5, 4.0, 5.0])
    p = predict(s, _Sample(n, seed=99).z, np.log(median), sigma, bids, np.ones(24), hour_w)  # other draws than the fit
    opps, k = 5000.0, 0.05
    daily = pl.DataFrame(
        {
            "bid": bids,
            "daily_budget": np.full(len(bids), 1e6),  # never binding
            "impressions": opps * p["shown"],
            "clicks": opps * k * p["clicks"],
            "spend": opps * k * p["cost"],
            "impression_share": p["shown"],
        }
    )
    hourly = pl.DataFrame({"hour": list(range(24)), "spend": [1.0] * 24, "clicks": [100.0] * 24})
    fit = fit_rivals(s, daily, hourly, hour_w)
    fitted = predict(s, _Sample(4, seed=99).z, fit.log_median, fit.sigma, bids, fit.hour_mult, hour_w)
    np.testing.assert_allclose(fitted["shown"], p["shown"], atol=0.03)
    assert fit.median == pytest.approx(median, rel=0.1)


def test_too_little_history_is_a_clear_error(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "create table fct_campaign_daily as select date '2025-01-01' + cast(i as integer) as date, 100 as impressions "
        "from range(5) t(i)"
    )
    with pytest.raises(CalibrationError, match=r"only 5 days of history \(2025-01-01 .. 2025-01-05\)"):
        calibration_data.load(con, days=365)


def test_an_empty_warehouse_is_a_clear_error(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(CalibrationError, match="no marts yet"):
        calibration_data.load(con)


@pytest.fixture(scope="module")
def window(response_warehouse):
    with duckdb.connect(str(response_warehouse), read_only=True) as con:
        return calibration_data.load(con, days=60)


def test_a_campaign_without_clicks_gets_a_flagged_wide_prior(window):
    silent = pl.col("campaign_id") == 104
    zero = {c: pl.when(silent).then(0).otherwise(pl.col(c)).alias(c) for c in ("impressions", "clicks", "spend")}
    data = calibration_data.CalibrationData(
        window.first,
        window.last,
        window.daily.with_columns(**zero, conversions=pl.when(silent).then(0.0).otherwise(pl.col("conversions"))),
        window.hourly.filter(~silent),
        window.devices,
        window.lag,
        window.campaigns,
        window.organic,
        window.data_end,
        window.ad_devices.with_columns(**zero, conversions=pl.when(silent).then(0.0).otherwise(pl.col("conversions"))),
        window.modifiers,
    )
    cal = calibrate(data, AccountSettings())
    fit = cal.campaigns[104]
    assert any("no clicks" in f for f in fit.flags)
    assert fit.uncertainty["volume"] == WIDE and fit.uncertainty["rival_median"] == WIDE
    assert any(f.startswith("campaign 104:") for f in cal.flags)  # visible at the top level too
    assert cal.params.campaign(104).opportunities_per_day > 0  # a usable, if uncertain, prior
    assert not any("no clicks" in f for c in cal.campaigns.values() if c.campaign_id != 104 for f in c.flags)


def test_backtest_judges_against_the_noise_floor_and_the_total_and_skips_tiny_volumes():
    bt = BacktestResult(
        first=dt.date(2025, 1, 1),
        last=dt.date(2025, 1, 14),
        calibration=None,
        daily=pl.DataFrame(),
        wape={"clicks": {"a": 0.05, "b": 0.30, "c": 0.40}, "conversions": {"a": 0.9, "b": 2.0}},
        floor={"clicks": {"a": 0.05, "b": 0.05, "c": 0.35}, "conversions": {"a": 0.8, "b": 1.0}},
        total_error={"clicks": {"a": 0.08, "b": 0.01, "c": 0.03}, "conversions": {"a": 0.12, "b": 0.9}},
        observed_total={"clicks": {"a": 900, "b": 900, "c": 900}, "conversions": {"a": 80, "b": 10}},
        total_floor={"clicks": {"a": 0.01, "b": 0.01, "c": 0.01}, "conversions": {"a": 0.11, "b": 0.5}},
    )
    # clicks a: WAPE at its floor, but the total 8% off (> 5%); b: WAPE 6 × its floor; c: within 1.15 × its floor
    # and the total within 5%; conversions a: WAPE and total within 1.15 × their noise floors (a few dozen
    # conversions: ±11% is noise); conversions b: too few to judge
    assert bt.failures() == [
        "clicks on a: held-out total off by 8.0% > 5.0%",
        "clicks on b: WAPE 30.0% > 5.8% (1.15 × noise floor)",
    ]


def test_a_response_model_that_does_not_beat_its_baseline_is_not_used(window, response_models):
    """The device conversion multipliers come from the response model only when it beat its frequency baseline on
    held-out days; otherwise from the frequencies, and the flags say so."""
    response = response_models  # fit_response_models with its default holdout (the session's, shared)
    assert response.conversion.usable
    used = calibrate(window, AccountSettings(), response=response)
    assert any("response model's conversion propensity" in f for f in used.flags)
    metrics = {**response.conversion.metrics, "logloss_gain": -0.0002}
    worse = ResponseModels(response.click, dataclasses.replace(response.conversion, metrics=metrics))
    fallback = calibrate(window, AccountSettings(), response=worse)
    assert any("the response model was not used" in f for f in fallback.flags)
    assert fallback.devices.cvr != used.devices.cvr


def test_the_calibrated_market_decodes_and_caps_bids_as_the_plan_does(window):
    """The plan decodes bids from the reference bids (`bid_reference`, recorded when GAELP took over) and caps them
    at the account's `max_bid_multiple` × those; the calibrated market must do the same, or a policy retrained after
    the takeover learns bids the plan reads differently. Before the takeover the reference is the bid in force."""
    account = AccountSettings(max_bid_multiple=3.0)
    first = calibrate(window, account)
    ids = [c.id for c in first.params.campaigns]
    moved = {ids[0]: round(first.params.campaigns[0].current_bid * 0.6, 2)}  # the policy has moved the bid since
    cal = calibrate(window, account, reference_bids=moved)
    for before, after in zip(first.params.campaigns, cal.params.campaigns, strict=True):
        expected = moved.get(after.id, before.current_bid)
        assert after.reference_bid == pytest.approx(expected)
        assert after.current_bid == before.current_bid  # the bid in force is still where episodes start
    reference = np.array([moved.get(c.id, c.current_bid) for c in cal.params.campaigns])
    plan = guardrail_limits(Reference(reference, reference, "test"), PlanSettings(account=account))
    market = GuardrailLimits.from_params(cal.params)
    np.testing.assert_allclose(market.ref_bids, plan.ref_bids)
    np.testing.assert_allclose(
        market.max_bids, np.maximum(plan.max_bids, [c.current_bid for c in cal.params.campaigns]), atol=0.005
    )
