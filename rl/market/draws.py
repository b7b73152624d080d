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
    n_rivals = (cm.comp_idx >= 0).sum(axis=1)
    lam = cm.expected_opportunities(date)  # [C, 24]
    scale = (
        np.ones((n_markets, n_campaigns))
        if volume_scale is None
        else np.broadcast_to(np.asarray(volume_scale, dtype=float).reshape(n_markets, -1), (n_markets, n_campaigns))
    )
    counts = np.empty((n_markets, n_campaigns, HOURS), dtype=np.int64)
    rngs = list(rngs)
    for m, rng in enumerate(rngs):
        counts[m] = rng.poisson(lam * scale[m][:, None])
    per_group = counts.sum(axis=2).reshape(-1)
    group_start = np.concatenate([[0], np.cumsum(per_group)])
    n_total = int(group_start[-1])
    # Each market's generator fills its own slice in place (no concatenation copies); rival normals are drawn only
    # for the rivals a campaign actually has, rival-major so the engine reads one rival's row at a time.
    arrays = {k: np.empty(n_total, dtype=np.float32) for k in _PER_OPP}
    comp_z = np.zeros((kmax, n_total), dtype=np.float32)
    z_drift = np.empty((n_markets, cm.n_competitors))
    for m, rng in enumerate(rngs):
        lo, hi = int(group_start[m * n_campaigns]), int(group_start[(m + 1) * n_campaigns])
        for name in _PER_OPP:
            if name.startswith("z_"):
                rng.standard_normal(dtype=np.float32, out=arrays[name][lo:hi])
            else:
                rng.random(dtype=np.float32, out=arrays[name][lo:hi])
        for c in range(n_campaigns):
            g = m * n_campaigns + c
            for j in range(n_rivals[c]):
                rng.standard_normal(dtype=np.float32, out=comp_z[j, group_start[g] : group_start[g + 1]])
        z_drift[m] = rng.standard_normal(cm.n_competitors)
    cell_counts = counts.reshape(-1)
    cells = np.arange(cell_counts.size)
    return DayDraws(
        date=date,
        n_markets=n_markets,
        counts=counts,
        market=np.repeat(cells // (n_campaigns * HOURS), cell_counts),
        campaign=np.repeat((cells // HOURS) % n_campaigns, cell_counts),
        hour=np.repeat(cells % HOURS, cell_counts),
        comp_z=comp_z.T,
        z_drift=z_drift,
        group_start=group_start,
        **arrays,
    )


# Every per-opportunity random field of `DayDraws`, in drawing order (rival normals are drawn per campaign block).
RANDOM_FIELDS = (
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
_PER_OPP = tuple(f for f in RANDOM_FIELDS if f != "comp_z")
