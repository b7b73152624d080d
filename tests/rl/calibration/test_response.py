"""Response model: the estimator on synthetic aggregated data, exact metrics, the time split and its errors, and the
held-out comparison against the frequency baselines on a demo warehouse."""

from __future__ import annotations

import datetime as dt
import itertools

import duckdb
import numpy as np
import polars as pl
import pytest

from rl.calibration.response import (
    BinomialLogit,
    InsufficientDataError,
    ModelSpec,
    ResponseDataError,
    UnknownLevelError,
    aggregate_cells,
    binomial_auc,
    binomial_logloss,
    click_frame,
    conversion_frame,
    fit_response_model,
    fit_response_models,
    logloss_gain,
    time_split,
)

FIRST_DAY = dt.date(2025, 1, 6)  # a Monday


def synthetic_cells(seed: int = 0, days: int = 28, trials: int = 4000) -> tuple[pl.DataFrame, dict[str, float]]:
    """Day × campaign × device cells with a numeric x; logit p = -3 + campaign + device + 0.8 x (no weekday
    effect). Returns the cells and the true coefficients."""
    rng = np.random.default_rng(seed)
    truth = {"campaign=a": 0.0, "campaign=b": 0.7, "campaign=c": -0.5, "device=mobile": 0.0, "device=desktop": 0.4}
    slope, intercept = 0.8, -3.0
    rows = []
    for d, camp, dev in itertools.product(range(days), ("a", "b", "c"), ("mobile", "desktop")):
        x = rng.normal()
        z = intercept + truth[f"campaign={camp}"] + truth[f"device={dev}"] + slope * x
        n = int(rng.integers(trials // 2, trials))
        s = int(rng.binomial(n, 1 / (1 + np.exp(-z))))
        date = FIRST_DAY + dt.timedelta(days=d)
        rows.append((date, camp, dev, str(date.isoweekday()), x, float(n), float(s)))
    frame = pl.DataFrame(
        rows, schema=["date", "campaign", "device", "day_of_week", "x", "trials", "successes"], orient="row"
    )
    return frame, truth | {"x": slope, "intercept": intercept}


# ------------------------------------------------------------------------------------------------------ estimator


def test_recovers_known_coefficients():
    cells, truth = synthetic_cells()
    model = BinomialLogit(["campaign", "device"], ["x"], l2=1e-4).fit(cells)
    coef = model.coefficients()
    # full one-hot coding: levels are identified up to the intercept, so compare contrasts
    assert coef["campaign=b"] - coef["campaign=a"] == pytest.approx(0.7, abs=0.06)
    assert coef["campaign=c"] - coef["campaign=a"] == pytest.approx(-0.5, abs=0.06)
    assert coef["device=desktop"] - coef["device=mobile"] == pytest.approx(0.4, abs=0.05)
    assert coef["x"] == pytest.approx(truth["x"], abs=0.03)
    # the original-scale intercept reproduces the predictions
    row = cells.row(0, named=True)
    z = coef["intercept"] + coef[f"campaign={row['campaign']}"] + coef[f"device={row['device']}"] + coef["x"] * row["x"]
    assert model.predict_proba(cells.head(1))[0] == pytest.approx(1 / (1 + np.exp(-z)), rel=1e-9)


def test_empirical_bayes_shrinks_a_group_without_signal():
    cells, _ = synthetic_cells(seed=1)
    model = BinomialLogit(["campaign", "device", "day_of_week"], ["x"], empirical_bayes=True).fit(cells)
    assert model.l2_["day_of_week"] > 100 * model.l2_["campaign"]
    coef = model.coefficients()
    assert max(abs(coef[f"day_of_week={d}"]) for d in range(1, 8)) < 0.05
    assert coef["device=desktop"] - coef["device=mobile"] == pytest.approx(0.4, abs=0.06)


def test_aggregating_cells_with_equal_features_is_exact():
    cells, _ = synthetic_cells(seed=2)
    per_day = BinomialLogit(["campaign", "device"], l2=0.5).fit(cells)
    totals = aggregate_cells(cells, ["campaign", "device"])
    assert totals.height == 6
    pooled = BinomialLogit(["campaign", "device"], l2=0.5).fit(totals)
    np.testing.assert_allclose(per_day.coef_, pooled.coef_, atol=1e-8)
    assert per_day.intercept_ == pytest.approx(pooled.intercept_, abs=1e-8)


def test_unknown_campaign_is_an_error_and_other_levels_fall_back_to_the_prior():
    cells, _ = synthetic_cells()
    model = BinomialLogit(["campaign", "device"], l2=1.0, strict=["campaign"]).fit(cells)
    with pytest.raises(UnknownLevelError, match=r"unknown campaign level\(s\) \['zz'\]"):
        model.predict_proba(pl.DataFrame({"campaign": ["zz"], "device": ["mobile"]}))
    p = model.predict_proba(pl.DataFrame({"campaign": ["a"], "device": ["tablet"]}))
    assert 0 < p[0] < 1


def test_bad_counts_are_rejected():
    frame = pl.DataFrame({"campaign": ["a", "b"], "successes": [5.0, 1.0], "trials": [3.0, 10.0]})
    with pytest.raises(ResponseDataError, match="more successes than trials"):
        BinomialLogit(["campaign"]).fit(frame)
    with pytest.raises(InsufficientDataError, match="0 successes"):
        BinomialLogit(["campaign"]).fit(frame.with_columns(pl.lit(0.0).alias("successes")))
    with pytest.raises(ValueError, match="l2 must be > 0"):
        BinomialLogit(["campaign"], l2=0.0)


# ------------------------------------------------------------------------------------------------------ metrics


def _per_trial(score, successes, trials):
    y, s = [], []
    for sc, k, n in zip(score, successes, trials, strict=True):
        y += [1] * int(k) + [0] * int(n - k)
        s += [sc] * int(n)
    return np.array(y), np.array(s, dtype=float)


def test_auc_and_logloss_match_a_per_trial_computation():
    score = np.array([0.1, 0.3, 0.3, 0.7, 0.05, 0.7])  # ties inside cells and across cells
    successes = np.array([1, 2, 0, 3, 0, 1])
    trials = np.array([5, 4, 3, 6, 2, 1])
    y, s = _per_trial(score, successes, trials)
    pos, neg = s[y == 1], s[y == 0]
    brute_auc = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg])
    brute_ll = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert binomial_auc(score, successes, trials) == pytest.approx(brute_auc, abs=1e-12)
    assert binomial_logloss(score, successes, trials) == pytest.approx(brute_ll, abs=1e-12)

    reference = np.full(6, y.mean())
    gain, se = logloss_gain(score, reference, successes, trials)
    d = -(y * np.log(reference[0]) + (1 - y) * np.log(1 - reference[0])) + (y * np.log(s) + (1 - y) * np.log(1 - s))
    assert gain == pytest.approx(d.mean(), abs=1e-12)
    assert se == pytest.approx(d.std() / np.sqrt(len(d)), abs=1e-12)


def test_auc_needs_both_outcomes():
    with pytest.raises(InsufficientDataError, match="positives and negatives"):
        binomial_auc(np.array([0.2, 0.4]), np.array([0, 0]), np.array([3, 4]))


# ------------------------------------------------------------------------------------------------------ split


def test_time_split_holds_out_the_most_recent_days():
    cells, _ = synthetic_cells(days=20)
    train, holdout = time_split(cells, 5)
    assert train["date"].max() == FIRST_DAY + dt.timedelta(days=14)
    assert holdout["date"].min() == FIRST_DAY + dt.timedelta(days=15)
    assert train.height + holdout.height == cells.height
    with pytest.raises(InsufficientDataError, match="no training trials before the 20-day holdout"):
        time_split(cells, 20)


def test_no_holdout_trials_is_an_error():
    cells, _ = synthetic_cells(days=20)
    last = cells["date"].max()
    cells = cells.with_columns(pl.when(pl.col("date") == last).then(0.0).otherwise(pl.col("trials")).alias("trials"))
    with pytest.raises(InsufficientDataError, match=f"no holdout trials in {last}..{last}"):
        time_split(cells, 1)


def test_a_campaign_without_training_trials_is_named():
    cells, _ = synthetic_cells(days=20)
    late = cells.filter((pl.col("campaign") != "c") | (pl.col("date") > FIRST_DAY + dt.timedelta(days=14)))
    spec = ModelSpec(categorical=("campaign", "device"))
    with pytest.raises(
        InsufficientDataError, match=r"campaign c has zero training sessions in 2025-01-06\.\.2025-01-20"
    ):
        fit_response_model("conversion", late, spec, holdout_days=5, what="sessions")


def test_fit_response_model_reports_metrics_and_refits_on_the_full_window():
    cells, _ = synthetic_cells(days=28)
    result = fit_response_model("synthetic", cells, ModelSpec(("campaign", "device"), ("x",)), holdout_days=7)
    m = result.metrics
    # 28 days, 7-day windows: two windows (the first half of the days is left for training), each scored by a fit
    # on the days before it; the earliest training end is the day before the first window
    assert m["folds"] == 2 and len(m["fold_gains"]) == 2
    assert m["train_last_date"] == "2025-01-19" and m["holdout_first_date"] == "2025-01-20"
    assert m["holdout_last_date"] == str(cells["date"].max())
    assert m["n_holdout_trials"] == cells.filter(pl.col("date") >= dt.date(2025, 1, 20))["trials"].sum()
    assert m["holdout_auc"] > m["baseline_auc"] > 0.5
    assert m["holdout_logloss"] < m["baseline_logloss"] < m["global_baseline_logloss"]
    assert m["logloss_gain"] > 3 * m["logloss_gain_se"]
    assert result.cells["trials"].sum() == cells["trials"].sum()  # the refit covers the whole window
    fixed = fit_response_model("synthetic", cells, ModelSpec(("campaign", "device"), ("x",), l2=2.0), holdout_days=7)
    assert fixed.metrics["l2"] == {"campaign": 2.0, "device": 2.0, "x": 2.0}
    by_device = result.propensity(["device"])
    assert by_device.filter(pl.col("device") == "desktop")["probability"][0] > by_device["probability"].min()


# ------------------------------------------------------------------------------------------------------ warehouse


@pytest.fixture(scope="module")
def models(response_warehouse, response_models):
    with duckdb.connect(str(response_warehouse), read_only=True) as con:
        return response_models, click_frame(con), conversion_frame(con)


def test_frames_from_the_marts(models):
    _, clicks, conversions = models
    assert clicks["trials"].min() > 0
    assert (clicks["successes"] <= clicks["trials"]).all()
    numeric = [c for c in ("impression_share",) if c in clicks.columns]
    assert clicks.select(numeric).null_count().sum_horizontal()[0] == 0
    assert set(conversions["device"].unique()) == {"mobile", "desktop", "tablet"}
    assert set(conversions["day_of_week"].unique()) == {str(d) for d in range(1, 8)}


def test_click_model_beats_the_frequency_baseline_on_held_out_days(models):
    m = models[0].metrics["click"]
    assert m["holdout_last_date"] == "2025-01-29" and m["holdout_first_date"] == "2025-01-02" and m["folds"] == 2
    assert m["n_holdout_trials"] > 100_000
    assert m["holdout_auc"] > 0.6
    assert m["holdout_logloss"] < m["baseline_logloss"] < m["global_baseline_logloss"]
    assert m["logloss_gain"] > 2 * m["logloss_gain_se"]


def test_conversion_model_beats_its_frequency_baseline_on_held_out_days(models):
    """The device effect is worth ~0.0007 nats per session over the per-campaign rate; one 14-day window of this
    warehouse holds ~200 key events, too few to see it, so the model is scored on two windows (the days before
    each one trained it) and must beat the baseline there."""
    m = models[0].metrics["conversion"]
    assert m["folds"] == 2 and m["holdout_first_date"] == "2025-01-02"
    assert m["holdout_auc"] > 0.55
    assert m["holdout_logloss"] < m["baseline_logloss"] < m["global_baseline_logloss"]
    assert models[0].conversion.usable
    assert m["clipped_successes"] <= 0.01 * m["n_train_successes"]


def test_propensities_for_calibration(models):
    fitted = models[0]
    conv = fitted.conversion_propensity()
    assert conv.height == conv.select("campaign", "device").n_unique() == 8 * 3
    assert conv["probability"].is_between(0, 0.5).all()
    coef = fitted.conversion.model.coefficients()
    assert coef["device=desktop"] > coef["device=mobile"]  # the reference account's desktop sessions convert more
    p = fitted.conversion_probability("google_ads", 101, "desktop", 3)
    assert 0 < p < 1
    clicks = fitted.click_propensity()
    assert set(clicks["hour"].unique()) <= set(range(24)) and clicks["probability"].is_between(0, 1).all()
    assert 0 < fitted.click_probability("meta", 201, hour=20, day_of_week=5) < 1
    with pytest.raises(UnknownLevelError, match="campaign"):
        fitted.conversion_probability("google_ads", 999, "mobile", 1)


def test_too_long_a_holdout_names_the_window(response_warehouse):
    with duckdb.connect(str(response_warehouse), read_only=True) as con:
        with pytest.raises(InsufficientDataError, match=r"no training trials before the 90-day holdout: the window"):
            fit_response_models(con, holdout_days=90)
