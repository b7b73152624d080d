"""Rule-based baselines. Each reads only the observation (decoded by `rl.env.observation.decode`) and answers in
normalised settings — budget shares of the account budget and bid multipliers of the reference bid — which
`ActionCodec.encode` turns into actions; the environment's guardrails then apply (step limits, totals, max bids).

Money inside the policies is in *target-CPA units* (spend / target CPA): K = daily budget / target CPA is what a
full budget buys at target, and "value per unit" r = conversions × T / spend = target / CPA.

  StaticPolicy           fixed budget split (equal by default) and fixed bid multiplier;
  ProportionalPolicy     budgets ∝ trailing 28-day reported conversions (+ smoothing), fixed bids;
  PacerPolicy            PI controller on the account's log(target / CPA): raises bids when CPA is below target,
                         lowers bids and the total budget when above;
  ResponseCurvePolicy    per campaign fits conv/day = a · spend^b to the (28-day spend, 28-day conversions) points
                         it has seen (ridge prior on b), then sets spends that equalise marginal CPA, choosing the
                         total that maximises the predicted score within the budget;
  OnlineLPPolicy         every day solves the LP  max Σ r s  s.t. Σ s ≤ K,  Σ s ≤ slack · Σ r s  (account
                         CPA ≤ slack × target) over piecewise-linear concave responses around each campaign's
                         recent spend, from shrunk rolling rate estimates.

Each class has a small `GRID` of its one or two hyperparameters and `tune(venv, seeds)` (grid search on training
seeds with common random numbers, see `rl.policies.base.tune`).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import linprog

from rl.env.guardrails import ActionCodec
from rl.env.observation import decode
from rl.env.schema import ObservationSchema
from rl.policies.base import TuneResult, tune
from rl.policies.patterns import PATTERN_GRID, modifiers_in_force, with_patterns

EXPLORE_SHARE = 0.02  # minimum budget share per campaign for the adaptive allocators (keeps data coming)


class Baseline(abc.ABC):
    """Common plumbing: decode → `settings` (budgets and bids) and `modifiers` → encode. Subclasses implement
    `settings(features)`; `modifiers` holds the device and hour-block modifiers in force unless a subclass (or the
    pattern-rules variant, `rl.policies.patterns`) sets them."""

    name: ClassVar[str] = "baseline"
    GRID: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, schema: ObservationSchema, codec: ActionCodec):
        if codec.n_campaigns != schema.n_campaigns:
            raise ValueError("codec and schema disagree on the number of campaigns")
        if tuple(codec.mask.tolist()) != tuple(schema.modifiers):
            raise ValueError("codec and schema disagree on which campaigns have bid modifiers")
        self.schema = schema
        self.codec = codec
        self.n_envs = 0

    @classmethod
    def for_env(cls, env, **hyperparams) -> Baseline:
        """Build for an environment exposing `schema` and `codec` (`BiddingEnv`, `BatchedBiddingVecEnv`)."""
        return cls(env.schema, env.codec, **hyperparams)

    @classmethod
    def tune(cls, venv, seeds, grid: dict[str, list[Any]] | None = None) -> TuneResult:
        return tune(lambda **hp: cls.for_env(venv, **hp), cls.GRID if grid is None else grid, venv, seeds)

    def reset(self, n_envs: int) -> None:
        self.n_envs = n_envs

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.atleast_2d(obs)
        if self.n_envs != len(obs):
            self.reset(len(obs))
        f = decode(self.schema, obs)
        shares, mults = self.settings(f)
        device, hours = self.modifiers(f)
        return self.codec.encode(shares, mults, device, hours)

    @abc.abstractmethod
    def settings(self, f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Budget shares [n, C] and bid multipliers [n, C] from the decoded observation features."""

    def modifiers(self, f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Device [n, C, D] and hour-block [n, C, B] modifiers: by default the ones in force (held)."""
        return modifiers_in_force(self.schema, f, self.codec.modifier_range)

    # -- helpers shared by the adaptive baselines ----------------------------------------------------------------
    def _units(self, f) -> tuple[np.ndarray, np.ndarray]:
        """(K [n, 1], per-day spend in target-CPA units per unit of the spend features [n, 1])."""
        k = f["budget_at_target_cpa"][:, None]
        return k, k / self.schema.n_campaigns


class StaticPolicy(Baseline):
    """Fixed settings. Default: the account budget split equally, reference bids. `shares` fixes the split
    (fractions of the account budget, summing to ≤ 1), e.g. `StaticPolicy.reference(env)` holds the settings in
    force at the start (the market's current budgets and bids)."""

    name = "static"
    GRID = {"budget_fraction": [0.6, 0.8, 1.0], "bid_mult": [0.7, 1.0, 1.4]}

    def __init__(self, schema, codec, budget_fraction: float = 1.0, bid_mult: float = 1.0, shares=None):
        super().__init__(schema, codec)
        n_c = schema.n_campaigns
        self.shares = np.full(n_c, 1.0 / n_c) if shares is None else np.asarray(shares, dtype=float)
        if self.shares.shape != (n_c,) or np.any(self.shares < 0) or self.shares.sum() > 1 + 1e-9:
            raise ValueError(f"shares must be {n_c} non-negative fractions summing to <= 1, got {self.shares}")
        self.budget_fraction = budget_fraction
        self.bid_mult = bid_mult

    @classmethod
    def reference(cls, env) -> StaticPolicy:
        """Hold the reference settings: the (schema-ordered) params' current budgets and bids."""
        p = env.base_params
        shares = np.array([c.current_daily_budget for c in p.campaigns]) / p.daily_budget
        return cls(env.schema, env.codec, shares=shares)

    def settings(self, f):
        n = len(f["budget"])
        return np.tile(self.shares * self.budget_fraction, (n, 1)), np.full((n, self.schema.n_campaigns), self.bid_mult)


class ProportionalPolicy(Baseline):
    """Budget shares ∝ trailing 28-day reported conversions + `smoothing` pseudo-conversions; bids × `bid_mult`."""

    name = "proportional"
    GRID = {"smoothing": [0.5, 2.0, 8.0], "bid_mult": [0.8, 1.0, 1.25]}

    def __init__(self, schema, codec, smoothing: float = 2.0, bid_mult: float = 1.0):
        super().__init__(schema, codec)
        self.smoothing = smoothing
        self.bid_mult = bid_mult

    def settings(self, f):
        w = np.maximum(f["conversions_28d"], 0.0) + self.smoothing
        shares = w / w.sum(axis=1, keepdims=True)
        return shares, np.full_like(shares, self.bid_mult)


class PacerPolicy(Baseline):
    """PI control of the account CPA towards target. e = log(target / CPA) on the trailing 28 days (shrunk by one
    pseudo-conversion at target), u = kp·e + ki·Σe; bids = reference × e^u, total budget = min(1, e^u) × account
    budget, split equally."""

    name = "pacer"
    GRID = {"kp": [0.2, 0.5, 1.0], "ki": [0.0, 0.05, 0.2]}
    INTEGRAL_LIMIT = 10.0

    def __init__(self, schema, codec, kp: float = 0.5, ki: float = 0.05):
        super().__init__(schema, codec)
        self.kp, self.ki = kp, ki
        self.integral = np.zeros(0)

    def reset(self, n_envs: int) -> None:
        super().reset(n_envs)
        self.integral = np.zeros(n_envs)

    def settings(self, f):
        _, unit = self._units(f)
        spend28 = (f["spend_28d"] * unit).sum(axis=1) * 28  # target-CPA units
        conv28 = f["conversions_28d"].sum(axis=1)
        error = np.log((conv28 + 1.0) / (spend28 + 1.0))
        self.integral = np.clip(self.integral + error, -self.INTEGRAL_LIMIT, self.INTEGRAL_LIMIT)
        u = np.clip(
            self.kp * error + self.ki * self.integral, -np.log(self.codec.bid_range), np.log(self.codec.bid_range)
        )
        n_c = self.schema.n_campaigns
        shares = np.repeat(np.minimum(1.0, np.exp(u))[:, None] / n_c, n_c, axis=1)
        return shares, np.repeat(np.exp(u)[:, None], n_c, axis=1)


class ResponseCurvePolicy(Baseline):
    """Diminishing-returns allocator (what media-mix tools do). Every day it records per campaign the point
    (x = mean daily spend over 28 days, y = reported conversions per day over 28 days) and fits
    log y = log a + b log x by least squares with a ridge prior b ~ `exponent` (weight PRIOR_WEIGHT); conversions
    are multiplied by `uplift` to allow for conversions not yet reported. Spends then equalise the marginal CPA
    1 / (a b x^(b−1)) across campaigns; the common marginal level is the one whose predicted score is highest with
    total spend within the budget. Bids stay at the reference."""

    name = "response_curve"
    GRID = {"exponent": [0.4, 0.6, 0.8], "uplift": [1.0, 1.5, 2.0]}
    PRIOR_WEIGHT = 2.0
    MAX_HISTORY = 64
    EPS = 1e-3

    def __init__(self, schema, codec, exponent: float = 0.6, uplift: float = 1.3):
        super().__init__(schema, codec)
        self.exponent, self.uplift = exponent, uplift
        self.hist_x = np.zeros((0, 0, 0))
        self.hist_y = np.zeros((0, 0, 0))
        self.count = 0

    def reset(self, n_envs: int) -> None:
        super().reset(n_envs)
        shape = (n_envs, self.MAX_HISTORY, self.schema.n_campaigns)
        self.hist_x, self.hist_y, self.count = np.zeros(shape), np.zeros(shape), 0

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), each [n, C], from the recorded points."""
        h = min(self.count, self.MAX_HISTORY)
        lx = np.log(self.hist_x[:, :h] + self.EPS)
        ly = np.log(self.hist_y[:, :h] + self.EPS)
        mx, my = lx.mean(axis=1), ly.mean(axis=1)
        sxx = ((lx - mx[:, None]) ** 2).sum(axis=1)
        sxy = ((lx - mx[:, None]) * (ly - my[:, None])).sum(axis=1)
        b = np.clip((sxy + self.PRIOR_WEIGHT * self.exponent) / (sxx + self.PRIOR_WEIGHT), 0.1, 0.95)
        a = np.exp(my - b * mx)
        return a, b

    def settings(self, f):
        k, unit = self._units(f)
        x = f["spend_28d"] * unit  # per day, target-CPA units
        y = self.uplift * np.maximum(f["conversions_28d"], 0.0) / 28.0
        slot = self.count % self.MAX_HISTORY
        self.hist_x[:, slot], self.hist_y[:, slot] = x, y
        self.count += 1
        a, b = self.fit()
        spends = self.allocate(a, b, k)
        return spends / k, np.ones_like(spends)

    def allocate(self, a: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Per-day spends [n, C] (target-CPA units) on the equal-marginal-CPA path with the best predicted score."""
        n_c = self.schema.n_campaigns
        floor = EXPLORE_SHARE * k / n_c
        # marginal conversions per unit at spend x: a b x^(b−1) = μ  →  x = (a b / μ)^(1 / (1 − b))
        mus = np.geomspace(0.01, 100.0, 200)  # marginal conversions per target-CPA unit (1 = marginal CPA at target)
        best, best_score = None, None
        for mu in mus[::-1]:  # from the smallest spends up
            xs = np.clip((a * b / mu) ** (1.0 / (1.0 - b)), floor, k)
            conv = (a * xs**b).sum(axis=1)
            spend = xs.sum(axis=1)
            pred = conv * np.minimum(1.0, (conv / np.maximum(spend, 1e-12)) ** 2)
            pred = np.where(spend <= k[:, 0] * (1 + 1e-9), pred, -np.inf)  # over budget: not a candidate
            if best is None:  # fallback if even the smallest spends exceed the budget: scale them to fit
                best, best_score = xs * np.minimum(1.0, k / spend[:, None]), pred
                continue
            better = pred > best_score
            best = np.where(better[:, None], xs, best)
            best_score = np.where(better, pred, best_score)
        return best


class OnlineLPPolicy(Baseline):
    """Daily LP on rolling estimates with a piecewise-linear (concave) response per campaign.

    Rate r_c = (conv_c + PRIOR) / (spend_c + PRIOR / r_acc) over 28 days (gamma-Poisson shrinkage towards the
    account's rate r_acc). Spend of campaign c is split into segments of its recent daily spend x_c (the larger of
    yesterday's and the 7-day mean): [0, x_c] at r_c, then 0.5·x_c at r_c·decay, then x_c at r_c·decay² (buying more
    of a campaign gets dearer). A campaign that left ≥ 10% of yesterday's budget unspent cannot absorb more at its
    bid, so its segments stop at 1.25·x_c. Solved daily:  max Σ r s  s.t.  Σ s ≤ K,  Σ s ≤ slack · Σ r s (account
    CPA ≤ slack × target), each campaign ≥ a small exploration floor. Bids stay at the reference."""

    name = "online_lp"
    GRID = {"slack": [1.0, 1.25, 1.5], "decay": [0.5, 0.8]}
    PRIOR = 2.0
    SEGMENTS = (1.0, 0.5, 1.0)  # widths in units of recent spend

    def __init__(self, schema, codec, slack: float = 1.25, decay: float = 0.8):
        super().__init__(schema, codec)
        self.slack, self.decay = slack, decay

    def settings(self, f):
        k, unit = self._units(f)
        n_c = self.schema.n_campaigns
        spend28 = f["spend_28d"] * unit * 28
        conv28 = np.maximum(f["conversions_28d"], 0.0)
        r_acc = (conv28.sum(axis=1, keepdims=True) + 1.0) / (spend28.sum(axis=1, keepdims=True) + 1.0)
        rate = (conv28 + self.PRIOR) / (spend28 + self.PRIOR / r_acc)
        floor = np.broadcast_to(EXPLORE_SHARE * k / n_c, rate.shape)
        recent = np.maximum(np.maximum(f["spend_1d"], f["spend_7d"]) * unit, floor)
        cap = np.where(f["budget_utilisation_1d"] < 0.9, 1.25 * recent, np.inf)
        spends = self.solve(rate, recent, cap, floor, k[:, 0])
        return spends / k, np.ones_like(spends)

    def segments(self, rate, recent, cap, floor):
        """The LP's pieces, each [n, J, C]: rates, widths and lower bounds (the exploration floor)."""
        edges = np.cumsum(np.array(self.SEGMENTS)[None, :, None] * recent[:, None, :], axis=1)  # segment ends
        edges = np.minimum(edges, cap[:, None, :])
        widths = np.diff(np.concatenate([np.zeros_like(edges[:, :1]), edges], axis=1), axis=1)
        rates = rate[:, None, :] * self.decay ** np.arange(len(self.SEGMENTS))[None, :, None]
        lower = np.zeros_like(widths)
        lower[:, 0] = np.minimum(floor, widths[:, 0])
        return rates, widths, lower, edges

    def solve(self, rate, recent, cap, floor, budget) -> np.ndarray:
        """Per-campaign spends [n, C] (target-CPA units) for n markets at once; the floors where the LP is
        infeasible.

        Exact, without an LP solver: a piece with a higher rate is better for the objective and uses less of the
        CPA constraint (coefficient 1 − slack · r) for the same budget, so an optimum fills the pieces in order of
        falling rate — after the lower bounds — until the budget or the CPA constraint runs out, taking a fraction
        of the piece where it does. (`solve_lp` is the same LP through scipy's HiGHS, for tests.)"""
        rates, widths, lower, edges = self.segments(rate, recent, cap, floor)
        n, n_j, n_c = rates.shape
        r, w, lo = rates.reshape(n, -1), widths.reshape(n, -1), lower.reshape(n, -1)
        a = 1.0 - self.slack * r
        budget = np.asarray(budget, dtype=float).reshape(n)
        room = budget - lo.sum(axis=1)  # budget left after the lower bounds
        g0 = -(a * lo).sum(axis=1)  # how far the CPA constraint is from binding after them
        order = np.argsort(-r, axis=1, kind="stable")
        extra = np.take_along_axis(w - lo, order, axis=1)
        a_s = np.take_along_axis(a, order, axis=1)
        cum_e = np.cumsum(extra, axis=1)
        cum_g = g0[:, None] - np.cumsum(a_s * extra, axis=1)
        # pieces at or above the CPA target (a <= 0) only loosen the CPA constraint: take them while the budget
        # lasts; below it, only while the constraint still holds
        ok = (cum_e <= room[:, None] + 1e-12) & ((a_s <= 0) | (cum_g >= -1e-12))
        whole = np.logical_and.accumulate(ok, axis=1)
        taken = np.where(whole, extra, 0.0)
        # the first piece that does not fit whole: a fraction of it
        first = whole.sum(axis=1)
        has = first < extra.shape[1]
        i = np.minimum(first, extra.shape[1] - 1)
        rows = np.arange(n)
        prev_e = np.where(first > 0, cum_e[rows, np.maximum(first - 1, 0)], 0.0)
        prev_g = np.where(first > 0, cum_g[rows, np.maximum(first - 1, 0)], g0)
        e_i, a_i = extra[rows, i], a_s[rows, i]
        with np.errstate(divide="ignore", invalid="ignore"):
            by_budget = np.where(e_i > 0, (room - prev_e) / np.where(e_i > 0, e_i, 1.0), 0.0)
            by_cpa = np.where(a_i > 0, prev_g / np.where(a_i > 0, a_i, 1.0) / np.where(e_i > 0, e_i, 1.0), np.inf)
        frac = np.where(has, np.clip(np.minimum(by_budget, by_cpa), 0.0, 1.0), 0.0)
        taken[rows, i] += frac * e_i
        # infeasible: the lower bounds overspend, or even the best pieces cannot bring the CPA under the limit
        infeasible = (room < -1e-9) | (prev_g - np.where(has, a_i * frac * e_i, 0.0) < -1e-9)
        spends = np.empty_like(taken)
        np.put_along_axis(spends, order, taken, axis=1)
        spends = (lo + spends).reshape(n, n_j, n_c).sum(axis=1)
        return np.where(infeasible[:, None], np.minimum(floor, edges[:, -1]), spends)

    def solve_lp(self, rate, recent, cap, floor, budget: float) -> np.ndarray:
        """One market's spends [C] by scipy's LP solver (HiGHS): the reference `solve` is tested against."""
        rates, widths, lower, edges = self.segments(rate[None], recent[None], cap[None], floor[None])
        r, w, lo = rates.ravel(), widths.ravel(), lower.ravel()
        a_ub = np.stack([np.ones_like(r), 1.0 - self.slack * r])
        res = linprog(-r, A_ub=a_ub, b_ub=[budget, 0.0], bounds=list(zip(lo, w, strict=True)), method="highs")
        if res.status != 0:
            return np.minimum(floor, edges[0, -1])
        return res.x.reshape(widths.shape[1:]).sum(axis=0)


# the "pattern rules" variant of every baseline (`rl.policies.patterns`): the same budgets and bids, with device and
# hour-block modifiers set from the discovered patterns
StaticPatterns = with_patterns(StaticPolicy)
ProportionalPatterns = with_patterns(ProportionalPolicy)
PacerPatterns = with_patterns(PacerPolicy)
ResponseCurvePatterns = with_patterns(ResponseCurvePolicy)
OnlineLPPatterns = with_patterns(OnlineLPPolicy)
PLAIN: tuple[type[Baseline], ...] = (StaticPolicy, ProportionalPolicy, PacerPolicy, ResponseCurvePolicy, OnlineLPPolicy)
PATTERNS = (StaticPatterns, ProportionalPatterns, PacerPatterns, ResponseCurvePatterns, OnlineLPPatterns)
BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in PLAIN + PATTERNS}


def tune_baseline(name: str, venv, seeds, chosen: dict[str, dict]) -> TuneResult:
    """Grid-search one baseline on `seeds`. A pattern-rules variant searches only the pattern grid, on top of its
    baseline's hyperparameters in `chosen` (tuned first), so both are tuned as fairly with far fewer runs."""
    cls = BASELINES[name]
    base_name = getattr(cls, "base_name", None)
    if base_name is None:
        return cls.tune(venv, seeds)
    fixed = chosen.get(base_name, {})
    grid = {k: [v] for k, v in fixed.items()} | dict(PATTERN_GRID)
    return cls.tune(venv, seeds, grid)
