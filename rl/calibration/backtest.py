"""The calibration backtest: fit on all but the most recent days, then simulate those held-out days with the
fitted market under the budgets and bids that were actually in force, and compare with what was reported.

Compared per platform and day: spend and clicks (by delivery day) and conversions by CONVERSION date as GA4
reports them (final the next day; ad-platform conversions by click date are still maturing on held-out days, so
they would compare a forecast with a partial count). Because a held-out day's conversions come partly from
clicks bought before it, the simulation starts `WARMUP_DAYS` before the held-out window (under the settings in
force then), which also builds up creative fatigue.

WAPE (weighted absolute percentage error) = Σ_days |observed − simulated mean| / Σ_days observed. A day of a small
platform is noisy even for a perfect simulator (a handful of conversions), so the backtest also measures the
noise floor: the WAPE of one simulated replicate against the mean of the others, i.e. what a simulator identical
to reality would score. The goal, per metric and platform: WAPE within `FLOOR_MARGIN` (1.15) × its noise floor,
and the held-out days' total within `TOTAL_TOLERANCE` (5%) of the observed total — or, where a perfect simulator's
total would miss by more (a platform's 14-day conversions are a few dozen: their total alone is ±15% noise),
within 1.15 × that total's own noise floor. A platform with fewer than `MIN_JUDGED` observed units in the held-out
days (a few conversions) is reported but not judged. The simulation applies the modifiers that were in force too:
every bid is the effective bid of its (hour, device) cell.

The goal is a bar to aim at, not a test: a perfect simulator misses it on some pair in most backtests (a 14-day
total of a few dozen conversions is ±15% noise, and a dozen pairs are judged). Whether the simulator is *materially
wrong* (`material_misses`, the blocking check) is a test with a stated false-alarm rate: a pair is a material miss
when its error is both large (WAPE above `block_margin` × its noise floor and `WAPE_POINTS` above it; the total off
by more than `block_tolerance`) and beyond what chance explains at family-wise level `alpha` (Bonferroni over the
judged pairs), where the chance in a total is the replicates' spread (at least Poisson for counts: the observed count
is itself a draw) plus the fit's own uncertainty (for counts, 1 / the units observed in the training window).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from rl.account import AccountSettings
from rl.calibration.data import CalibrationData, CalibrationError
from rl.calibration.fit import Calibration, calibrate
from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.market.modifiers import block_labels, cell_multipliers
from rl.market.params import DEVICES, MarketParams

METRICS = ("spend", "clicks", "conversions")
WARMUP_DAYS = 28
FLOOR_MARGIN = 1.15
TOTAL_TOLERANCE = 0.05
MIN_JUDGED = 30.0  # a platform with fewer observed units over the held-out days is reported, not judged
COUNTS = ("clicks", "conversions")  # metrics whose observed value is itself a count: at least Poisson noise
WAPE_POINTS = 0.05  # a material WAPE miss is at least this far above the noise floor (spend under a budget cap has
# a floor of a few tenths of a percent: twice that is no material error)


@dataclass
class BacktestResult:
    """daily: date, platform, metric, observed, simulated (mean), simulated_p10, simulated_p90.
    wape / floor: {metric: {platform or "all": value}}."""

    first: dt.date
    last: dt.date
    calibration: Calibration
    daily: pl.DataFrame
    wape: dict[str, dict[str, float]]
    floor: dict[str, dict[str, float]]
    total_error: dict[str, dict[str, float]]  # |Σ observed − Σ simulated| / Σ observed over the held-out days
    observed_total: dict[str, dict[str, float]]
    total_floor: dict[str, dict[str, float]] | None = None  # the same for one replicate against the others' mean
    total_sd: dict[str, dict[str, float]] | None = None  # sd of total's error by chance, over the observed total

    def label(self, metric: str, platform: str) -> str:
        """The WAPE and its noise floor as a reader should see them; a pair with too few observed units to judge
        (WAPE over a near-zero denominator is meaningless) says so instead."""
        observed = self.observed_total[metric][platform]
        if observed < MIN_JUDGED:
            return f"not judged ({observed:.0f} observed < {MIN_JUDGED})"
        return f"{self.wape[metric][platform]:.1%} (floor {self.floor[metric][platform]:.1%})"

    def failures(self, floor_margin: float = FLOOR_MARGIN, total_tolerance: float = TOTAL_TOLERANCE) -> list[str]:
        """Metric/platform pairs that miss the goal (module docstring): WAPE above floor_margin × its noise floor,
        or the total off by more than max(total_tolerance, floor_margin × the total's noise floor). Pairs with
        fewer than MIN_JUDGED observed units (e.g. a handful of conversions) are not judged."""
        out = []
        for metric, by in self.wape.items():
            for platform, value in by.items():
                if self.observed_total[metric][platform] < MIN_JUDGED:
                    continue
                limit = floor_margin * self.floor[metric][platform]
                if value > limit:
                    out.append(f"{metric} on {platform}: WAPE {value:.1%} > {limit:.1%} ({floor_margin} × noise floor)")
                total_floor = (self.total_floor or {}).get(metric, {}).get(platform, 0.0)
                tolerance = max(total_tolerance, floor_margin * total_floor)
                error = self.total_error.get(metric, {}).get(platform)
                if error is not None and error > tolerance:
                    out.append(f"{metric} on {platform}: held-out total off by {error:.1%} > {tolerance:.1%}")
        return out

    def judged(self) -> list[tuple[str, str]]:
        """The (metric, platform) pairs with enough observed units to judge."""
        return [(m, p) for m, by in self.observed_total.items() for p, v in by.items() if v >= MIN_JUDGED]

    def material_misses(self, alpha: float, block_margin: float, block_tolerance: float) -> list[str]:
        """Pairs on which the simulator is materially wrong (module docstring): the blocking check. A perfect
        simulator is blocked in at most `alpha` of backtests; a miss must also be large, whatever the data."""
        pairs = self.judged()
        z = float(stats.norm.ppf(1 - alpha / (2 * max(len(pairs), 1))))
        out = []
        for metric, platform in pairs:
            value, floor = self.wape[metric][platform], self.floor[metric][platform]
            limit = max(block_margin * floor, floor + WAPE_POINTS)
            if value > limit:
                out.append(f"{metric} on {platform}: WAPE {value:.1%} > {limit:.1%} (noise floor {floor:.1%})")
            error = self.total_error.get(metric, {}).get(platform)
            sd = (self.total_sd or {}).get(metric, {}).get(platform, 0.0)
            limit = max(block_tolerance, z * sd)
            if error is not None and error > limit:
                out.append(
                    f"{metric} on {platform}: held-out total off by {error:.1%} > {limit:.1%} "
                    f"({z:.2f} × its chance spread {sd:.1%})"
                )
        return out


def _modifiers_by_date(modifiers: pl.DataFrame | None, n_blocks: int) -> dict[dt.date, dict[int, np.ndarray]]:
    """{date: {campaign_id: [24, D] cell multipliers}} from fct_campaign_modifiers_daily rows."""
    if modifiers is None or modifiers.height == 0:
        return {}
    keys = list(DEVICES) + ["h" + label.replace("-", "_") for label in block_labels(n_blocks)]
    out: dict[dt.date, dict[int, np.ndarray]] = {}
    for (date, cid), g in modifiers.partition_by("date", "campaign_id", as_dict=True).items():
        values = dict(zip(g["modifier_key"].to_list(), g["bid_modifier"].to_list(), strict=True))
        v = np.array([values.get(k) if values.get(k) is not None else 1.0 for k in keys], dtype=float)
        out.setdefault(date, {})[int(cid)] = cell_multipliers(v[: len(DEVICES)], v[len(DEVICES) :])
    return out


def simulate_settings(
    params: MarketParams,
    settings: pl.DataFrame,
    first: dt.date,
    last: dt.date,
    n_markets: int,
    seed: int,
    modifiers: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Simulate first..last in `n_markets` replicates under the settings in force (settings: date, campaign_id,
    daily_budget, bid; modifiers: date, campaign_id, modifier_key, bid_modifier; a day without a row keeps the
    campaign's last ones). Returns one row per replicate, date, platform with spend, clicks and conversions by
    conversion date (counted only within first..last)."""
    cm = CompiledMarket.from_params(params)
    ids = cm.campaign_ids.tolist()
    mods = _modifiers_by_date(modifiers, params.hour_blocks)
    cells = {i: np.ones((24, len(DEVICES))) for i in ids}
    platform_of = np.array([params.campaign(i).platform for i in ids])
    by_date = {
        d: dict(zip(g["campaign_id"], zip(g["daily_budget"], g["bid"], strict=True), strict=True))
        for (d,), g in settings.partition_by("date", as_dict=True).items()
    }
    current = {c.id: (c.current_daily_budget, c.current_bid) for c in params.campaigns}
    state = MarketState.initial(cm, n_markets)
    acc: dict[tuple[int, dt.date, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    date = first
    while date <= last:
        current.update({k: v for k, v in by_date.get(date, {}).items() if v[0] is not None and v[1] is not None})
        budgets = np.tile([current[i][0] for i in ids], (n_markets, 1))
        bids = np.tile([current[i][1] for i in ids], (n_markets, 1))
        cells.update({k: v for k, v in mods.get(date, {}).items() if k in cells})
        bid_mult = np.stack([cells[i] for i in ids])[None]
        draws = draw_day(cm, date, market_rngs(seed, n_markets, date))
        result, state = resolve_day(cm, draws, state, budgets, bids, bid_mult)
        spend, clicks = result.per_campaign("cost"), result.per_campaign("clicks")
        for m in range(n_markets):
            for p in set(platform_of):
                on = platform_of == p
                a = acc[(m, date, p)]
                a[0] += float(spend[m, on].sum())
                a[1] += float(clicks[m, on].sum())
        ev = result.events
        for m, c, lag in zip(ev.market.tolist(), ev.campaign.tolist(), ev.lag_days.tolist(), strict=True):
            conv_date = date + dt.timedelta(days=int(lag))
            if conv_date <= last:
                acc[(m, conv_date, str(platform_of[c]))][2] += 1.0
        date += dt.timedelta(days=1)
    rows = [(m, d, p, *v) for (m, d, p), v in acc.items()]
    return pl.DataFrame(rows, schema=["replicate", "date", "platform", *METRICS], orient="row")


def _wape(obs: np.ndarray, pred: np.ndarray) -> float:
    return float(np.abs(obs - pred).sum() / max(obs.sum(), 1e-9))


def backtest(
    data: CalibrationData,
    account: AccountSettings,
    holdout_days: int = 14,
    n_markets: int = 8,
    seed: int = 0,
    response=None,
) -> BacktestResult:
    """Fit on the window without its last `holdout_days` days, simulate those, compare (module docstring)."""
    last = data.last
    first = last - dt.timedelta(days=holdout_days - 1)
    if (first - data.first).days < 28:
        raise CalibrationError(
            f"a {holdout_days}-day backtest needs at least 28 training days before {first}; "
            f"the window starts {data.first}"
        )
    training = data.until(first - dt.timedelta(days=1))
    cal = calibrate(training, account, response)
    fitted_on = training.daily.group_by("platform").agg(
        pl.col("clicks").sum().cast(pl.Float64), pl.col("key_events").sum().alias("conversions")
    )
    settings = data.daily.select("date", "campaign_id", "daily_budget", "bid")
    sim_first = max(data.first, first - dt.timedelta(days=WARMUP_DAYS))
    sim = simulate_settings(cal.params, settings, sim_first, last, n_markets, seed, data.modifiers)
    sim = sim.filter(pl.col("date") >= first)
    obs = (
        data.daily.filter(pl.col("date") >= first)
        .group_by("date", "platform")
        .agg(
            pl.col("spend").sum(),
            pl.col("clicks").sum().cast(pl.Float64),
            pl.col("key_events").sum().alias("conversions"),
        )
    )
    return score(first, last, cal, obs, sim, n_markets, fitted_on)


def score(
    first: dt.date,
    last: dt.date,
    cal: Calibration | None,
    obs: pl.DataFrame,
    sim: pl.DataFrame,
    n_markets: int,
    fitted_on: pl.DataFrame,
) -> BacktestResult:
    """Compare the held-out days. obs: date, platform and METRICS as observed; sim: the same per replicate
    (0 .. n_markets − 1); fitted_on: platform, clicks, conversions observed in the training window."""
    grid = obs.select("date", "platform").sort("date", "platform")
    reps = []
    for m in range(n_markets):
        r = grid.join(sim.filter(pl.col("replicate") == m).drop("replicate"), on=["date", "platform"], how="left")
        reps.append(r.fill_null(0.0))
    o = grid.join(obs, on=["date", "platform"], how="left")
    rows, wape, floor, total, observed_total, total_floor, total_sd = [], {}, {}, {}, {}, {}, {}
    platforms = sorted(grid["platform"].unique().to_list())
    for metric in METRICS:
        stack = np.stack([r[metric].to_numpy() for r in reps])  # [M, rows]
        mean = stack.mean(axis=0)
        observed = o[metric].to_numpy()
        rows.append(
            grid.with_columns(
                pl.lit(metric).alias("metric"),
                pl.Series("observed", observed),
                pl.Series("simulated", mean),
                pl.Series("simulated_p10", np.quantile(stack, 0.1, axis=0)),
                pl.Series("simulated_p90", np.quantile(stack, 0.9, axis=0)),
            )
        )
        wape[metric], floor[metric], total[metric], observed_total[metric], total_floor[metric] = {}, {}, {}, {}, {}
        total_sd[metric] = {}
        for p in [*platforms, "all"]:
            sel = np.ones(len(observed), bool) if p == "all" else (grid["platform"] == p).to_numpy()
            wape[metric][p] = _wape(observed[sel], mean[sel])
            observed_total[metric][p] = float(observed[sel].sum())
            total[metric][p] = float(abs(observed[sel].sum() - mean[sel].sum()) / max(observed[sel].sum(), 1e-9))
            loo = [_wape(stack[m, sel], np.delete(stack, m, axis=0)[:, sel].mean(axis=0)) for m in range(n_markets)]
            floor[metric][p] = float(np.mean(loo))
            sums = stack[:, sel].sum(axis=1)
            others = (sums.sum() - sums) / max(n_markets - 1, 1)
            total_floor[metric][p] = float(np.mean(np.abs(sums - others)) / max(sums.mean(), 1e-9))
            total_sd[metric][p] = _chance_spread(metric, p, sums, fitted_on) / max(observed[sel].sum(), 1e-9)
    return BacktestResult(first, last, cal, pl.concat(rows), wape, floor, total, observed_total, total_floor, total_sd)


def _chance_spread(metric: str, platform: str, sums: np.ndarray, fitted_on: pl.DataFrame) -> float:
    """The sd of (observed − simulated mean) of a held-out total when the simulator is right: one draw's spread
    (the replicates', at least Poisson for counts) plus the mean's, and for counts the fit's own uncertainty (a
    rate estimated from N units is uncertain by 1/sqrt(N))."""
    mean = max(float(sums.mean()), 1e-9)
    var = float(sums.var(ddof=1)) if len(sums) > 1 else 0.0
    rel_var = var / mean**2
    fit_var = 0.0
    if metric in COUNTS:
        rel_var = max(rel_var, 1.0 / mean)
        rows = fitted_on if platform == "all" else fitted_on.filter(pl.col("platform") == platform)
        units = float(rows[metric].sum()) if rows.height else 0.0
        fit_var = 1.0 / units if units > 0 else 0.0
    return mean * float(np.sqrt(rel_var * (1 + 1 / len(sums)) + fit_var))
