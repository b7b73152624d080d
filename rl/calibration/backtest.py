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
to reality would score. The check compares WAPE with max(threshold, 1.25 × floor) and reports both; a platform
with fewer than `MIN_JUDGED` observed units in the held-out days (a few conversions) is reported but not judged.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

from rl.calibration.data import CalibrationData, CalibrationError
from rl.calibration.fit import Calibration, calibrate
from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.market.params import MarketParams

METRICS = ("spend", "clicks", "conversions")
WARMUP_DAYS = 28
FLOOR_MARGIN = 1.25
MIN_JUDGED = 30.0  # a platform with fewer observed units over the held-out days is reported, not judged


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

    def label(self, metric: str, platform: str) -> str:
        """The WAPE and its noise floor as a reader should see them; a pair with too few observed units to judge
        (WAPE over a near-zero denominator is meaningless) says so instead."""
        observed = self.observed_total[metric][platform]
        if observed < MIN_JUDGED:
            return f"not judged ({observed:.0f} observed < {MIN_JUDGED})"
        return f"{self.wape[metric][platform]:.1%} (floor {self.floor[metric][platform]:.1%})"

    def failures(self, threshold: float) -> list[str]:
        """Metric/platform pairs whose WAPE exceeds max(threshold, FLOOR_MARGIN × noise floor); pairs with fewer
        than MIN_JUDGED observed units (e.g. a handful of conversions) are not judged."""
        out = []
        for metric, by in self.wape.items():
            for platform, value in by.items():
                if self.observed_total[metric][platform] < MIN_JUDGED:
                    continue
                limit = max(threshold, FLOOR_MARGIN * self.floor[metric][platform])
                if value > limit:
                    out.append(f"{metric} on {platform}: WAPE {value:.1%} > {limit:.1%}")
        return out


def simulate_settings(
    params: MarketParams, settings: pl.DataFrame, first: dt.date, last: dt.date, n_markets: int, seed: int
) -> pl.DataFrame:
    """Simulate first..last in `n_markets` replicates under the settings in force (settings: date, campaign_id,
    daily_budget, bid; a day without a row keeps the campaign's last settings). Returns one row per replicate,
    date, platform with spend, clicks and conversions by conversion date (counted only within first..last)."""
    cm = CompiledMarket.from_params(params)
    ids = cm.campaign_ids.tolist()
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
        draws = draw_day(cm, date, market_rngs(seed, n_markets, date))
        result, state = resolve_day(cm, draws, state, budgets, bids)
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
    holdout_days: int = 14,
    n_markets: int = 8,
    seed: int = 0,
    daily_budget: float = 500.0,
    target_cpa: float = 100.0,
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
    cal = calibrate(data.until(first - dt.timedelta(days=1)), daily_budget, target_cpa, response)
    settings = data.daily.select("date", "campaign_id", "daily_budget", "bid")
    sim_first = max(data.first, first - dt.timedelta(days=WARMUP_DAYS))
    sim = simulate_settings(cal.params, settings, sim_first, last, n_markets, seed).filter(pl.col("date") >= first)
    obs = (
        data.daily.filter(pl.col("date") >= first)
        .group_by("date", "platform")
        .agg(
            pl.col("spend").sum(),
            pl.col("clicks").sum().cast(pl.Float64),
            pl.col("key_events").sum().alias("conversions"),
        )
    )
    grid = obs.select("date", "platform").sort("date", "platform")
    reps = []
    for m in range(n_markets):
        r = grid.join(sim.filter(pl.col("replicate") == m).drop("replicate"), on=["date", "platform"], how="left")
        reps.append(r.fill_null(0.0))
    o = grid.join(obs, on=["date", "platform"], how="left")
    rows, wape, floor, total, observed_total = [], {}, {}, {}, {}
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
        wape[metric], floor[metric], total[metric], observed_total[metric] = {}, {}, {}, {}
        for p in [*platforms, "all"]:
            sel = np.ones(len(observed), bool) if p == "all" else (grid["platform"] == p).to_numpy()
            wape[metric][p] = _wape(observed[sel], mean[sel])
            observed_total[metric][p] = float(observed[sel].sum())
            total[metric][p] = float(abs(observed[sel].sum() - mean[sel].sum()) / max(observed[sel].sum(), 1e-9))
            loo = [_wape(stack[m, sel], np.delete(stack, m, axis=0)[:, sel].mean(axis=0)) for m in range(n_markets)]
            floor[metric][p] = float(np.mean(loo))
    return BacktestResult(first, last, cal, pl.concat(rows), wape, floor, total, observed_total)
