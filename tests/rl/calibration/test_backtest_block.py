"""The blocking backtest check is a test with a stated false-alarm rate: a simulator that is right (its rates
estimated from the training window, as a fit's are) is blocked in at most `alpha` of backtests, and one that is
materially wrong is blocked nearly always. Daily counts are Poisson draws at an account's volumes (four platforms,
a few dozen conversions each over 14 days); spend is set by budgets (a tiny noise floor).

What chance allows at these volumes: the former rule (WAPE above 2 × the noise floor, or a total off by more than
max(15%, 2 × the total's mean absolute noise)) blocked a right simulator in about a third of these backtests (35% of
300); the goal (1.15 ×, 5%) is missed by a right simulator almost always (98%), which is why it only warns. The
test's power: conversions 1.5 × too many are blocked in about 60% of backtests, 1.7 × in nearly all; a finer miss
needs more held-out days to tell from chance (`CalibrationConfig.holdout_days`)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from rl.calibration.backtest import score

FIRST = dt.date(2026, 1, 1)
HELD_OUT, TRAINING, MARKETS = 14, 76, 8
PLATFORMS = ("google_ads", "meta", "microsoft_ads", "tiktok")
SPEND = np.array([250.0, 110.0, 45.0, 50.0])  # per day, budget-capped
CLICKS = np.array([80.0, 90.0, 18.0, 45.0])
CONVERSIONS = np.array([3.3, 2.3, 0.7, 0.6])
ALPHA = 0.05


def _frame(rng, spend, clicks, conversions) -> pl.DataFrame:
    rows = [
        (FIRST + dt.timedelta(days=d), p, spend[i] * rng.normal(1, 0.005), rng.poisson(clicks[i]), rng.poisson(cv))
        for d in range(HELD_OUT)
        for i, (p, cv) in enumerate(zip(PLATFORMS, conversions, strict=True))
    ]
    return pl.DataFrame(rows, schema=["date", "platform", "spend", "clicks", "conversions"], orient="row").with_columns(
        pl.col("clicks", "conversions").cast(pl.Float64)
    )


def _trial(rng, bias: np.ndarray, spend_bias: np.ndarray) -> list[str]:
    """One backtest: observe the truth, fit rates on the training window, simulate with the fit (× bias)."""
    trained_clicks = rng.poisson(CLICKS * TRAINING).astype(float)
    trained_conversions = rng.poisson(CONVERSIONS * TRAINING).astype(float)
    fitted_on = pl.DataFrame({"platform": PLATFORMS, "clicks": trained_clicks, "conversions": trained_conversions})
    obs = _frame(rng, SPEND, CLICKS, CONVERSIONS)
    fit_clicks, fit_conversions = trained_clicks / TRAINING, trained_conversions / TRAINING * bias
    sim = pl.concat(
        _frame(rng, SPEND * spend_bias, fit_clicks, fit_conversions).with_columns(replicate=pl.lit(m))
        for m in range(MARKETS)
    )
    last = FIRST + dt.timedelta(days=HELD_OUT - 1)
    return score(FIRST, last, None, obs, sim, MARKETS, fitted_on).material_misses(ALPHA, 2.0, 0.15)


def test_a_right_simulator_is_blocked_at_most_alpha_of_the_time():
    rng = np.random.default_rng(7)
    blocked = [bool(_trial(rng, np.ones(4), np.ones(4))) for _ in range(300)]
    # 300 trials: the rate is known to about ±1.3 points; Bonferroni over the judged pairs keeps it under alpha
    assert np.mean(blocked) <= ALPHA + 0.03, np.mean(blocked)


def test_conversions_seventy_percent_too_many_are_blocked_nearly_always():
    rng = np.random.default_rng(8)
    misses = [_trial(rng, np.full(4, 1.7), np.ones(4)) for _ in range(100)]
    assert np.mean([any("conversions on all" in m for m in ms) for ms in misses]) >= 0.9


def test_a_small_spend_miss_under_a_budget_cap_is_not_material_but_a_large_one_is():
    rng = np.random.default_rng(9)
    # spend 1% high on every platform: many times its noise floor (0.4%), but no material error
    assert not any("spend" in m for m in _trial(rng, np.ones(4), np.full(4, 1.01)))
    # Google Ads spend 20% high: material
    misses = _trial(rng, np.ones(4), np.array([1.2, 1.0, 1.0, 1.0]))
    assert any(m.startswith("spend on google_ads: WAPE") for m in misses), misses
    assert any(m.startswith("spend on google_ads: held-out total off by") for m in misses), misses
