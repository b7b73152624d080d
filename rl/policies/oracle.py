"""Two hindsight yardsticks for one day whose randomness is fixed (common random numbers).

* `clairvoyant_oracle` — the best per-campaign daily budget and bid *on its grid* for that day, knowing the day's
  realised opportunities. It replays a grid of bids per campaign (and, when given, a set of candidate device ×
  hour-block modifier patterns) through the engine's own auction and pacing, with the campaign's budget on a
  dollar grid, then picks one (bid, modifiers, budget) per campaign by an exact dynamic programme over (budget
  used, conversions) → least spend, and maximises the score. On its grid it is exact: no policy choosing from the
  same grid can score higher on that day; settings off the grid (finer bids, other modifiers) can.
* `informed_oracle` — a greedy diagnostic: the best settings for one day on the same grid knowing the market's *true
  parameters and state* but not the day's draws (replicate days), maximising the score of the expected conversions
  and spend. It is not a ceiling: the score of expectations is not the expected score, its shadow prices are fixed,
  its grid is narrower than the action space, it ignores the daily step and per-day optima need not add up to the
  best episode. The yardstick is `rl.policies.ceiling` (plans the episode in the action space, expected score).
* `lp_bound` — the per-auction knapsack relaxation: buy any individual opportunity at the cheapest slot where it
  would have clicked and converted, fractionally, under the daily budget. No bid setting reaches it; it bounds
  how much better any policy could possibly be.

All score a day as conversions × min(1, (target CPA / CPA)²) with spend ≤ the daily budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.market.auction import blocks, click_outcomes, clicks_and_cost, pace, run_auction
from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws
from rl.market.engine import MarketState

# Quarter-octave steps from ×0.25 to ×2.83, including ×1 (the bids in force are on the grid).
DEFAULT_BID_MULTIPLIERS = tuple(float(2 ** (k / 4)) for k in range(-8, 7))


def day_score(conversions: float, spend: float, target_cpa: float) -> float:
    """conversions × min(1, (target CPA / realised CPA)²); 0 without conversions."""
    if conversions <= 0:
        return 0.0
    cpa = spend / conversions
    return float(conversions * min(1.0, (target_cpa / cpa) ** 2)) if cpa > 0 else float(conversions)


@dataclass(frozen=True)
class OracleResult:
    """The clairvoyant choice for one day: per campaign bid and budget, and what the day then yields.
    `modifier_option` [C]: the index of the chosen candidate modifier pattern (0 when none were given)."""

    bids: np.ndarray  # [C]
    budgets: np.ndarray  # [C]
    spend: float
    conversions: float
    score: float
    campaign_spend: np.ndarray  # [C]
    campaign_conversions: np.ndarray  # [C]
    modifier_option: np.ndarray | None = None  # [C] int

    @property
    def cpa(self) -> float:
        return self.spend / self.conversions if self.conversions else float("inf")


@dataclass(frozen=True)
class LPBoundResult:
    spend: float
    conversions: float  # fractional
    score: float
    items: int  # opportunities that could have been bought as a converting click


def _single_market(draws: DayDraws) -> None:
    if draws.n_markets != 1:
        raise ValueError(f"oracles work on one market's day; got draws for {draws.n_markets} markets")


def bid_grid(cm: CompiledMarket, multipliers=DEFAULT_BID_MULTIPLIERS) -> np.ndarray:
    """[G, C] candidate bids: multiples of the bid in force, capped at each campaign's max bid."""
    ref = np.array([c.current_bid for c in cm.params.campaigns])
    cap = np.array([c.max_bid for c in cm.params.campaigns])
    return np.minimum(np.asarray(multipliers)[:, None] * ref[None, :], cap[None, :])


def campaign_outcomes(
    cm, draws, state, bids_grid, budget_levels, cell_mult: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Spend and conversions for every (bid row, campaign, budget level): arrays [G, C, L].

    Uses the engine's own auction and pacing (`rl.market.auction`), with pacing evaluated for all budget levels at
    once. `cell_mult` ([G, C, 24, D], or anything that broadcasts to it): the bid multiplier of every (hour, device)
    cell for each row (device × hour-block modifiers); None: 1."""
    n_g, n_c, n_l = len(bids_grid), cm.n_campaigns, len(budget_levels)
    spend = np.zeros((n_g, n_c, n_l))
    conv = np.zeros((n_g, n_c, n_l))
    mult = None
    if cell_mult is not None:
        mult = np.broadcast_to(np.asarray(cell_mult, dtype=float), (n_g, n_c, 24, 3)).reshape(n_g, n_c, 72)
    for b in blocks(cm, draws, state):
        sl = slice(b.lo, b.hi)
        _, converts_if_clicked = click_outcomes(cm, draws, b)
        hd = b.hour * 3 + b.device
        for g, bids in enumerate(bids_grid):
            bid = bids[b.c] if mult is None else bids[b.c] * mult[g, b.c][hd]
            position, shown, price = run_auction(cm, b, bid)
            clicked, cost = clicks_and_cost(cm, b, draws.u_click[sl], position, shown, price)
            converts = clicked & converts_if_clicked
            # Shown opportunities with no cost and no conversion cannot change spend or conversions.
            keep = np.flatnonzero(shown & ((cost > 0) | converts))
            if len(keep) == 0:
                continue
            item_cost = cost[keep]
            served = pace(item_cost, np.ones(len(keep), dtype=bool), draws.u_throttle[sl][keep], budget_levels)
            spend[g, b.c] = np.where(served, item_cost[None, :], 0.0).sum(axis=1)
            conv[g, b.c] = (served & converts[keep][None, :]).sum(axis=1)
    return spend, conv


def _with_options(grid: np.ndarray, options: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Every (bid row, modifier option) pair as one row: bids [G·O, C], cell multipliers [G·O, C, 24, D] or None."""
    if options is None:
        return grid, None, 1
    options = np.asarray(options, dtype=float)
    if options.ndim != 4 or options.shape[2:] != (24, 3):
        raise ValueError(f"modifier options must be [O, C, 24, 3] cell multipliers, got shape {options.shape}")
    n_o = len(options)
    return np.repeat(grid, n_o, axis=0), np.tile(options, (len(grid), 1, 1, 1)), n_o


def clairvoyant_oracle(
    cm: CompiledMarket,
    draws: DayDraws,
    state: MarketState,
    budget_step: float = 5.0,
    multipliers=DEFAULT_BID_MULTIPLIERS,
    modifier_options: np.ndarray | None = None,
) -> OracleResult:
    """Best (bid, modifiers, budget) per campaign for this day in hindsight; budgets on a `budget_step` grid summing
    to at most the account's daily budget, bids from `bid_grid(cm, multipliers)`, modifiers one of
    `modifier_options` ([O, C, 24, D] cell multipliers; None: no modifiers)."""
    _single_market(draws)
    total = cm.params.daily_budget
    n_units = int(np.floor(total / budget_step + 1e-9))
    levels = np.arange(n_units + 1) * budget_step
    grid, cell_mult, n_o = _with_options(bid_grid(cm, multipliers), modifier_options)
    spend, conv = campaign_outcomes(cm, draws, state, grid, levels, cell_mult)
    conv_i = np.rint(conv).astype(np.int64)
    k_max = int(conv_i.max(axis=(0, 2)).sum())
    inf = np.inf
    best = np.full((n_units + 1, k_max + 1), inf)  # least spend for (budget units used, conversions)
    best[0, 0] = 0.0
    choices = []  # per campaign: [units, conv] -> (bid row, level) chosen, for back-tracking
    for c in range(cm.n_campaigns):
        new = np.full_like(best, inf)
        arg = np.full(best.shape + (3,), -1, dtype=np.int64)
        # For each (budget units, conversions) keep only the cheapest bid row: others are dominated.
        s_c, k_c = spend[:, c, :], conv_i[:, c, :]
        for level in range(n_units + 1):
            for k in np.unique(k_c[:, level]):
                rows = np.flatnonzero(k_c[:, level] == k)
                g = rows[np.argmin(s_c[rows, level])]
                s = s_c[g, level]
                cand = best[: n_units + 1 - level, : k_max + 1 - k] + s
                tgt = new[level:, k:]
                better = cand < tgt
                if better.any():
                    tgt[better] = cand[better]
                    a = arg[level:, k:]
                    a[better] = (g, level, k)
        best = new
        choices.append(arg)
    spend_total = best
    ks = np.arange(k_max + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        cpa = np.where(ks > 0, spend_total / np.maximum(ks, 1), inf)
        score = np.where(
            np.isfinite(spend_total) & (ks > 0), ks * np.minimum(1.0, (cm.params.target_cpa / cpa) ** 2), 0.0
        )
    score = np.where(np.isfinite(score), score, 0.0)
    u, k = np.unravel_index(np.argmax(score), score.shape)
    bids = np.zeros(cm.n_campaigns)
    budgets = np.zeros(cm.n_campaigns)
    option = np.zeros(cm.n_campaigns, dtype=np.int64)
    c_spend = np.zeros(cm.n_campaigns)
    c_conv = np.zeros(cm.n_campaigns)
    for c in reversed(range(cm.n_campaigns)):
        g, level, kc = choices[c][u, k]
        if g < 0:  # the empty choice: (0 units, 0 conversions) carried through
            g, level, kc = 0, 0, 0
        bids[c], budgets[c], option[c] = grid[g, c], levels[level], g % n_o
        c_spend[c], c_conv[c] = spend[g, c, level], conv_i[g, c, level]
        u, k = u - level, k - kc
    total_spend, total_conv = float(c_spend.sum()), float(c_conv.sum())
    return OracleResult(
        bids=bids,
        budgets=budgets,
        spend=total_spend,
        conversions=total_conv,
        score=day_score(total_conv, total_spend, cm.params.target_cpa),
        campaign_spend=c_spend,
        campaign_conversions=c_conv,
        modifier_option=option,
    )


def informed_oracle(
    cm: CompiledMarket,
    replicates: list[DayDraws],
    state: MarketState,
    budget_step: float = 5.0,
    multipliers=DEFAULT_BID_MULTIPLIERS,
    prices=(0.0, 0.005, 0.01, 0.02, 0.04, 0.08),
    modifier_options: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Budgets [C], bids [C] and the chosen modifier option [C] (0 without options) that maximise the day's
    expected score given the true parameters and state (a greedy, one-day diagnostic; `rl.policies.ceiling` plans
    the horizon and is the yardstick).

    Expected spend and conversions per (bid, campaign, budget level) are means over `replicates` (independent draws
    of the same day). The choice maximises expected conversions − price × expected spend under the daily budget by
    a dynamic programme over budget units, for each shadow price of spend in `prices`, and keeps the choice whose
    score of the expected conversions and spend (with the CPA penalty) is highest. With `modifier_options`
    ([O, C, 24, D]) the modifier pattern is part of each campaign's choice."""
    if not replicates:
        raise ValueError("informed_oracle needs at least one replicate day")
    for d in replicates:
        _single_market(d)
    total = cm.params.daily_budget
    n_units = int(np.floor(total / budget_step + 1e-9))
    levels = np.arange(n_units + 1) * budget_step
    grid, cell_mult, n_o = _with_options(bid_grid(cm, multipliers), modifier_options)
    spend = np.zeros((len(grid), cm.n_campaigns, n_units + 1))
    conv = np.zeros_like(spend)
    for d in replicates:
        s, k = campaign_outcomes(cm, d, state, grid, levels, cell_mult)
        spend += s / len(replicates)
        conv += k / len(replicates)
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
    for price in prices:
        value = conv - price * spend  # [G, C, L]
        g_best = value.argmax(axis=0)  # [C, L] the best bid per campaign and budget level
        v_best = np.take_along_axis(value, g_best[None], axis=0)[0]  # [C, L]
        dp = np.zeros(n_units + 1)  # best value using at most u units, campaigns so far
        picks = np.zeros((cm.n_campaigns, n_units + 1), dtype=np.int64)
        for c in range(cm.n_campaigns):
            # new[u] = max over level l <= u of dp[u - l] + v_best[c, l]
            cand = np.full((n_units + 1, n_units + 1), -np.inf)  # [u, l]
            for level in range(n_units + 1):
                cand[level:, level] = dp[: n_units + 1 - level] + v_best[c, level]
            picks[c] = cand.argmax(axis=1)
            dp = cand.max(axis=1)
        u = n_units
        budgets, bids = np.zeros(cm.n_campaigns), np.zeros(cm.n_campaigns)
        option = np.zeros(cm.n_campaigns, dtype=np.int64)
        e_spend = e_conv = 0.0
        for c in reversed(range(cm.n_campaigns)):
            level = picks[c, u]
            g = g_best[c, level]
            budgets[c], bids[c], option[c] = levels[level], grid[g, c], g % n_o
            e_spend += spend[g, c, level]
            e_conv += conv[g, c, level]
            u -= level
        expected = day_score(e_conv, e_spend, cm.params.target_cpa)
        if best is None or expected > best[0]:
            best = (expected, budgets, bids, option)
    return best[1], best[2], best[3]


def converting_click_costs(cm: CompiledMarket, draws: DayDraws, state: MarketState) -> np.ndarray:
    """For every opportunity that would click and convert at some reachable slot, the cheapest price of such a
    slot (per click for search, per impression for social); opportunities that never convert are left out."""
    out = []
    for b in blocks(cm, draws, state):
        c = b.c
        _, converts_if_clicked = click_outcomes(cm, draws, b)
        rivals = b.rival_scores_sorted()  # [n_rivals, n], high to low
        n_rivals = len(rivals)
        q, reserve = cm.quality[c], cm.reserve[c]
        u_click = draws.u_click[b.lo : b.hi]
        best = np.full(b.n, np.inf)
        for slot in range(1, int(cm.n_slots[c]) + 1):
            if slot > n_rivals + 1:
                break  # with fewer rivals no bid can land this low
            below = rivals[slot - 1] if slot - 1 < n_rivals else np.zeros(b.n)
            above = rivals[slot - 2] if slot >= 2 else np.full(b.n, np.inf)
            # Reachable: exactly slot-1 rivals above us, and the reserve does not push us above the one ahead.
            reachable = (above > below) & (reserve * q < above)
            price = np.maximum(reserve, below / q)
            if not cm.is_search[c]:
                price = price / 1000.0
            ok = reachable & (u_click < cm.slot_ctr[c, slot - 1] * b.click_mult) & converts_if_clicked
            best = np.where(ok, np.minimum(best, price), best)
        out.append(best[np.isfinite(best)])
    return np.concatenate(out) if out else np.zeros(0)


def lp_bound(cm: CompiledMarket, draws: DayDraws, state: MarketState) -> LPBoundResult:
    """Fractional knapsack over converting opportunities, cheapest first, maximising the day score under the
    daily budget. The score is quasi-convex along each linear piece, so the optimum is at a breakpoint, at the
    budget, or where CPA crosses the target."""
    _single_market(draws)
    costs = np.sort(converting_click_costs(cm, draws, state))
    budget, target = cm.params.daily_budget, cm.params.target_cpa
    prefix = np.concatenate([[0.0], np.cumsum(costs)])  # spend after buying the k cheapest
    candidates = [(float(k), float(s)) for k, s in enumerate(prefix) if s <= budget]
    k_full = len(candidates) - 1
    if k_full < len(costs):  # the budget ends inside the next item: buy a fraction of it
        frac = (budget - prefix[k_full]) / costs[k_full]
        candidates.append((k_full + frac, budget))
    for k in range(min(k_full + 1, len(costs))):
        c, s_k = costs[k], prefix[k]
        if c > target:  # on this piece CPA rises through the target at conv = (s_k − k·c)/(target − c)
            conv = (s_k - k * c) / (target - c)
            spend = target * conv
            if k <= conv <= k + 1 and spend <= budget:
                candidates.append((conv, spend))
    best = max(candidates, key=lambda ks: day_score(ks[0], ks[1], target))
    return LPBoundResult(
        spend=best[1], conversions=best[0], score=day_score(best[0], best[1], target), items=len(costs)
    )
