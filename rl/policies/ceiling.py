"""The informed planning ceiling: the yardstick a learned policy is measured against.

It knows what no deciding policy can: the market's true parameters and its hidden state today (fatigue, rivals'
adaptation), but not the day's random draws. It decides in the same action space as every policy — budget, base
bid, device and hour-block modifiers per campaign — through the same guardrails (the ±`max_step` daily step, the
modifier ranges, the effective max bid), and plans the whole episode (model predictive control over the expected
market, `rl.market.landscape`):

  1. per market, `rl.policies.planning.bid_shapes`: for a ladder of values λ of a dollar, the best base bid and
     modifiers per campaign (refreshed every `reshape_days`, as fatigue and rivals move);
  2. every day, candidate goals: for the λ values whose potential spend brackets the account budget, budgets =
     the potential spend × a margin (scaled to the account budget), and a goal that holds the settings in force;
  3. each goal is rolled out over the days left: each day the guardrails move the budgets towards the goal, each
     campaign takes the bid shape whose potential spend fits the budget it has that day (a campaign still ramping
     up does not bid as if it had its goal's budget), the guardrails move the bids and modifiers there, the
     expected day is resolved, and fatigue and rivals' adaptation follow in expectation; a goal's value is the
     expected *score* of the episode (Poisson conversions, `planning.expected_score`) including what has happened;
  4. today's action is the best goal's first day; tomorrow it plans again from what actually happened.

All markets' goals are rolled out together (one expected day for every market × goal). It is an evaluation
yardstick and a teacher, never a policy for the account: it reads the simulator's hidden truth. Where it scores below
a baseline the cause is its model of the day (pacing and the budget stop in expectation, one shift per campaign for
the rivals) or its family of plans, and the evaluation reports it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np

from rl.env.settings import Settings, apply_action, encode_action
from rl.market.engine import COMP_MEAN_REVERSION
from rl.market.landscape import Landscape, expected_day
from rl.market.modifiers import cell_multipliers
from rl.policies.planning import BidShapes, bid_shapes, expected_score

DEFAULT_LAMS = 1.0 / np.geomspace(8.0, 400.0, 40)  # marginal CPA from $8 to $400
DEFAULT_MARGINS = (0.9, 1.0, 1.1, 1.25)


class InformedCeilingPolicy:
    """The informed planning ceiling as a `Policy` over a `BatchedBiddingVecEnv` (or `BiddingEnv`); see the
    module docstring. `candidates`: λ values rolled out per day; `shared_shapes`: one set of bid shapes per reset
    cycle (from the markets' mean state) instead of one per market — cheaper, for teaching."""

    name = "informed_ceiling"

    def __init__(
        self,
        env,
        lams=DEFAULT_LAMS,
        margins=DEFAULT_MARGINS,
        candidates: int = 8,
        reshape_days: int = 7,
        name: str = "informed_ceiling",
        use_modifiers: bool = True,
        shared_shapes: bool = False,
    ):
        self.env = env
        self.lams = np.asarray(lams, dtype=float)
        self.margins = np.asarray(margins, dtype=float)
        self.candidates = candidates
        self.reshape_days = reshape_days
        self.name = name
        self.use_modifiers = use_modifiers  # False: the same planner held to budgets and bids (what modifiers add)
        self.shared_shapes = shared_shapes
        self._land: tuple[str, Landscape] | None = None
        self._shapes: list[BidShapes] = []
        self._shaped_on: int | None = None
        self._cycle = None

    def reset(self, n_envs: int) -> None:
        self._shapes, self._shaped_on = [], None

    def landscape(self, sim) -> Landscape:
        key = sim.params.params_hash()
        if self._land is None or self._land[0] != key:
            self._land = (key, Landscape.build(sim.cm))
        return self._land[1]

    # -- deciding -----------------------------------------------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        sim = self.env.sim
        cycle = (id(sim.setup), sim.setup.start_date)
        if cycle != self._cycle:  # a new episode (the env restarted): plan afresh
            self._shapes, self._shaped_on, self._cycle = [], None, cycle
        land = self.landscape(sim)
        if self._shaped_on is None or sim.day - self._shaped_on >= self.reshape_days:
            self._shapes = self.shapes(sim, land)
            self._shaped_on = sim.day
        values, first = self.rollout(sim, land, self._shapes)
        best = values.argmax(axis=1)
        return first[np.arange(sim.n_markets), best]

    def shapes(self, sim, land: Landscape) -> list[BidShapes]:
        """The bid shapes of every market. Shared: planned once from the markets' mean state at volume 1, then each
        market's spend and conversions scaled by its volume per campaign — a campaign's volume multiplies its value
        and its cost alike, so its best bids do not depend on it and the scaling is exact."""
        limits = sim.limits
        volume = None if sim.setup.volume_scale is None else np.asarray(sim.setup.volume_scale, dtype=float)
        markets = [None] if self.shared_shapes else range(sim.n_markets)
        out = []
        for m in markets:
            ex = sim.state.exposure.mean(axis=0) if m is None else sim.state.exposure[m]
            shift = sim.state.comp_shift.mean(axis=0) if m is None else sim.state.comp_shift[m]
            out.append(
                bid_shapes(
                    land,
                    sim.date,
                    ex,
                    shift,
                    self.lams,
                    limits.ref_bids,
                    limits.max_bids,
                    limits.modifier_mask & self.use_modifiers,
                    limits.n_blocks,
                    limits.bid_range,
                    limits.modifier_range,
                    volume_scale=None if volume is None or m is None else volume[m : m + 1],
                )
            )
        if not self.shared_shapes:
            return out
        if volume is None:
            return out * sim.n_markets
        per_campaign = np.broadcast_to(volume.reshape(sim.n_markets, -1), (sim.n_markets, sim.cm.n_campaigns))
        return [
            replace(out[0], spend=out[0].spend * v[None], conversions=out[0].conversions * v[None])
            for v in per_campaign
        ]

    def goals(self, shapes: BidShapes, daily_budget: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One market's candidate goals: λ index [K] (−1: hold the settings in force), margin [K], budgets [K, C]
        (the last goal's budgets are filled with those in force by the caller)."""
        total = shapes.spend.sum(axis=1)
        order = np.argsort(np.abs(np.log(np.maximum(total, 1e-9) / daily_budget)))
        chosen = np.sort(order[: self.candidates])
        lam_ix = np.repeat(chosen, len(self.margins))
        margin = np.tile(self.margins, len(chosen))
        budgets = shapes.spend[lam_ix] * margin[:, None]
        over = budgets.sum(axis=1, keepdims=True) / daily_budget
        budgets = np.where(over > 1.0, budgets / over, budgets)
        return (
            np.append(lam_ix, -1),
            np.append(margin, 1.0),
            np.vstack([budgets, np.zeros(budgets.shape[1])]),
        )

    @staticmethod
    def day_targets(table: dict[str, np.ndarray], lam_ix, margin, budgets, now: Settings) -> Settings:
        """Today's target settings [R, ...] for R rolled-out goals: the goal's budgets, and per campaign the bid
        shape (of the goal's market: `table` rows) whose potential spend × margin fits the budget it has today;
        a holding goal (λ index −1) keeps the settings in force."""
        fits = table["spend"] * margin[:, None, None] <= budgets[:, None, :] + 1e-9  # [R, L, C]
        n_l = fits.shape[1]
        last = n_l - 1 - np.argmax(fits[:, ::-1, :], axis=1)  # the largest λ index that fits
        idx = np.where(fits.any(axis=1), last, 0)  # [R, C]
        pick = lambda a: np.take_along_axis(a, idx[:, None, :, *([None] * (a.ndim - 3))], axis=1)[:, 0]  # noqa: E731
        hold = (lam_ix < 0)[:, None]
        return Settings(
            budgets,
            np.where(hold, now.bids, pick(table["bids"])),
            np.where(hold[..., None], now.device, pick(table["device"])),
            np.where(hold[..., None], now.hours, pick(table["hours"])),
        )

    def rollout(self, sim, land: Landscape, shapes: list[BidShapes]) -> tuple[np.ndarray, np.ndarray]:
        """Expected episode score [M, K] of every market's goals over the days left, and today's action
        [M, K, A] for each (see the module docstring)."""
        limits = sim.limits
        n_m = sim.n_markets
        goals = [self.goals(s, limits.daily_budget) for s in shapes]
        n_k = len(goals[0][0])
        lam_ix = np.concatenate([g[0] for g in goals])
        margin = np.concatenate([g[1] for g in goals])
        goal_b = np.concatenate([g[2] for g in goals])
        goal_b[lam_ix < 0] = sim.settings.budgets  # the holding goals keep the budgets in force
        row_market = np.repeat(np.arange(n_m), n_k)
        table = {
            name: np.stack([getattr(shapes[m], name) for m in row_market])
            for name in ("spend", "bids", "device", "hours")
        }
        cur = Settings(
            sim.settings.budgets[row_market],
            sim.settings.bids[row_market],
            sim.settings.device[row_market],
            sim.settings.hours[row_market],
        )
        exposure = sim.state.exposure[row_market]
        shift = sim.state.comp_shift[row_market]
        volume = None if sim.setup.volume_scale is None else np.asarray(sim.setup.volume_scale)[row_market]
        warm, today = sim.config.warmup_days, sim.reports.today
        past_conv = sim.true_conversions[:, warm:today].sum(axis=(1, 2))[row_market]
        past_spend = sim.reports.spend[:, warm:today].sum(axis=(1, 2))[row_market]
        conv = np.zeros(len(row_market))
        spend = np.zeros(len(row_market))
        cm = sim.cm
        mask = cm.comp_campaigns.astype(float)  # [K_rivals, C]
        date = sim.date
        first = None
        for day in range(sim.config.episode_days - sim.day):
            # the budgets the guardrails allow today towards each goal, then the bids that fit them
            towards = encode_action(Settings(goal_b, cur.bids, cur.device, cur.hours), limits)
            budgets = apply_action(towards, cur, limits).budgets
            action = encode_action(self.day_targets(table, lam_ix, margin, budgets, cur), limits)
            if day == 0:
                first = action
            cur = apply_action(action, cur, limits)
            mult = cell_multipliers(cur.device, cur.hours)
            e = expected_day(land, date, exposure, shift, cur.budgets, cur.bids, mult, volume)
            conv += e.per_campaign("conversions").sum(axis=1)
            spend += e.per_campaign("cost").sum(axis=1)
            impressions = e.per_campaign("impressions")
            opps = e.per_campaign("opportunities")
            exposure = cm.params.fatigue_decay * exposure + impressions / 1000.0
            with np.errstate(divide="ignore", invalid="ignore"):
                share = (impressions @ mask.T) / np.maximum(opps @ mask.T, 1.0)
            shift = (1.0 - COMP_MEAN_REVERSION) * shift + cm.comp_adapt * (share - 0.5)
            date = date + dt.timedelta(days=1)
        values = expected_score(past_conv + conv, past_spend + spend, sim.params.target_cpa)
        return values.reshape(n_m, n_k), first.reshape(n_m, n_k, -1)
