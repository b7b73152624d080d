"""The previous operator: the budget and bid changes a real account's history contains before GAELP runs it.

A real account's two years of history were not run at one fixed bid: marketers raised and lowered bids and
budgets every few weeks. Those changes are what make the bid landscape and the spend response identifiable from
reports (at a single fixed bid, only one point of each curve is ever observed). The demo world reproduces that:
every campaign's settings change every `PERIOD_DAYS` days (staggered across campaigns) by a seeded lognormal
factor around the campaign's current settings, until `SETTLE_DAYS` before the end of the default history, when
they return to the settings in the world file (the "bids in force now").

The schedule is a pure function of (params, seed): it is not stored, and the world applies it in `advance` and in
`replay` alike. The first push to a campaign hands it over: the operator changes it no more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from rl.market.params import MarketParams

PERIOD_DAYS = 14
SETTLE_DAYS = 42
BID_SIGMA, BID_RANGE = 0.25, (0.55, 1.6)
BUDGET_SIGMA, BUDGET_RANGE = 0.2, (0.6, 1.5)


@dataclass(frozen=True)
class OperatorChange:
    """The previous operator set `campaign_id` to (daily_budget, bid) from `date` on."""

    date: dt.date
    campaign_id: int
    daily_budget: float
    bid: float


def operator_changes(params: MarketParams, seed: int, history_days: int) -> list[OperatorChange]:
    """Every change of the previous operator, in date order (ties in campaign order)."""
    start = params.history_start
    settle = start + dt.timedelta(days=history_days - SETTLE_DAYS)
    rng = np.random.default_rng([seed, 0x0FE7A70])
    out: list[OperatorChange] = []
    for i, c in enumerate(params.campaigns):
        offset = (i * 5) % PERIOD_DAYS
        day = start + dt.timedelta(days=offset)
        while day < settle:
            bid_f = float(np.clip(np.exp(rng.normal(0.0, BID_SIGMA)), *BID_RANGE))
            budget_f = float(np.clip(np.exp(rng.normal(0.0, BUDGET_SIGMA)), *BUDGET_RANGE))
            bid = round(min(c.current_bid * bid_f, c.max_bid), 2)
            out.append(OperatorChange(day, c.id, round(c.current_daily_budget * budget_f, 2), bid))
            day += dt.timedelta(days=PERIOD_DAYS)
        if settle > start:
            out.append(OperatorChange(settle, c.id, c.current_daily_budget, c.current_bid))
    order = {c.id: i for i, c in enumerate(params.campaigns)}
    return sorted(out, key=lambda ch: (ch.date, order[ch.campaign_id]))
