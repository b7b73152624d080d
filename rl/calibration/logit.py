"""The estimator behind the response models: a weighted binomial logistic regression on aggregated counts
(`BinomialLogit`; `rl.calibration.response`'s docstring states it in full) and its exact held-out metrics on
aggregated data (AUC with per-cell ties, log loss per trial, paired log-loss gain)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class HeldOut:
    """Held-out cells with the model's, the per-campaign baseline's and the global rate's probabilities, and
    their metrics (`metrics`), pooled over several held-out windows with `pooled`."""

    p: np.ndarray
    base: np.ndarray
    global_rate: np.ndarray
    s: np.ndarray
    n: np.ndarray
    n_train_trials: float
    n_train_successes: float
    excess: float

    @classmethod
    def pooled(cls, parts: list[HeldOut]) -> HeldOut:
        cat = np.concatenate
        return cls(
            cat([x.p for x in parts]),
            cat([x.base for x in parts]),
            cat([x.global_rate for x in parts]),
            cat([x.s for x in parts]),
            cat([x.n for x in parts]),
            sum(x.n_train_trials for x in parts),
            sum(x.n_train_successes for x in parts),
            sum(x.excess for x in parts),
        )

    def metrics(self, l2: dict) -> dict[str, Any]:
        gain, gain_se = logloss_gain(self.p, self.base, self.s, self.n)
        return {
            "holdout_auc": binomial_auc(self.p, self.s, self.n),
            "holdout_logloss": binomial_logloss(self.p, self.s, self.n),
            "baseline_auc": binomial_auc(self.base, self.s, self.n),
            "baseline_logloss": binomial_logloss(self.base, self.s, self.n),
            "global_baseline_logloss": binomial_logloss(self.global_rate, self.s, self.n),
            "logloss_gain": gain,  # baseline_logloss − holdout_logloss
            "logloss_gain_se": gain_se,
            "n_train_trials": self.n_train_trials,
            "n_train_successes": self.n_train_successes,
            "n_holdout_trials": float(self.n.sum()),
            "n_holdout_successes": float(self.s.sum()),
            "clipped_successes": self.excess,
            "l2": l2,
        }
