"""Response model: click and conversion probability from observable features, fitted on the account's own marts.

Estimator
---------
Every figure in the marts is an aggregated count, so each row of a training frame is a *cell* — a feature
combination with ``trials`` Bernoulli trials of which ``successes`` succeeded. `BinomialLogit` fits the weighted
binomial logistic regression

    logit p(x) = b0 + Σ_j beta_j · x_j

by maximising the penalised binomial log-likelihood

    Σ_cells [ s · log p + (n − s) · log(1 − p) ] − (l2 / 2) · ||beta||²

(the intercept b0 is not penalised) with Newton's method (iteratively re-weighted least squares, step halving on
the penalised objective). Categoricals are one-hot encoded with *every* level (no reference level): the ridge
penalty makes the fit unique and shrinks rare levels towards the intercept; ``l2`` is the precision of a zero-mean
normal prior on each coefficient. Numeric features are standardised with the training mean and standard deviation.
By default (``l2=None`` in `fit_response_models`) each feature group gets its own precision, estimated on the
training data by empirical Bayes (MacKay's evidence fixed point), so a group without signal — e.g. the weekday in
the demo market's conversion rate — is shrunk to nothing instead of adding noise. Because the log-likelihood
depends on a cell only through its features and (s, n), summing cells with identical features is exact: the fit on
a day × campaign × device frame equals the fit on its feature-level totals.

Models
------
- **Click model** (`click_frame`, from ``fct_campaign_hourly``): trials = impressions, successes = clicks; features
  campaign, hour of day, ISO day of week and the hour's search impression share as the observable proxy of bid
  position (0 for social platforms, which do not report it; the campaign's own level absorbs the constant), with a
  slope per campaign. (A bid-over-realised-CPC feature was dropped: the CPC is spend / clicks, the label itself.)
- **Conversion model** (`conversion_frame`, from ``fct_device_daily``): trials = GA4 sessions, successes = GA4 key
  events; features campaign, device, ISO day of week (the mart has no hour). The only source with a device is GA4.

Why the conversion target is GA4 key events by conversion date: ad-platform conversions are reported by *click*
date and keep arriving for ~3 weeks, so the most recent click dates — exactly the held-out ones — would be
under-counted and the evaluation would reward models that predict too low. GA4 key events are reported on the
day they happen, so a held-out day's count is final when the day is over and never contains information the
training period saw. The target is the conversion-date rate (key events of day d per session of day d); in a
market without a strong trend it equals the per-session conversion probability (each session's conversion is
merely shifted by its lag). A cell whose key events exceed its sessions (conversions of earlier sessions) is
clipped to its sessions after aggregation to the model's features; the clipped count is reported as
``clipped_successes``.

Evaluation
----------
Rolling origin: the most recent ``folds`` × ``holdout_days`` calendar days are cut into ``folds`` consecutive
windows of ``holdout_days`` (`time_split` for one); each window is scored by a model fitted on the days before it
only, which it never saw, and the scores are pooled over the windows: exact AUC over all held-out trials
(`binomial_auc`, a cell's successes are positives and its failures negatives, all sharing the cell's score; ties
count one half) and log loss per trial (`binomial_logloss`). The reference is the *frequency baseline* — each
campaign's training rate (smoothed (s + 0.5) / (n + 1) so that a campaign without a success does not score
infinite loss) — and the global training rate — with ``logloss_gain`` = baseline − model log loss and its paired
standard error ``logloss_gain_se`` (trials treated as independent), so a reader can tell a real gain from noise.

Why several windows: the conversion model's gain over the per-campaign rate is the device effect, about 0.0007
nats per session in the demo account; 14 days of its paid GA4 sessions (~3,000, ~90 key events) measure a gain
with a standard error of the same size, so a single 14-day window lost to the baseline on the warehouse `make demo`
leaves behind (0.12810 vs 0.12786, gain −0.0002 ± 0.0007: noise, not drift — the device rates are the same in
training and held-out days within their counts). Six windows hold six times the sessions. A model that still does
not beat its baseline on the pooled windows is not used: `ResponseModel.usable` is False and calibration falls
back to the frequency estimates, with a flag. The click model's gain per impression is smaller still (~0.00005
nats: position by hour), so it is scored the same way. After evaluation both models are refitted on the full
window; that refit is what `ResponseModels.conversion_propensity` / `click_propensity` serve to calibration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import polars as pl

from rl.calibration.logit import (  # noqa: F401 — also the response models' public names
    CAMPAIGN,
    EXCESS,
    SUCCESSES,
    TRIALS,
    BinomialLogit,
    HeldOut,
    InsufficientDataError,
    ResponseDataError,
    UnknownLevelError,
    binomial_auc,
    binomial_logloss,
    logloss_gain,
)
from rl.calibration.response_data import aggregate_cells, click_frame, conversion_frame


def time_split(frame: pl.DataFrame, holdout_days: int, date_col: str = "date") -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, holdout): the holdout is the most recent `holdout_days` calendar days of the frame's window
    (dates > last date − holdout_days), the training part everything before. `date_col` is a date or an integer
    day number."""
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be >= 1, got {holdout_days}")
    if frame.height == 0:
        raise InsufficientDataError("no rows to split: the window is empty")
    first, last = frame[date_col].min(), frame[date_col].max()
    step = 1 if frame[date_col].dtype.is_integer() else dt.timedelta(days=1)
    cutoff = last - holdout_days * step
    train = frame.filter(pl.col(date_col) <= cutoff)
    holdout = frame.filter(pl.col(date_col) > cutoff)
    if train.height == 0 or train[TRIALS].sum() <= 0:
        raise InsufficientDataError(
            f"no training trials before the {holdout_days}-day holdout: the window {first}..{last} is too short"
        )
    if holdout.height == 0 or holdout[TRIALS].sum() <= 0:
        raise InsufficientDataError(f"no holdout trials in {cutoff + step}..{last}")
    return train, holdout


# ------------------------------------------------------------------------------------------------------ evaluation


def _window(frame: pl.DataFrame, date_col: str) -> tuple[str, str]:
    return str(frame[date_col].min()), str(frame[date_col].max())


def frequency_baseline(train: pl.DataFrame, group: str = CAMPAIGN) -> dict[Any, float]:
    """Training rate per `group` level, smoothed (s + 0.5) / (n + 1)."""
    totals = train.group_by(group).agg(pl.col(SUCCESSES).sum(), pl.col(TRIALS).sum())
    return {
        k: (s + 0.5) / (n + 1.0)
        for k, s, n in zip(totals[group].to_list(), totals[SUCCESSES], totals[TRIALS], strict=True)
    }


def _check_groups(train: pl.DataFrame, holdout: pl.DataFrame, group: str, what: str, window: tuple[str, str]) -> None:
    seen = set(train.filter(pl.col(TRIALS) > 0)[group].unique().to_list())
    missing = sorted(set(holdout.filter(pl.col(TRIALS) > 0)[group].unique().to_list()) - seen)
    if missing:
        raise InsufficientDataError(
            f"{group} {', '.join(map(str, missing))} has zero training {what} in {window[0]}..{window[1]}: "
            "it cannot be evaluated (give it a longer history or drop it)"
        )


@dataclass(frozen=True)
class ModelSpec:
    """Features of a response model; ``l2=None`` estimates per-group precisions by empirical Bayes."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    interactions: tuple[tuple[str, str], ...] = ()
    l2: float | None = None

    @property
    def keys(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def model(self) -> BinomialLogit:
        return BinomialLogit(
            self.categorical,
            self.numeric,
            l2=1.0 if self.l2 is None else self.l2,
            strict=(CAMPAIGN,) if CAMPAIGN in self.categorical else (),
            interactions=self.interactions,
            empirical_bayes=self.l2 is None,
        )


def _score(train: pl.DataFrame, holdout: pl.DataFrame, spec: ModelSpec, group: str) -> tuple[BinomialLogit, HeldOut]:
    tr, ho = aggregate_cells(train, spec.keys), aggregate_cells(holdout, spec.keys)
    model = spec.model().fit(tr)
    rates = frequency_baseline(tr, group)
    global_rate = float(tr[SUCCESSES].sum() / tr[TRIALS].sum())
    scored = HeldOut(
        model.predict_proba(ho),
        np.array([rates[k] for k in ho[group].to_list()]),
        np.full(ho.height, global_rate),
        ho[SUCCESSES].to_numpy(),
        ho[TRIALS].to_numpy(),
        float(tr[TRIALS].sum()),
        float(tr[SUCCESSES].sum()),
        float(tr[EXCESS].sum() + ho[EXCESS].sum()),
    )
    return model, scored


def evaluate_split(
    train: pl.DataFrame, holdout: pl.DataFrame, spec: ModelSpec, group: str = CAMPAIGN
) -> tuple[BinomialLogit, dict[str, Any]]:
    """Fit on `train` cells, score on `holdout` cells: metrics of the model and of both frequency baselines."""
    model, scored = _score(train, holdout, spec, group)
    return model, scored.metrics(dict(model.l2_))


@dataclass(frozen=True)
class ResponseModel:
    """One response model: the held-out metrics and the model refitted on the full window (what calibration uses)."""

    name: str
    model: BinomialLogit  # refitted on the full window
    metrics: dict[str, Any]
    cells: pl.DataFrame  # full-window cells aggregated to the model's features, with the model's probability

    @property
    def usable(self) -> bool:
        """The model beat its per-campaign frequency baseline on the held-out days (pooled log loss)."""
        return self.metrics["logloss_gain"] > 0

    def probability(self, frame: pl.DataFrame) -> np.ndarray:
        """Probability for rows of `frame` (feature columns as in the training frame)."""
        return self.model.predict_proba(frame)

    def propensity(self, by: Sequence[str]) -> pl.DataFrame:
        """Trials-weighted mean model probability by `by` over the full window: the expected rate of that group
        under the observed mix of the other features. Columns: *by, trials, successes, probability."""
        return (
            self.cells.group_by(list(by))
            .agg(
                pl.col(TRIALS).sum(),
                pl.col(SUCCESSES).sum(),
                ((pl.col("probability") * pl.col(TRIALS)).sum() / pl.col(TRIALS).sum()).alias("probability"),
            )
            .sort(list(by))
        )


MAX_FOLDS = 6


def fit_response_model(
    name: str,
    frame: pl.DataFrame,
    spec: ModelSpec,
    *,
    holdout_days: int = 14,
    folds: int | None = None,
    what: str = "trials",
    date_col: str = "date",
) -> ResponseModel:
    """Rolling-origin evaluation of one model on `frame` cells (module docstring: `folds` consecutive windows of
    `holdout_days`, each scored by a fit on the days before it; default: up to MAX_FOLDS, as many as leave the
    first half of the window for training), then a refit on the full window. `what` names the trials in errors."""
    if frame.height == 0 or frame[TRIALS].sum() <= 0:
        raise InsufficientDataError(f"{name} model: the data hold no {what}")
    if folds is None:
        span = (frame[date_col].max() - frame[date_col].min()) if frame.height else 0
        n_days = (span.days if hasattr(span, "days") else int(span)) + 1
        folds = max(1, min(MAX_FOLDS, (n_days // 2) // holdout_days))
    step = 1 if frame[date_col].dtype.is_integer() else dt.timedelta(days=1)
    last = frame[date_col].max()
    parts, windows = [], []
    for k in range(folds, 0, -1):
        end = last - (k - 1) * holdout_days * step
        train, holdout = time_split(frame.filter(pl.col(date_col) <= end), holdout_days, date_col)
        train_window, holdout_window = _window(train, date_col), _window(holdout, date_col)
        _check_groups(train, holdout, CAMPAIGN, what, train_window)
        try:
            model, scored = _score(train, holdout, spec, CAMPAIGN)
        except InsufficientDataError as exc:
            raise InsufficientDataError(
                f"{name} model, train {train_window[0]}..{train_window[1]}, "
                f"holdout {holdout_window[0]}..{holdout_window[1]}: {exc}"
            ) from exc
        parts.append(scored)
        windows.append((train_window, holdout_window, scored))
    metrics = HeldOut.pooled(parts).metrics(dict(model.l2_))
    metrics |= {
        "train_first_date": windows[0][0][0],
        "train_last_date": windows[0][0][1],  # the earliest fold's training end: no fold saw a later day
        "holdout_first_date": windows[0][1][0],
        "holdout_last_date": windows[-1][1][1],
        "holdout_days": holdout_days,
        "folds": folds,
        "fold_gains": [round(logloss_gain(x.p, x.base, x.s, x.n)[0], 6) for _, _, x in windows],
    }
    id_cols = [c for c in ("platform", "campaign_id") if c in frame.columns]
    full = spec.model().fit(aggregate_cells(frame, spec.keys))
    cells = aggregate_cells(frame, [*id_cols, *spec.keys])
    cells = cells.with_columns(pl.Series("probability", full.predict_proba(cells)))
    return ResponseModel(name=name, model=full, metrics=metrics, cells=cells)


@dataclass(frozen=True)
class ResponseModels:
    """The click and conversion models of an account (each refitted on the full window) and their metrics."""

    click: ResponseModel
    conversion: ResponseModel

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return {"click": self.click.metrics, "conversion": self.conversion.metrics}

    def conversion_propensity(self) -> pl.DataFrame:
        """Conversion probability per session by (platform, campaign_id, device): the full-window model's
        sessions-weighted mean over days of the week. Columns: platform, campaign_id, campaign, device, trials
        (sessions), successes (key events), probability."""
        return self.conversion.propensity(["platform", "campaign_id", CAMPAIGN, "device"])

    def click_propensity(self) -> pl.DataFrame:
        """Click probability per impression by (platform, campaign_id, hour): the full-window model's
        impressions-weighted mean over days and impression shares (the hourly mart has no device)."""
        out = self.click.propensity(["platform", "campaign_id", CAMPAIGN, "hour"])
        return out.with_columns(pl.col("hour").cast(pl.Int64)).sort("platform", "campaign_id", "hour")

    def conversion_probability(self, platform: str, campaign_id: int, device: str, day_of_week: int) -> float:
        """Model probability that a session of this campaign and device on ISO weekday `day_of_week` converts."""
        row = pl.DataFrame(
            {CAMPAIGN: [f"{platform}:{int(campaign_id)}"], "device": [device], "day_of_week": [str(day_of_week)]}
        )
        return float(self.conversion.probability(row)[0])

    def click_probability(
        self, platform: str, campaign_id: int, hour: int, day_of_week: int, impression_share: float = 0.0, **numeric
    ) -> float:
        """Model probability that an impression of this campaign, hour and weekday is clicked."""
        row = {
            CAMPAIGN: [f"{platform}:{int(campaign_id)}"],
            "hour": [str(hour)],
            "day_of_week": [str(day_of_week)],
            "impression_share": [float(impression_share)],
        }
        row |= {k: [float(v)] for k, v in numeric.items()}
        for col in self.click.model.numeric:
            row.setdefault(col, [0.0])
        return float(self.click.probability(pl.DataFrame(row))[0])


def click_spec(frame: pl.DataFrame, l2: float | None = None) -> ModelSpec:
    """Click model features: campaign, hour, weekday; impression share with a slope per campaign (position matters
    differently per auction)."""
    numeric = tuple(c for c in ("impression_share",) if c in frame.columns)
    return ModelSpec(
        categorical=(CAMPAIGN, "hour", "day_of_week"),
        numeric=numeric,
        interactions=tuple((c, CAMPAIGN) for c in numeric),
        l2=l2,
    )


def conversion_spec(l2: float | None = None) -> ModelSpec:
    """Conversion model features: campaign, device, weekday (the device mart has no hour)."""
    return ModelSpec(categorical=(CAMPAIGN, "device", "day_of_week"), l2=l2)


def fit_response_models(
    con: duckdb.DuckDBPyConnection, holdout_days: int = 14, l2: float | None = None
) -> ResponseModels:
    """Click and conversion models from the marts on `con` (a read-only connection is enough): each evaluated on
    the most recent `holdout_days` against the frequency baselines, then refitted on the full window.
    ``l2=None`` estimates the ridge precision of each feature group by empirical Bayes on the training data."""
    clicks = click_frame(con)
    click = fit_response_model("click", clicks, click_spec(clicks, l2), holdout_days=holdout_days, what="impressions")
    conversion = fit_response_model(
        "conversion", conversion_frame(con), conversion_spec(l2), holdout_days=holdout_days, what="sessions"
    )
    return ResponseModels(click=click, conversion=conversion)
