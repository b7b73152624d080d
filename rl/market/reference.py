"""The reference implementation: the market mechanics of `rl.market.engine` as a plain per-opportunity loop.

It is the correctness oracle for the vectorised engine (same `DayDraws` in, same `DayResult` and `MarketState`
out) and the baseline of the speed benchmark (`python -m benchmarks.engine`). It deliberately uses none of the
engine's vectorised helpers: every opportunity is resolved with scalar Python (`math.exp`, floats, lists) in the
order the engine's module docstring describes. Counts agree exactly and money to rounding: the two may compute a
price differently in its last bit (e.g. `math.exp` vs `numpy.exp`, or rival scores in log space), which can only
change an outcome on an exact tie.
"""

from __future__ import annotations

import math

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws
from rl.market.engine import COMP_MEAN_REVERSION, LAG_SKEW, ConversionEvents, DayResult, MarketState
from rl.market.params import DEVICES, HOURS

N_DEVICES = len(DEVICES)


def _first_above(u: float, cdf: list[float]) -> int:
    """Index of the first bucket whose cumulative share exceeds the uniform `u` (inverse-CDF sampling)."""
    for j, edge in enumerate(cdf):
        if u < edge:
            return j
    return len(cdf) - 1


def _as_matrix(values: np.ndarray, n_m: int, n_c: int, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=float).reshape(n_m, n_c)
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise ValueError(f"{what} must be finite and >= 0, got {out}")
    return out


def reference_resolve_day(
    cm: CompiledMarket,
    draws: DayDraws,
    state: MarketState,
    budgets: np.ndarray,
    bids: np.ndarray,
    bid_mult: np.ndarray | None = None,
) -> tuple[DayResult, MarketState]:
    """Resolve one day opportunity by opportunity. budgets, bids: [M, C]; bid_mult: optional [M, C, 24, D], the
    bid multiplier of each (hour, device) cell (device modifier × hour-block modifier).

    Returns the day's result and the next day's state; the input state is not modified.
    """
    n_m, n_c = draws.n_markets, cm.n_campaigns
    budgets = _as_matrix(budgets, n_m, n_c, "budgets")
    bids = _as_matrix(bids, n_m, n_c, "bids")
    budget_l, bid_l = budgets.tolist(), bids.tolist()
    cell_mult = None
    if bid_mult is not None:
        cell_mult = np.broadcast_to(np.asarray(bid_mult, float), (n_m, n_c, HOURS, N_DEVICES)).tolist()

    # Market description as plain Python lists.
    device_cdf, seg_cdf = cm.device_cdf.tolist(), cm.seg_cdf.tolist()
    is_search, n_slots, slot_ctr = cm.is_search.tolist(), cm.n_slots.tolist(), cm.slot_ctr.tolist()
    reserve, quality = cm.reserve.tolist(), cm.quality.tolist()
    ctr_mult, cvr_mult, fatigue = cm.ctr_mult.tolist(), cm.cvr_mult.tolist(), cm.fatigue.tolist()
    session_rate = cm.session_rate.tolist()
    seg_ctr, seg_cvr, seg_comp = cm.seg_ctr.tolist(), cm.seg_cvr.tolist(), cm.seg_comp.tolist()
    lag_min, lag_max = cm.lag_min.tolist(), cm.lag_max.tolist()
    value_median, value_sigma = cm.value_median.tolist(), cm.value_sigma.tolist()
    dev_ctr, dev_cvr = cm.dev_ctr.tolist(), cm.dev_cvr.tolist()
    rivals_of = [[(j, k) for j, k in enumerate(row) if k >= 0] for row in cm.comp_idx.tolist()]
    k_log_median, k_sigma, k_quality = cm.comp_log_median.tolist(), cm.comp_sigma.tolist(), cm.comp_quality.tolist()
    k_log_hour, k_log_device = cm.comp_log_hour.tolist(), cm.comp_log_device.tolist()
    exposure, comp_shift = state.exposure.tolist(), state.comp_shift.tolist()

    # The day's draws as plain Python lists.
    market, campaign, hour = draws.market.tolist(), draws.campaign.tolist(), draws.hour.tolist()
    u_device, u_segment, comp_z = draws.u_device.tolist(), draws.u_segment.tolist(), draws.comp_z.tolist()
    u_throttle, u_click, u_session = draws.u_throttle.tolist(), draws.u_click.tolist(), draws.u_session.tolist()
    u_conv, u_lag, u_conv_hour = draws.u_conv.tolist(), draws.u_lag.tolist(), draws.u_conv_hour.tolist()
    z_value = draws.z_value.tolist()
    n = len(market)

    # Steps 1-4, per opportunity: who the user is, the auction, and what serving the ad would cost.
    device, segment, position = [0] * n, [0] * n, [0] * n
    shown, clicked, cost = [False] * n, [False] * n, [0.0] * n
    for i in range(n):
        m, c, h = market[i], campaign[i], hour[i]
        # 1. The user's device and hidden segment (intent), by inverse-CDF sampling of their uniforms.
        d = _first_above(u_device[i], device_cdf)
        s = _first_above(u_segment[i], seg_cdf[c])
        device[i], segment[i] = d, s
        # 2. Every rival in this campaign's auctions bids lognormally around its median, shifted by hour, device
        #    and its learned adaptation; high-intent segments draw harder bidding. Score = bid × ad quality.
        z = comp_z[i]
        scores = []
        for j, k in rivals_of[c]:
            log_bid = k_log_median[k] + k_sigma[k] * z[j] + k_log_hour[k][h] + k_log_device[k][d] + comp_shift[m][k]
            scores.append(math.exp(log_bid) * seg_comp[s] * k_quality[k])
        scores.sort(reverse=True)
        # 3. The auction. Our score = bid × quality; we rank below every rival with a strictly higher score.
        #    Search (GSP): shown in a slot if the rank is within the slots and the bid clears the reserve; a click
        #    costs just enough to keep our rank: the next lower score / our quality (at least the reserve).
        #    Social (one slot, eCPM): shown only if nobody outscores us; an impression costs the best rival eCPM /
        #    our quality (at least the reserve CPM), per mille.
        #    With bid modifiers, our bid in this auction is the base bid × the device and hour-block modifiers.
        bid = bid_l[m][c] if cell_mult is None else bid_l[m][c] * cell_mult[m][c][h][d]
        ours = bid * quality[c]
        n_above = 0
        while n_above < len(scores) and scores[n_above] > ours:
            n_above += 1
        rank = n_above + 1
        if rank > n_slots[c] or bid < reserve[c] or bid <= 0:
            continue
        next_score = scores[n_above] if n_above < len(scores) else 0.0
        price = max(reserve[c], next_score / quality[c])
        if not is_search[c]:
            price = price / 1000.0
        shown[i], position[i] = True, rank
        # 4. Click iff the uniform falls under the CTR: the slot's base CTR × creative × segment × device, damped by
        #    fatigue from the campaign's recent exposure. Search pays per click, social per impression.
        fatigue_factor = 1.0 / (1.0 + fatigue[c] * exposure[m][c])
        ctr = slot_ctr[c][rank - 1] * (ctr_mult[c] * seg_ctr[s] * dev_ctr[d] * fatigue_factor)
        clicked[i] = u_click[i] < ctr
        cost[i] = (price if clicked[i] else 0.0) if is_search[c] else price

    # 5. Platform pacing, per (market, campaign) in arrival order. Pass 1: the spend if every auction won were
    #    served, and the throttle probability that would spread the budget over the day. Pass 2: each won auction
    #    participates with that probability; the platform keeps a running total of participating costs and serves
    #    while it stays within the budget (an overflowing cost still counts, so nothing is served after it).
    served = [False] * n
    bounds = draws.group_start.tolist()
    for g in range(n_m * n_c):
        lo, hi = bounds[g], bounds[g + 1]
        budget = budget_l[g // n_c][g % n_c]
        potential = 0.0
        for i in range(lo, hi):
            if shown[i]:
                potential += cost[i]
        # A zero budget serves nothing, even impressions that would cost nothing (a paused campaign).
        p = 0.0 if budget <= 0 else (min(1.0, budget / potential) if potential > 0 else 1.0)
        running = 0.0
        for i in range(lo, hi):
            if shown[i] and u_throttle[i] < p:
                running += cost[i]
                served[i] = running <= budget

    # 6. After the click: a GA4 session, an eventual conversion, its lag in days (skewed short) and hour, and the
    #    order value. Everything is accumulated into (market, campaign, hour, device) cells.
    size = n_m * n_c * HOURS * N_DEVICES
    opps, won, impr, clicks, cost_sum, sess, conv, revenue, pos_sum = ([0.0] * size for _ in range(9))
    events: dict[str, list] = {
        k: [] for k in ("market", "campaign", "device", "segment", "click_hour", "lag_days", "conv_hour", "value")
    }
    for i in range(n):
        m, c, h, d, s = market[i], campaign[i], hour[i], device[i], segment[i]
        cell = ((m * n_c + c) * HOURS + h) * N_DEVICES + d
        opps[cell] += 1.0
        if not shown[i]:
            continue
        won[cell] += 1.0
        if not served[i]:
            continue
        impr[cell] += 1.0
        cost_sum[cell] += cost[i]
        pos_sum[cell] += position[i]
        if not clicked[i]:
            continue
        clicks[cell] += 1.0
        if not u_session[i] < session_rate[c]:
            continue
        sess[cell] += 1.0
        if not u_conv[i] < min(seg_cvr[s] * cvr_mult[c] * dev_cvr[d], 1.0):
            continue
        span = lag_max[s] - lag_min[s] + 1
        lag = lag_min[s] + min(int(u_lag[i] ** LAG_SKEW * span), span - 1)
        if lag == 0:  # a same-day conversion happens at or after the click hour
            conv_hour = h + int(u_conv_hour[i] * (HOURS - h))
        else:
            conv_hour = int(u_conv_hour[i] * HOURS)
        value = value_median[s] * math.exp(value_sigma[s] * z_value[i])
        conv[cell] += 1.0
        revenue[cell] += value
        for key, v in zip(events, (m, c, d, s, h, lag, min(conv_hour, HOURS - 1), value), strict=True):
            events[key].append(v)

    shape = (n_m, n_c, HOURS, N_DEVICES)
    result = DayResult(
        date=draws.date,
        opportunities=np.array(opps).reshape(shape),
        auctions_won=np.array(won).reshape(shape),
        impressions=np.array(impr).reshape(shape),
        clicks=np.array(clicks).reshape(shape),
        cost=np.array(cost_sum).reshape(shape),
        sessions=np.array(sess).reshape(shape),
        conversions=np.array(conv).reshape(shape),
        revenue=np.array(revenue).reshape(shape),
        position_sum=np.array(pos_sum).reshape(shape),
        events=ConversionEvents(
            **{k: np.array(v, dtype=float if k == "value" else np.int64) for k, v in events.items()}
        ),
        budgets=budgets,
        bids=bids,
    )
    return result, _next_state(cm, state, result, draws)


def _next_state(cm: CompiledMarket, state: MarketState, result: DayResult, draws: DayDraws) -> MarketState:
    """Tomorrow's state. Each campaign's fatigue stock (thousands of impressions) decays and adds today's
    impressions. Each rival's log-bid shift reverts a little towards 0, random-walks, and adapts to our impression
    share over the auctions it entered today: above 50% it bids up, below it eases off."""
    impressions = result.impressions.sum(axis=(2, 3)).tolist()
    opportunities = result.opportunities.sum(axis=(2, 3)).tolist()
    decay = cm.params.fatigue_decay
    enters = cm.comp_campaigns.tolist()
    adapt, drift, z_drift = cm.comp_adapt.tolist(), cm.comp_drift.tolist(), draws.z_drift.tolist()
    exposure = [
        [decay * e + x / 1000.0 for e, x in zip(row, imp, strict=True)]
        for row, imp in zip(state.exposure.tolist(), impressions, strict=True)
    ]
    shift = []
    for m, row in enumerate(state.comp_shift.tolist()):
        new_row = []
        for k, old in enumerate(row):
            ours = sum(x for x, inside in zip(impressions[m], enters[k], strict=True) if inside)
            total = sum(x for x, inside in zip(opportunities[m], enters[k], strict=True) if inside)
            share = ours / max(total, 1.0)
            new_row.append((1.0 - COMP_MEAN_REVERSION) * old + adapt[k] * (share - 0.5) + drift[k] * z_drift[m][k])
        shift.append(new_row)
    return MarketState(
        exposure=np.array(exposure, dtype=float).reshape(state.exposure.shape),
        comp_shift=np.array(shift, dtype=float).reshape(state.comp_shift.shape),
    )
