"""The informed planning ceiling: the yardstick a learned policy is measured against.

It knows what no deciding policy can: the market's true parameters and its hidden state today (fatigue, rivals'
adaptation), but not the day's random draws. It decides in the same action space as every policy — budget, base
bid, device and hour-block modifiers per campaign — through the same guardrails (the ±`max_step` daily step, the
modifier ranges, the effective max bid), and plans the whole episode (model predictive control over the expected
market, `rl.market.landscape`):

  1. once per episode and market, `rl.policies.planning.bid_shapes`: for a ladder of values λ of a dollar, the best
     base bid and modifiers per campaign (refreshed every `reshape_days`, as fatigue and rivals move);
  2. every day, candidate targets: for each λ the shapes with budgets = the potential spend × a margin, scaled to
     the account budget, and holding the settings in force;
  3. each candidate is rolled out over the days left: each day the guardrails move the settings towards the target
     (exactly as they would move a policy's action), the expected day is resolved, fatigue and rivals' adaptation
     follow in expectation; the candidate's value is the expected *score* of the episode (Poisson conversions,
     `planning.expected_score`) including what has already happened;
  4. today's action targets the best candidate; tomorrow it plans again from what actually happened.

It is an evaluation yardstick, never a policy for the account: it reads the simulator's hidden truth. Where it
scores below a baseline the cause is its model of the day (pacing and the budget stop in expectation, one shift
per campaign for the rivals) or its candidate family, and the evaluation reports it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from rl.env.settings import Settings, apply_action, encode_action
from rl.market.engine import COMP_MEAN_REVERSION
from rl.market.landscape import Landscape, expected_day
from rl.market.modifiers import cell_multipliers
from rl.policies.planning import BidShapes, bid_shapes, expected_score

DEFAULT_LAMS = 1.0 / np.geomspace(8.0, 400.0, 40)  # marginal CPA from $8 to $400
DEFAULT_MARGINS = (0.9, 1.0, 1.1, 1.25)


@dataclass
class _MarketPlan:
    shapes: BidShapes
    made_on_day: int


class InformedCeilingPolicy:
    """The informed planning ceiling as a `Policy` over a `BatchedBiddingVecEnv` (or `BiddingEnv`); see the
    module docstring. `candidates` bounds how many λ values around the budget are rolled out each day."""

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
    ):
        self.env = env
        self.lams = np.asarray(lams, dtype=float)
        self.margins = tuple(float(m) for m in margins)
        self.candidates = candidates
        self.reshape_days = reshape_days
        self.name = name
        self.use_modifiers = use_modifiers  # False: the same planner held to budgets and bids (what modifiers add)
        self._land: tuple[str, Landscape] | None = None
        self._plans: dict[int, _MarketPlan] = {}
        self._cycle = None

    def reset(self, n_envs: int) -> None:
        self._plans = {}

    def landscape(self, sim) -> Landscape:
        key = sim.params.params_hash()
        if self._land is None or self._land[0] != key:
            self._land = (key, Landscape.build(sim.cm))
        return self._land[1]

    def act(self, obs: np.ndarray) -> np.ndarray:
        sim = self.env.sim
        cycle = (id(sim.setup), sim.setup.start_date)
        if cycle != self._cycle:  # a new episode (the env restarted): plan afresh
            self._plans, self._cycle = {}, cycle
        return np.stack([self.act_market(sim, m) for m in range(sim.n_markets)])

    # -- one market ---------------------------------------------------------------------------------------------
    def act_market(self, sim, m: int) -> np.ndarray:
        land = self.landscape(sim)
        limits = sim.limits
        day = sim.day
        volume = None if sim.setup.volume_scale is None else np.asarray(sim.setup.volume_scale)[m : m + 1]
        plan = self._plans.get(m)
        if plan is None or day - plan.made_on_day >= self.reshape_days:
            shapes = bid_shapes(
                land,
                sim.date,
                sim.state.exposure[m],
                sim.state.comp_shift[m],
                self.lams,
                limits.ref_bids,
                limits.max_bids,
                limits.modifier_mask & self.use_modifiers,
                limits.n_blocks,
                limits.bid_range,
                limits.modifier_range,
                volume_scale=volume,
            )
            plan = self._plans[m] = _MarketPlan(shapes, day)
        now = sim.settings.market(m)
        goals = self.goals(plan.shapes, now, limits.daily_budget)
        past_conv = float(sim.true_conversions[m, sim.config.warmup_days : sim.reports.today].sum())
        past_spend = float(sim.reports.spend[m, sim.config.warmup_days : sim.reports.today].sum())
        days_left = sim.config.episode_days - day
        values, first = self.rollout(sim, land, m, plan.shapes, goals, days_left, past_conv, past_spend, volume)
        best = int(np.argmax(values))
        return first[best]

    def goals(self, shapes: BidShapes, now: Settings, daily_budget: float) -> list[tuple[int, float, np.ndarray]]:
        """Candidate goals (λ index, margin, budgets [C]): the λ values whose potential spend brackets the account
        budget, each with every budget margin (budgets = potential spend × margin, scaled to the account budget);
        the last goal holds the budgets in force (λ index −1: the settings in force throughout)."""
        total = shapes.spend.sum(axis=1)
        order = np.argsort(np.abs(np.log(np.maximum(total, 1e-9) / daily_budget)))
        out = []
        for l_ in np.sort(order[: self.candidates]):
            for margin in self.margins:
                b = shapes.spend[l_] * margin
                if b.sum() > daily_budget:
                    b = b * daily_budget / b.sum()
                out.append((int(l_), margin, b))
        out.append((-1, 1.0, now.budgets.copy()))
        return out

    @staticmethod
    def day_targets(shapes: BidShapes, goals, budgets: np.ndarray, now: Settings, self_uncapped=True) -> Settings:
        """Today's target settings [K, ...] per goal: the goal's budgets, and per campaign the bid shape whose
        potential spend (× margin) fits the budget it has today (never a higher λ index, i.e. a lower value of a
        dollar, than the goal's), so that a campaign still ramping its budget up does not bid as if it had it."""
        n_k = len(goals)
        n_c = shapes.spend.shape[1]
        bids = np.empty((n_k, n_c))
        device = np.empty((n_k, n_c, shapes.device.shape[-1]))
        hours = np.empty((n_k, n_c, shapes.hours.shape[-1]))
        target_b = np.empty((n_k, n_c))
        c_ix = np.arange(n_c)
        for k, (l_goal, margin, goal_b) in enumerate(goals):
            target_b[k] = goal_b
            if l_goal < 0:
                bids[k], device[k], hours[k] = now.bids[k], now.device[k], now.hours[k]
                continue
            top = len(shapes.lams) - 1 if self_uncapped else l_goal
            fits = shapes.spend[: top + 1] * margin <= budgets[k][None, :] + 1e-9  # [l, C]
            # the largest λ index that fits (spend grows with the index); 0 if none fits
            idx = np.where(fits.any(axis=0), top - np.argmax(fits[::-1], axis=0), 0)
            bids[k], device[k], hours[k] = shapes.bids[idx, c_ix], shapes.device[idx, c_ix], shapes.hours[idx, c_ix]
        return Settings(target_b, bids, device, hours)

    def rollout(self, sim, land, m, shapes, goals, days_left, past_conv, past_spend, volume):
        """Expected episode score [K] of following each goal over the days left, and today's action [K, A] for
        each (see the module docstring)."""
        n_k = len(goals)
        limits = sim.limits
        now = sim.settings.market(m)
        cur = Settings(
            np.tile(now.budgets, (n_k, 1)),
            np.tile(now.bids, (n_k, 1)),
            np.tile(now.device, (n_k, 1, 1)),
            np.tile(now.hours, (n_k, 1, 1)),
        )
        goal_b = np.array([g[2] for g in goals])
        exposure = np.tile(sim.state.exposure[m], (n_k, 1))
        shift = np.tile(sim.state.comp_shift[m], (n_k, 1))
        vol = None if volume is None else np.repeat(volume, n_k)
        conv = np.zeros(n_k)
        spend = np.zeros(n_k)
        cm = sim.cm
        mask = cm.comp_campaigns.astype(float)  # [K_rivals, C]
        date = sim.date
        first = None
        for day in range(days_left):
            # the budgets the guardrails allow today towards each goal, then the bids that fit them
            hold = encode_action(Settings(goal_b, cur.bids, cur.device, cur.hours), limits)
            budgets = apply_action(hold, cur, limits)
            action = encode_action(self.day_targets(shapes, goals, budgets.budgets, cur), limits)
            if day == 0:
                first = action
            cur = apply_action(action, cur, limits)
            e = expected_day(
                land,
                date,
                exposure,
                shift,
                cur.budgets,
                cur.bids,
                cell_multipliers(cur.device, cur.hours),
                vol,
            )
            conv += e.per_campaign("conversions").sum(axis=1)
            spend += e.per_campaign("cost").sum(axis=1)
            impressions = e.per_campaign("impressions")
            opps = e.per_campaign("opportunities")
            exposure = cm.params.fatigue_decay * exposure + impressions / 1000.0
            with np.errstate(divide="ignore", invalid="ignore"):
                share = (impressions @ mask.T) / np.maximum(opps @ mask.T, 1.0)
            shift = (1.0 - COMP_MEAN_REVERSION) * shift + cm.comp_adapt * (share - 0.5)
            date = date + dt.timedelta(days=1)
        return expected_score(past_conv + conv, past_spend + spend, sim.params.target_cpa), first
