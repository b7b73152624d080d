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
  slope per campaign. When ``fct_campaign_daily`` carries a ``bid`` column, log(bid / realised price) of the day
  (price = CPC for a max-CPC bid, CPM for a CPM cap) is added the same way.
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
`time_split` holds out the most recent ``holdout_days`` calendar days. The model is fitted on the earlier days only
and scored on the held-out days, which it never saw: exact AUC over all held-out trials (`binomial_auc`, a cell's
successes are positives and its failures negatives, all sharing the cell's score; ties count one half) and log
loss per trial (`binomial_logloss`). The reference is the *frequency baseline* — each campaign's training rate
(smoothed (s + 0.5) / (n + 1) so that a campaign without a success does not score infinite loss) — and the global
training rate — with ``logloss_gain`` = baseline − model log loss and its paired standard error
``logloss_gain_se`` (trials treated as independent), so a reader can tell a real gain from noise. After
evaluation both models are refitted on the full window; that refit is what `ResponseModels.conversion_propensity`
/ `click_propensity` serve to calibration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import polars as pl

CAMPAIGN = "campaign"
TRIALS = "trials"
SUCCESSES = "successes"
EXCESS = "excess_successes"
_EPS = 1e-12


class ResponseDataError(ValueError):
    """The data cannot support the requested fit or evaluation (too few rows, trials or successes, bad counts)."""


class InsufficientDataError(ResponseDataError):
    """Too little data: an empty window or split, or a campaign without training trials."""


class UnknownLevelError(ResponseDataError):
    """A categorical level at prediction time that the model never saw in training (e.g. an unknown campaign)."""


# ------------------------------------------------------------------------------------------------------ estimator


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z, dtype=float)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _counts(frame: pl.DataFrame, successes: str, trials: str) -> tuple[np.ndarray, np.ndarray]:
    for col in (successes, trials):
        if col not in frame.columns:
            raise ResponseDataError(f"frame has no column {col!r} (columns: {frame.columns})")
    s = frame[successes].cast(pl.Float64).fill_null(0.0).to_numpy()
    n = frame[trials].cast(pl.Float64).fill_null(0.0).to_numpy()
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(n))):
        raise ResponseDataError(f"non-finite {successes!r} or {trials!r} counts")
    if np.any(n < 0) or np.any(s < 0):
        raise ResponseDataError(f"negative {successes!r} or {trials!r} counts")
    bad = np.flatnonzero(s > n + 1e-9)
    if bad.size:
        i = int(bad[0])
        raise ResponseDataError(
            f"{bad.size} cells have more {successes} than {trials}, first: row {i} "
            f"({successes}={s[i]:g}, {trials}={n[i]:g}); clip or aggregate before fitting"
        )
    return s, n


@dataclass
class BinomialLogit:
    """Ridge-penalised binomial logistic regression on aggregated (successes, trials) cells, fitted by Newton/IRLS.

    Feature groups: each ``categorical`` column (one-hot, all training levels), each ``numeric`` column (standardised
    with the training mean and sd) and each ``interactions`` pair (numeric, categorical) — a separate slope of the
    standardised numeric per level of the categorical. ``l2`` is the prior precision of every coefficient, or a
    mapping group name → precision (a group is named by its column, an interaction ``"numeric*categorical"``).

    With ``empirical_bayes=True`` the per-group precisions are estimated from the training data by maximising the
    Laplace-approximated marginal likelihood (MacKay's fixed point: α_g ← γ_g / ||β_g||², γ_g = k_g − α_g tr Σ_gg,
    Σ the inverse Hessian of the penalised objective), starting from ``l2``; a group that carries no signal is
    shrunk to zero. The fitted precisions are in ``l2_``.

    At prediction an unseen level of a column in ``strict`` (default: all categoricals) raises `UnknownLevelError`;
    an unseen level of any other categorical contributes 0 (the prior mean of a level).
    """

    categorical: Sequence[str] = ()
    numeric: Sequence[str] = ()
    l2: float | Mapping[str, float] = 1.0
    strict: Sequence[str] | None = None
    interactions: Sequence[tuple[str, str]] = ()
    empirical_bayes: bool = False
    max_iter: int = 100
    tol: float = 1e-8
    max_eb_iter: int = 50

    intercept_: float = field(default=0.0, init=False)
    coef_: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    levels_: dict[str, list[Any]] = field(default_factory=dict, init=False)
    mean_: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    scale_: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    l2_: dict[str, float] = field(default_factory=dict, init=False)
    n_iter_: int = field(default=0, init=False)
    fitted_: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.categorical = tuple(self.categorical)
        self.numeric = tuple(self.numeric)
        self.interactions = tuple((str(a), str(b)) for a, b in self.interactions)
        self.strict = tuple(self.categorical if self.strict is None else self.strict)
        for num, cat in self.interactions:
            if num not in self.numeric or cat not in self.categorical:
                raise ValueError(f"interaction ({num!r}, {cat!r}) needs {num!r} numeric and {cat!r} categorical")
        values = self.l2.values() if isinstance(self.l2, Mapping) else [self.l2]
        if not all(v > 0 for v in values):
            raise ValueError(f"l2 must be > 0 (full one-hot coding needs the penalty), got {self.l2}")

    # --------------------------------------------------------------------------------------------- design

    @property
    def groups(self) -> list[str]:
        return [*self.categorical, *self.numeric, *(f"{n}*{c}" for n, c in self.interactions)]

    def _group_sizes(self) -> list[int]:
        return [
            *(len(self.levels_[c]) for c in self.categorical),
            *(1 for _ in self.numeric),
            *(len(self.levels_[c]) for _, c in self.interactions),
        ]

    @property
    def feature_names(self) -> list[str]:
        names = [f"{c}={v}" for c in self.categorical for v in self.levels_[c]]
        names += list(self.numeric)
        names += [f"{n}*{c}={v}" for n, c in self.interactions for v in self.levels_[c]]
        return names

    def _design(self, frame: pl.DataFrame) -> np.ndarray:
        missing = [c for c in (*self.categorical, *self.numeric) if c not in frame.columns]
        if missing:
            raise ResponseDataError(f"frame lacks feature columns {missing} (columns: {frame.columns})")
        onehot: dict[str, np.ndarray] = {}
        for col in self.categorical:
            levels = self.levels_[col]
            index = {v: i for i, v in enumerate(levels)}
            values = frame[col].to_list()
            codes = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
            if col in self.strict and np.any(codes < 0):
                unknown = sorted({str(v) for v, c in zip(values, codes, strict=True) if c < 0})
                raise UnknownLevelError(f"unknown {col} level(s) {unknown[:10]}: the model was trained on {levels}")
            block = np.zeros((len(values), len(levels)))
            ok = codes >= 0
            block[np.flatnonzero(ok), codes[ok]] = 1.0
            onehot[col] = block
        blocks = [onehot[c] for c in self.categorical]
        if self.numeric:
            z = (self._numeric(frame) - self.mean_) / self.scale_
            blocks.append(z)
            for num, cat in self.interactions:
                blocks.append(onehot[cat] * z[:, [self.numeric.index(num)]])
        return np.hstack(blocks) if blocks else np.zeros((frame.height, 0))

    def _numeric(self, frame: pl.DataFrame) -> np.ndarray:
        x = frame.select([pl.col(c).cast(pl.Float64) for c in self.numeric]).to_numpy()
        if not np.all(np.isfinite(x)):
            raise ResponseDataError(f"numeric features {list(self.numeric)} contain null or non-finite values")
        return x

    def _precisions(self) -> dict[str, float]:
        if isinstance(self.l2, Mapping):
            unknown = set(self.l2) - set(self.groups)
            if unknown:
                raise ValueError(f"l2 names unknown feature groups {sorted(unknown)} (groups: {self.groups})")
            return {g: float(self.l2.get(g, 1.0)) for g in self.groups}
        return {g: float(self.l2) for g in self.groups}

    # --------------------------------------------------------------------------------------------- fit

    def fit(self, frame: pl.DataFrame, successes: str = SUCCESSES, trials: str = TRIALS) -> BinomialLogit:
        s, n = _counts(frame, successes, trials)
        keep = n > 0
        if not keep.any():
            raise InsufficientDataError("no trials to fit on")
        frame, s, n = frame.filter(pl.Series(keep)), s[keep], n[keep]
        total_s, total_n = s.sum(), n.sum()
        if total_s <= 0 or total_s >= total_n:
            raise InsufficientDataError(
                f"the training data has {total_s:g} successes in {total_n:g} trials: need both outcomes to fit"
            )
        self.levels_ = {c: sorted(frame[c].unique().drop_nulls().to_list()) for c in self.categorical}
        if self.numeric:
            x = self._numeric(frame)
            self.mean_ = np.average(x, axis=0, weights=n)
            sd = np.sqrt(np.average((x - self.mean_) ** 2, axis=0, weights=n))
            self.scale_ = np.where(sd > 0, sd, 1.0)
        X = np.hstack([np.ones((len(n), 1)), self._design(frame)])
        bounds = np.cumsum([1, *self._group_sizes()])
        slices = {g: slice(int(a), int(b)) for g, a, b in zip(self.groups, bounds[:-1], bounds[1:], strict=True)}
        alpha = self._precisions()
        beta = np.zeros(X.shape[1])
        beta[0] = np.log(total_s / (total_n - total_s))
        for _ in range(self.max_eb_iter if self.empirical_bayes else 1):
            penalty = np.zeros(X.shape[1])
            for g, sl in slices.items():
                penalty[sl] = alpha[g]
            beta, hess = self._newton(X, s, n, penalty, beta)
            if not self.empirical_bayes:
                break
            cov = np.linalg.pinv(hess)
            new = {}
            for g, sl in slices.items():
                k = sl.stop - sl.start
                gamma = max(k - alpha[g] * float(np.trace(cov[sl, sl])), 1e-8)
                new[g] = float(np.clip(gamma / max(float(beta[sl] @ beta[sl]), 1e-12), 1e-4, 1e6))
            converged = all(abs(np.log(new[g] / alpha[g])) < 1e-3 for g in alpha)
            alpha = new
            if converged:
                break
        if self.empirical_bayes:  # final fit at the converged precisions
            penalty = np.zeros(X.shape[1])
            for g, sl in slices.items():
                penalty[sl] = alpha[g]
            beta, _ = self._newton(X, s, n, penalty, beta)
        self.l2_ = alpha
        self.intercept_ = float(beta[0])
        self.coef_ = beta[1:]
        self.fitted_ = True
        return self

    def _newton(
        self, X: np.ndarray, s: np.ndarray, n: np.ndarray, penalty: np.ndarray, beta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Minimise the penalised negative log-likelihood from `beta`; returns (beta, Hessian at beta)."""

        def objective(b: np.ndarray) -> float:
            z = X @ b  # log p = −log(1 + e^−z), log(1 − p) = −log(1 + e^z)
            nll = (s * np.logaddexp(0.0, -z) + (n - s) * np.logaddexp(0.0, z)).sum()
            return float(nll + 0.5 * (penalty * b**2).sum())

        current = objective(beta)
        for it in range(1, self.max_iter + 1):
            p = _sigmoid(X @ beta)
            grad = X.T @ (s - n * p) - penalty * beta
            hess = (X * (n * p * (1 - p))[:, None]).T @ X + np.diag(penalty)
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(hess, grad, rcond=None)[0]
            t = 1.0
            while True:
                candidate = beta + t * step
                value = objective(candidate)
                if value <= current + 1e-12 * max(1.0, abs(current)) or t < 1e-10:
                    break
                t /= 2
            beta, current = candidate, value
            self.n_iter_ = it
            if np.max(np.abs(t * step)) < self.tol:
                break
        p = _sigmoid(X @ beta)
        hess = (X * (n * p * (1 - p))[:, None]).T @ X + np.diag(penalty)
        return beta, hess

    # --------------------------------------------------------------------------------------------- predict

    def decision_function(self, frame: pl.DataFrame) -> np.ndarray:
        if not self.fitted_:
            raise RuntimeError("BinomialLogit is not fitted")
        return self.intercept_ + self._design(frame) @ self.coef_

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """Success probability of each row of `frame` (a 1-d array)."""
        return _sigmoid(self.decision_function(frame))

    def coefficients(self) -> dict[str, float]:
        """Coefficients by feature name on the original scale of the numeric features: numeric (and interaction)
        slopes per unit of the unstandardised feature, the intercept (and, with interactions, the levels of the
        interacting categorical) shifted accordingly, so that predictions are unchanged."""
        out = {"intercept": self.intercept_}
        names = self.feature_names
        k = sum(len(self.levels_[c]) for c in self.categorical)
        out |= {name: float(b) for name, b in zip(names[:k], self.coef_[:k], strict=True)}
        for j, name in enumerate(names[k:], start=k):
            num, _, level = name.partition("*")
            i = self.numeric.index(num)
            slope = float(self.coef_[j] / self.scale_[i])
            out[name] = slope
            shift = slope * float(self.mean_[i])
            if level:  # "categorical=value": that level's offset absorbs the centring
                out[level] -= shift
            else:
                out["intercept"] -= shift
        return out


# ------------------------------------------------------------------------------------------------------ metrics


def binomial_logloss(p: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> float:
    """Mean log loss per trial: −Σ [s log p + (n − s) log(1 − p)] / Σ n (p clipped to [1e-12, 1 − 1e-12])."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    total = n.sum()
    if total <= 0:
        raise InsufficientDataError("log loss over zero trials")
    return float(-(s * np.log(p) + (n - s) * np.log1p(-p)).sum() / total)


def binomial_auc(score: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> float:
    """Exact ROC AUC over the individual trials of aggregated cells.

    Each cell contributes ``s`` positives and ``n − s`` negatives, all with the cell's score. AUC is the probability
    that a random positive outranks a random negative, ties counting one half:
    Σ_v pos(v) · [neg(< v) + neg(v) / 2] / (P · N) over the distinct scores v.
    """
    score = np.asarray(score, dtype=float)
    pos = np.asarray(successes, dtype=float)
    neg = np.asarray(trials, dtype=float) - pos
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        raise InsufficientDataError(
            f"AUC needs positives and negatives, got {total_pos:g} successes and {total_neg:g} failures"
        )
    values, inverse = np.unique(score, return_inverse=True)
    pos_v = np.bincount(inverse, weights=pos, minlength=len(values))
    neg_v = np.bincount(inverse, weights=neg, minlength=len(values))
    neg_below = np.concatenate([[0.0], np.cumsum(neg_v)[:-1]])
    return float((pos_v * (neg_below + 0.5 * neg_v)).sum() / (total_pos * total_neg))


def logloss_gain(
    p_model: np.ndarray, p_reference: np.ndarray, successes: np.ndarray, trials: np.ndarray
) -> tuple[float, float]:
    """(mean, standard error) of the per-trial log-loss reduction of `p_model` over `p_reference` on the same
    trials — positive when the model is better. The SE treats trials as independent (a paired comparison)."""
    pm = np.clip(np.asarray(p_model, dtype=float), _EPS, 1 - _EPS)
    pr = np.clip(np.asarray(p_reference, dtype=float), _EPS, 1 - _EPS)
    s = np.asarray(successes, dtype=float)
    f = np.asarray(trials, dtype=float) - s
    total = s.sum() + f.sum()
    if total <= 0:
        raise InsufficientDataError("log-loss gain over zero trials")
    d_s, d_f = np.log(pm) - np.log(pr), np.log1p(-pm) - np.log1p(-pr)
    mean = float((s * d_s + f * d_f).sum() / total)
    var = float((s * (d_s - mean) ** 2 + f * (d_f - mean) ** 2).sum() / total)
    return mean, float(np.sqrt(var / total))


# ------------------------------------------------------------------------------------------------------ frames


def _campaign_key(platform: pl.Expr, campaign_id: pl.Expr) -> pl.Expr:
    return pl.format("{}:{}", platform, campaign_id.cast(pl.Int64))


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
        [table],
    ).fetchall()
    if not rows:
        raise InsufficientDataError(f"the warehouse has no table main.{table}: build the marts first")
    return {r[0] for r in rows}


def click_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Click cells from ``fct_campaign_hourly``: one row per date × hour × campaign with impressions.

    Columns: date, platform, campaign_id, campaign ("platform:id"), hour, day_of_week (ISO 1–7, as text),
    impression_share (search share of the hour; 0 where the platform does not report it), trials (impressions),
    successes (clicks, clipped to impressions), excess_successes (clicks above impressions), and
    log_bid_over_cpc when ``fct_campaign_daily`` has a ``bid`` column.
    """
    _columns(con, "fct_campaign_hourly")
    daily_cols = _columns(con, "fct_campaign_daily")
    hourly = con.sql(
        """
        SELECT date, CAST(hour AS INTEGER) AS hour, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(impressions AS DOUBLE) AS impressions, CAST(clicks AS DOUBLE) AS clicks,
               CAST(impression_share AS DOUBLE) AS impression_share
        FROM fct_campaign_hourly WHERE impressions > 0"""
    ).pl()
    frame = hourly.with_columns(
        _campaign_key(pl.col("platform"), pl.col("campaign_id")).alias(CAMPAIGN),
        pl.col("hour").cast(pl.String),
        pl.col("date").dt.weekday().cast(pl.String).alias("day_of_week"),
        pl.col("impression_share").fill_null(0.0).fill_nan(0.0),
        pl.col("impressions").alias(TRIALS),
        pl.min_horizontal("clicks", "impressions").alias(SUCCESSES),
        (pl.col("clicks") - pl.col("impressions")).clip(lower_bound=0).alias(EXCESS),
    ).drop("impressions", "clicks")
    if "bid" in daily_cols:
        frame = _with_bid_ratio(con, frame, daily_cols)
    return frame.sort("date", "platform", "campaign_id", "hour")


def _with_bid_ratio(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, daily_cols: set[str]) -> pl.DataFrame:
    """Add log_bid_over_cpc: log of the day's bid over the day's realised price — CPC for a max-CPC bid, CPM for a
    CPM cap (``bid_kind``; CPC when the mart has no kind). Days without a bid or a price take the campaign's mean
    (0 when it never has one): an imputation from features, never from labels."""
    kind = "bid_kind" if "bid_kind" in daily_cols else "NULL"
    bids = con.sql(
        f"""
        SELECT date, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CASE WHEN bid > 0 AND spend > 0 AND clicks > 0 AND coalesce({kind}, 'max_cpc') <> 'cpm_cap'
                        THEN ln(bid / (spend / clicks))
                    WHEN bid > 0 AND spend > 0 AND impressions > 0 AND {kind} = 'cpm_cap'
                        THEN ln(bid / (spend / impressions * 1000))
               END AS log_bid_over_cpc
        FROM fct_campaign_daily"""
    ).pl()
    return (
        frame.join(bids, on=["date", "platform", "campaign_id"], how="left")
        .with_columns(pl.col("log_bid_over_cpc").cast(pl.Float64).fill_nan(None))
        .with_columns(
            pl.col("log_bid_over_cpc").fill_null(pl.col("log_bid_over_cpc").mean().over(CAMPAIGN)).fill_null(0.0)
        )
    )


def conversion_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Conversion cells from ``fct_device_daily``: one row per date × device × campaign.

    Columns: date, platform, campaign_id, campaign, device, day_of_week, trials (GA4 sessions, session date),
    successes (GA4 key events, conversion date). Successes may exceed trials in a single day's cell (key events of
    earlier sessions); `aggregate_cells` clips after summing to the model's features.
    """
    _columns(con, "fct_device_daily")
    device = con.sql(
        """
        SELECT date, device, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(sessions AS DOUBLE) AS sessions, CAST(key_events AS DOUBLE) AS key_events
        FROM fct_device_daily"""
    ).pl()
    return (
        device.with_columns(
            _campaign_key(pl.col("platform"), pl.col("campaign_id")).alias(CAMPAIGN),
            pl.col("date").dt.weekday().cast(pl.String).alias("day_of_week"),
            pl.col("sessions").fill_null(0.0).alias(TRIALS),
            pl.col("key_events").fill_null(0.0).alias(SUCCESSES),
        )
        .drop("sessions", "key_events")
        .sort("date", "platform", "campaign_id", "device")
    )


def aggregate_cells(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Sum trials and successes by `keys` (exact for a model whose features are `keys`), then clip successes to
    trials; the clipped amount is added to ``excess_successes``. Cells without trials are dropped (their successes
    are counted as excess)."""
    aggs = [pl.col(TRIALS).sum(), pl.col(SUCCESSES).sum()]
    if EXCESS in frame.columns:
        aggs.append(pl.col(EXCESS).sum())
    out = frame.group_by(list(keys), maintain_order=True).agg(aggs)
    if EXCESS not in out.columns:
        out = out.with_columns(pl.lit(0.0).alias(EXCESS))
    over = (pl.col(SUCCESSES) - pl.col(TRIALS)).clip(lower_bound=0)
    return (
        out.with_columns((pl.col(EXCESS) + over).alias(EXCESS), pl.min_horizontal(SUCCESSES, TRIALS).alias(SUCCESSES))
        .filter(pl.col(TRIALS) > 0)
        .sort(list(keys))
    )


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


def evaluate_split(
    train: pl.DataFrame, holdout: pl.DataFrame, spec: ModelSpec, group: str = CAMPAIGN
) -> tuple[BinomialLogit, dict[str, Any]]:
    """Fit on `train` cells, score on `holdout` cells: metrics of the model and of both frequency baselines."""
    tr, ho = aggregate_cells(train, spec.keys), aggregate_cells(holdout, spec.keys)
    model = spec.model().fit(tr)
    p = model.predict_proba(ho)
    s, n = ho[SUCCESSES].to_numpy(), ho[TRIALS].to_numpy()
    rates = frequency_baseline(tr, group)
    base = np.array([rates[k] for k in ho[group].to_list()])
    global_rate = float(tr[SUCCESSES].sum() / tr[TRIALS].sum())
    gain, gain_se = logloss_gain(p, base, s, n)
    metrics = {
        "holdout_auc": binomial_auc(p, s, n),
        "holdout_logloss": binomial_logloss(p, s, n),
        "baseline_auc": binomial_auc(base, s, n),
        "baseline_logloss": binomial_logloss(base, s, n),
        "global_baseline_logloss": binomial_logloss(np.full(len(n), global_rate), s, n),
        "logloss_gain": gain,  # baseline_logloss − holdout_logloss
        "logloss_gain_se": gain_se,
        "n_train_trials": float(tr[TRIALS].sum()),
        "n_train_successes": float(tr[SUCCESSES].sum()),
        "n_holdout_trials": float(n.sum()),
        "n_holdout_successes": float(s.sum()),
        "clipped_successes": float(tr[EXCESS].sum() + ho[EXCESS].sum()),
        "l2": dict(model.l2_),
    }
    return model, metrics


@dataclass(frozen=True)
class ResponseModel:
    """One response model: the held-out metrics and the model refitted on the full window (what calibration uses)."""

    name: str
    model: BinomialLogit  # refitted on the full window
    metrics: dict[str, Any]
    cells: pl.DataFrame  # full-window cells aggregated to the model's features, with the model's probability

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


def fit_response_model(
    name: str,
    frame: pl.DataFrame,
    spec: ModelSpec,
    *,
    holdout_days: int = 14,
    what: str = "trials",
    date_col: str = "date",
) -> ResponseModel:
    """Time-split evaluation of one model on `frame` cells (fit before the last `holdout_days`, score on them),
    then a refit on the full window. `what` names the trials in error messages."""
    if frame.height == 0 or frame[TRIALS].sum() <= 0:
        raise InsufficientDataError(f"{name} model: the data hold no {what}")
    train, holdout = time_split(frame, holdout_days, date_col)
    train_window, holdout_window = _window(train, date_col), _window(holdout, date_col)
    _check_groups(train, holdout, CAMPAIGN, what, train_window)
    try:
        _, metrics = evaluate_split(train, holdout, spec)
    except InsufficientDataError as exc:
        raise InsufficientDataError(
            f"{name} model, train {train_window[0]}..{train_window[1]}, "
            f"holdout {holdout_window[0]}..{holdout_window[1]}: {exc}"
        ) from exc
    metrics |= {
        "train_first_date": train_window[0],
        "train_last_date": train_window[1],
        "holdout_first_date": holdout_window[0],
        "holdout_last_date": holdout_window[1],
        "holdout_days": holdout_days,
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
    differently per auction); log(bid / CPC) when the marts carry bids."""
    numeric = tuple(c for c in ("impression_share", "log_bid_over_cpc") if c in frame.columns)
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
