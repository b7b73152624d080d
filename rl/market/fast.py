"""The fast day: the market's day from its bid landscapes (`rl.market.landscape`) instead of opportunity by
opportunity — for training, where a decision must be cheap; every score that is reported comes from the full
engine (`rl.market.engine`).

The full engine draws ~100,000 opportunities a day per market. Here every (campaign, hour, device) cell gets its
expected outcome from the landscape in one lookup and then the noise that matters for learning is drawn on the
cell's totals:

  * opportunities: Poisson around the expected volume (normal approximation; the cell's other totals scale with it);
  * pacing: the expected served share (`served_fraction`: throttling and the budget stop);
  * won auctions and impressions: the expected shares of the opportunities, randomly rounded;
  * clicks: Poisson around the expected served clicks; cost = clicks × the cell's expected price per click
    (search) or impressions × its price per impression (social);
  * conversions: Poisson per (cell, segment) around the expected served conversions, each with its segment's lag
    (the engine's law), a conversion hour and a lognormal order value;
  * the budget is never exceeded: if the day's cost passes it, the last hours are cut, as the platform stops.

Every random number of a (seed, market, date) comes from one generator drawn in a fixed order whatever the settings
(`fast_draws`): two environments stepped with the same seed see the same luck (common random numbers, which paired
training relies on). Tests hold its scores and policy rankings to the full engine's within their noise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from rl.market.compiled import CompiledMarket
from rl.market.engine import LAG_SKEW, ConversionEvents, DayResult, MarketState, next_state
from rl.market.landscape import Landscape, campaign_shift, served_fraction
from rl.market.params import DEVICES, HOURS

N_DEVICES = len(DEVICES)
FAST_TAG = 0xFA57
UNITS = 512  # conversion units drawn per market and day (lag, hour, value); more conversions reuse them cyclically


@dataclass(frozen=True)
class FastDraws:
    """A day's fixed random numbers for M markets (all uniforms in (0, 1) unless z_)."""

    date: dt.date
    z_opps: np.ndarray  # [M, C, 24, D]
    u_clicks: np.ndarray  # [M, C, 24, D]
    u_round: np.ndarray  # [M, C, 24, D, 3] random rounding of won, impressions, sessions
    u_conv: np.ndarray  # [M, C, 24, D, S]
    u_lag: np.ndarray  # [M, UNITS]
    u_hour: np.ndarray  # [M, UNITS]
    z_value: np.ndarray  # [M, UNITS]
    z_drift: np.ndarray  # [M, K]


def fast_draws(cm: CompiledMarket, date: dt.date, seed: int, n_markets: int) -> FastDraws:
    """The day's random numbers; market m's come from generator [seed, m, date, FAST_TAG] alone."""
    n_c, n_s, n_k = cm.n_campaigns, len(cm.seg_cvr), cm.n_competitors
    cell = (n_c, HOURS, N_DEVICES)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in FastDraws.__dataclass_fields__ if k != "date"}
    for m in range(n_markets):
        rng = np.random.default_rng([seed, m, date.toordinal(), FAST_TAG])
        parts["z_opps"].append(rng.standard_normal(cell))
        parts["u_clicks"].append(rng.random(cell))
        parts["u_round"].append(rng.random(cell + (3,)))
        parts["u_conv"].append(rng.random(cell + (n_s,)))
        parts["u_lag"].append(rng.random(UNITS))
        parts["u_hour"].append(rng.random(UNITS))
        parts["z_value"].append(rng.standard_normal(UNITS))
        parts["z_drift"].append(rng.standard_normal(n_k))
    return FastDraws(date=date, **{k: np.stack(v) for k, v in parts.items()})


def poisson_quantile(u: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """The Poisson(mu) quantile of u (elementwise): exact by the cumulative probabilities for mu <= 30, the normal
    approximation with continuity correction above."""
    u = np.asarray(u, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 0.0)
    out = np.zeros(np.broadcast(u, mu).shape, dtype=np.int64)
    u, mu = np.broadcast_to(u, out.shape), np.broadcast_to(mu, out.shape)
    big = mu > 30.0
    if big.any():
        out[big] = np.maximum(np.floor(mu[big] + np.sqrt(mu[big]) * ndtri(u[big]) + 0.5), 0).astype(np.int64)
    small = np.flatnonzero((~big).reshape(-1) & (mu.reshape(-1) > 0))
    if len(small):
        us, ms = u.reshape(-1)[small], mu.reshape(-1)[small]
        p = np.exp(-ms)
        cdf = p.copy()
        k = np.zeros(len(small), dtype=np.int64)
        pending = np.flatnonzero(us > cdf)
        while len(pending):
            k[pending] += 1
            p[pending] *= ms[pending] / k[pending]
            cdf[pending] += p[pending]
            pending = pending[(us[pending] > cdf[pending]) & (p[pending] > 1e-300)]
        out.reshape(-1)[small] = k
    return out


def _rround(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Random rounding: floor(x + u), unbiased for u uniform."""
    return np.floor(np.maximum(x, 0.0) + u)


def fast_day(
    land: Landscape,
    draws: FastDraws,
    state: MarketState,
    budgets: np.ndarray,
    bids: np.ndarray,
    bid_mult: np.ndarray | None = None,
    volume_scale: np.ndarray | None = None,
) -> tuple[DayResult, MarketState]:
    """One day of M markets from the landscapes (module docstring); the same result type as `resolve_day`."""
    cm = land.cm
    budgets = np.asarray(budgets, dtype=float)
    bids = np.asarray(bids, dtype=float)
    n_m, n_c = budgets.shape
    eff = bids[:, :, None, None] * (1.0 if bid_mult is None else np.asarray(bid_mult, dtype=float))
    eff = np.broadcast_to(eff, (n_m, n_c, HOURS, N_DEVICES))
    with np.errstate(divide="ignore"):
        log_bid = np.where(eff > 0, np.log(np.maximum(eff, 1e-300)), -np.inf)
    r = land.rates(log_bid, campaign_shift(cm, state.comp_shift), state.exposure)
    opps_s = land.opportunities(draws.date, volume_scale, n_m)  # [M, C, 24, D, S]
    expected_opps = opps_s.sum(axis=-1)
    # the day's volume: Poisson around the expectation; every expected total of the cell scales with it
    opps = np.maximum(np.floor(expected_opps + np.sqrt(expected_opps) * draws.z_opps + 0.5), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(expected_opps > 0, opps / np.where(expected_opps > 0, expected_opps, 1.0), 0.0)
    scaled = opps_s * rho[..., None]
    won_e = (scaled * r["won"]).sum(axis=-1)
    clicks_e = (scaled * r["clicks"]).sum(axis=-1)
    cost_e = (scaled * r["cost"]).sum(axis=-1)
    conv_e = scaled * r["conversions"]  # [M, C, 24, D, S]
    search = cm.is_search[None, :, None, None]
    potential = cost_e.sum(axis=(2, 3))
    items = np.where(cm.is_search[None, :], clicks_e.sum(axis=(2, 3)), won_e.sum(axis=(2, 3)))
    t = served_fraction(budgets, potential, items)[:, :, None, None]
    won = np.minimum(_rround(won_e, draws.u_round[..., 0]), opps)
    impressions = np.minimum(_rround(won_e * t, draws.u_round[..., 1]), won)
    conversions = poisson_quantile(draws.u_conv, conv_e * t[..., None]).astype(float)  # [M, C, 24, D, S]
    conv_cell = conversions.sum(axis=-1)
    sessions = np.maximum(_rround(clicks_e * t * cm.session_rate[None, :, None, None], draws.u_round[..., 2]), 0.0)
    clicks = poisson_quantile(draws.u_clicks, clicks_e * t).astype(float)
    sessions = np.maximum(np.minimum(sessions, clicks), conv_cell)
    clicks = np.maximum(clicks, sessions)
    impressions = np.maximum(impressions, np.where(search, clicks, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_click = np.where(clicks_e > 0, cost_e / np.where(clicks_e > 0, clicks_e, 1.0), 0.0)
        per_impr = np.where(won_e > 0, cost_e / np.where(won_e > 0, won_e, 1.0), 0.0)
    cost = np.where(search, clicks * per_click, impressions * per_impr)
    # the platform stops at the budget: cut the day from its last hours until the cost fits
    keep = _budget_stop(cost, budgets)  # [M, C, 24] share of each hour that is served
    if np.any(keep < 1.0):
        k4 = keep[..., None]
        impressions, clicks, sessions = (np.floor(x * k4) for x in (impressions, clicks, sessions))
        conversions = np.floor(conversions * k4[..., None])
        conv_cell = conversions.sum(axis=-1)
        sessions = np.maximum(sessions, conv_cell)
        clicks = np.maximum(clicks, sessions)
        cost = np.minimum(cost * k4, np.where(search, clicks * per_click, impressions * per_impr))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_pos = np.where(
            (opps_s * r["won"]).sum(axis=-1) > 0,
            (opps_s * r["position"]).sum(axis=-1) / np.maximum((opps_s * r["won"]).sum(axis=-1), 1e-300),
            0.0,
        )
    events, revenue = _events(cm, draws, conversions)
    result = DayResult(
        date=draws.date,
        opportunities=opps,
        auctions_won=won,
        impressions=impressions,
        clicks=clicks,
        cost=cost,
        sessions=sessions,
        conversions=conv_cell,
        revenue=revenue,
        position_sum=impressions * mean_pos,
        events=events,
        budgets=budgets,
        bids=bids,
    )
    return result, next_state(cm, state, result, draws)


def _budget_stop(cost: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """[M, C, 24] the served share of each hour when the day's cost [M, C, 24, D] must fit the budget [M, C]."""
    by_hour = cost.sum(axis=3)
    cum = np.cumsum(by_hour, axis=2)
    before = cum - by_hour
    room = budgets[:, :, None] - before
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(by_hour > 0, np.clip(room / np.where(by_hour > 0, by_hour, 1.0), 0.0, 1.0), 1.0)
    return np.where(budgets[:, :, None] > 0, share, 0.0)


def _events(cm: CompiledMarket, draws: FastDraws, conversions: np.ndarray) -> tuple[ConversionEvents, np.ndarray]:
    """One event per conversion, with the engine's lag law; and revenue per cell [M, C, 24, D]."""
    shape = conversions.shape  # [M, C, 24, D, S]
    flat = conversions.reshape(-1).astype(np.int64)
    cells = np.repeat(np.arange(flat.size), flat)
    m, c, h, d, s = np.unravel_index(cells, shape)
    # each conversion's unit within its market: its rank among the market's conversions, reusing units cyclically
    per_market = np.bincount(m, minlength=shape[0])
    start = np.concatenate([[0], np.cumsum(per_market)[:-1]])
    unit = (np.arange(len(cells)) - start[m]) % UNITS
    span = cm.lag_max[s] - cm.lag_min[s] + 1
    lag = cm.lag_min[s] + np.minimum((draws.u_lag[m, unit] ** LAG_SKEW * span).astype(np.int64), span - 1)
    u_hour = draws.u_hour[m, unit]
    conv_hour = np.where(lag == 0, h + (u_hour * (HOURS - h)).astype(np.int64), (u_hour * HOURS).astype(np.int64))
    value = cm.value_median[s] * np.exp(cm.value_sigma[s] * draws.z_value[m, unit])
    revenue = np.zeros(shape[:4])
    np.add.at(revenue, (m, c, h, d), value)
    events = ConversionEvents(
        market=m.astype(np.int64),
        campaign=c.astype(np.int64),
        device=d.astype(np.int64),
        segment=s.astype(np.int64),
        click_hour=h.astype(np.int64),
        lag_days=lag.astype(np.int64),
        conv_hour=np.minimum(conv_hour, HOURS - 1),
        value=value,
    )
    return events, revenue
