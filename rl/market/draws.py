"""The day's randomness, drawn before any action is known.

Every random number a day needs is drawn here, per opportunity, independent of budgets and bids: replaying the
same `DayDraws` under different actions gives common random numbers (the clairvoyant oracle and paired policy
evaluation rely on it), and the engine and the reference loop resolve the same draws to the same outcomes.

Per-opportunity draws are float32 (half the memory and generation time; 2^-24 resolution is ample for
probabilities of 1e-3 and up); every comparison and product with them happens in float64.

Opportunities are laid out flat, ordered by (market, campaign, hour, arrival); arrival order within an hour is
the index order (draws are i.i.d., so any fixed order is a random order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.params import HOURS


@dataclass(frozen=True)
class DayDraws:
    """Raw draws for one simulated day of M markets. N = total opportunities; Kmax = max rivals per campaign."""

    date: dt.date
    n_markets: int
    counts: np.ndarray  # [M, C, 24] opportunities per market, campaign, hour
    market: np.ndarray  # [N] int64
    campaign: np.ndarray  # [N] int64 (index into the campaign registry, not the id)
    hour: np.ndarray  # [N] int64
    u_device: np.ndarray  # [N] device = first d with u < device_cdf[d]
    u_segment: np.ndarray  # [N] segment = first s with u < seg_cdf[campaign, s]
    comp_z: np.ndarray  # [N, Kmax] standard normals behind each rival's lognormal bid (a view of [Kmax, N] memory)
    u_throttle: np.ndarray  # [N] platform pacing: served iff u < pacing probability
    u_click: np.ndarray  # [N] clicked iff u < CTR
    u_session: np.ndarray  # [N] click recorded as a session iff u < session rate
    u_conv: np.ndarray  # [N] session converts iff u < CVR
    u_lag: np.ndarray  # [N] conversion lag within the segment's range
    u_conv_hour: np.ndarray  # [N] hour of the conversion
    z_value: np.ndarray  # [N] standard normal behind the lognormal order value
    z_drift: np.ndarray  # [M, K] rivals' daily random walk
    group_start: np.ndarray  # [M*C + 1] offsets of each (market, campaign) block in the flat arrays

    @property
    def n_opportunities(self) -> int:
        return len(self.market)


def market_rngs(seed: int, n_markets: int, date: dt.date) -> list[np.random.Generator]:
    """One generator per market and date, so a market's day is the same whatever else is simulated with it."""
    return [np.random.default_rng([seed, m, date.toordinal()]) for m in range(n_markets)]


def draw_day(
    cm: CompiledMarket,
    date: dt.date,
    rngs: Sequence[np.random.Generator],
    volume_scale: np.ndarray | None = None,
) -> DayDraws:
    """Draw one day for `len(rngs)` independent markets.

    `volume_scale` ([M] or [M, C]) scales the expected opportunity counts per market (e.g. domain randomisation).
    """
    n_markets = len(rngs)
    n_campaigns = cm.n_campaigns
    kmax = cm.comp_idx.shape[1]
    lam = cm.expected_opportunities(date)  # [C, 24]
    scale = np.ones((n_markets, n_campaigns)) if volume_scale is None else np.broadcast_to(
        np.asarray(volume_scale, dtype=float).reshape(n_markets, -1), (n_markets, n_campaigns)
    )
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _PER_OPP}
    counts = np.empty((n_markets, n_campaigns, HOURS), dtype=np.int64)
    z_drift = np.empty((n_markets, cm.n_competitors))
    for m, rng in enumerate(rngs):
        c_m = rng.poisson(lam * scale[m][:, None])
        counts[m] = c_m
        n = int(c_m.sum())
        parts["u_device"].append(rng.random(n, dtype=np.float32))
        parts["u_segment"].append(rng.random(n, dtype=np.float32))
        parts["comp_z"].append(rng.standard_normal((kmax, n), dtype=np.float32))  # rival-major: the engine reads one rival at a time
        parts["u_throttle"].append(rng.random(n, dtype=np.float32))
        parts["u_click"].append(rng.random(n, dtype=np.float32))
        parts["u_session"].append(rng.random(n, dtype=np.float32))
        parts["u_conv"].append(rng.random(n, dtype=np.float32))
        parts["u_lag"].append(rng.random(n, dtype=np.float32))
        parts["u_conv_hour"].append(rng.random(n, dtype=np.float32))
        parts["z_value"].append(rng.standard_normal(n, dtype=np.float32))
        z_drift[m] = rng.standard_normal(cm.n_competitors)
    flat_counts = counts.reshape(-1)
    cell = np.repeat(np.arange(flat_counts.size), flat_counts)
    mc, hour = np.divmod(cell, HOURS)
    market, campaign = np.divmod(mc, n_campaigns)
    per_group = counts.sum(axis=2).reshape(-1)
    group_start = np.concatenate([[0], np.cumsum(per_group)])
    return DayDraws(
        date=date,
        n_markets=n_markets,
        counts=counts,
        market=market,
        campaign=campaign,
        hour=hour,
        z_drift=z_drift,
        group_start=group_start,
        comp_z=np.concatenate(parts.pop("comp_z"), axis=1).T,
        **{k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()},
    )


_PER_OPP = (
    "u_device",
    "u_segment",
    "comp_z",
    "u_throttle",
    "u_click",
    "u_session",
    "u_conv",
    "u_lag",
    "u_conv_hour",
    "z_value",
)
