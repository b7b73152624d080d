"""What a calibration's errors cost a planner: one steady day planned on the calibrated market, resolved in the truth.

A policy that learns in the calibrated market can at best do what that market says is best, so the value of its
best day *in the true market* bounds what any learner on the calibration can reach. `calibration_regret` plans with
the informed ceiling's planner (`rl.policies.planning.bid_shapes`: base bid, device and hour-block modifiers per
campaign for a value λ of a dollar, under the plan's max bids and the platforms' modifier ranges) one steady day —
the λ whose potential spend fills the account budget, budgets = what each campaign spends at it, at the fatigue
stock those settings keep up — on the true and on the calibrated parameters, and resolves both plans and the
settings in force in the true market in expectation (`rl.market.landscape.expected_day`, no noise). One steady day,
not an episode: no ramp-up under the daily step and no rivals' adaptation, so the ratios to the settings in force
are those of a settled account. Shapes: C campaigns, D devices, B hour blocks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from rl.env.guardrails import GuardrailLimits
from rl.market.compiled import CompiledMarket
from rl.market.landscape import ExpectedDay, Landscape, expected_day
from rl.market.modifiers import cell_multipliers, modifiers_in_force
from rl.market.params import MarketParams
from rl.policies.ceiling import DEFAULT_LAMS
from rl.policies.planning import bid_shapes

STEADY_ROUNDS = 12  # at most this many fixed-point rounds of (settings → the fatigue stock they keep up)
STEADY_TOL = 1e-6  # the stock has settled when no campaign's moves by more than this (relative)

__all__ = ["DayPlan", "PlanningMarket", "Regret", "calibration_regret", "reorder"]


@dataclass(frozen=True)
class DayPlan:
    """One day's settings in a market's campaign order: budgets [C], base bids [C], device [C, D] and hour-block
    modifiers [C, B]."""

    budgets: np.ndarray
    bids: np.ndarray
    device: np.ndarray
    hours: np.ndarray


class PlanningMarket:
    """A market's parameters and tabulated auctions: its best steady day, and any day's steady outcome."""

    def __init__(self, params: MarketParams, rounds: int = STEADY_ROUNDS):
        self.params = params
        self.land = Landscape.build(CompiledMarket.from_params(params))
        self.limits = GuardrailLimits.from_params(params)
        self.rounds = rounds
        self._no_shift = np.zeros(len(params.competitors))

    def day(self, date: dt.date, plan: DayPlan, exposure: np.ndarray) -> ExpectedDay:
        mult = cell_multipliers(plan.device, plan.hours)[None]
        return expected_day(
            self.land, date, exposure[None], self._no_shift[None], plan.budgets[None], plan.bids[None], mult
        )

    def stock(self, day: ExpectedDay) -> np.ndarray:
        """[C] the fatigue stock a day repeated for ever keeps up (the engine's stock is decay × yesterday's +
        today's impressions / 1000, so at a steady state it is impressions / 1000 / (1 − decay))."""
        return day.per_campaign("impressions")[0] / 1000.0 / (1.0 - self.params.fatigue_decay)

    def steady(self, date: dt.date, plan: DayPlan) -> tuple[np.ndarray, np.ndarray]:
        """(spend, conversions) [C] of `plan` repeated until its fatigue stock settles."""
        exposure = np.zeros(len(plan.bids))
        for _ in range(self.rounds):
            exposure, before = self.stock(self.day(date, plan, exposure)), exposure
            if settled(exposure, before):
                break
        day = self.day(date, plan, exposure)
        return day.per_campaign("cost")[0], day.per_campaign("conversions")[0]

    def plan(self, date: dt.date) -> DayPlan:
        """The best steady day: the λ whose potential spend fits the account budget (or the next λ's shapes
        throttled to the budget, where that converts more), at the fatigue stock its own settings keep up."""
        lim, budget = self.limits, float(self.params.daily_budget)
        exposure = np.zeros(lim.n_campaigns)
        best = None
        for _ in range(self.rounds):
            s = bid_shapes(
                self.land, date, exposure, self._no_shift, DEFAULT_LAMS, lim.ref_bids, lim.max_bids,
                lim.modifier_mask, lim.n_blocks, lim.bid_range, lim.modifier_range,
            )  # fmt: skip
            total = s.spend.sum(axis=1)  # [L], rising as λ falls (a higher marginal CPA buys more)
            fits = np.flatnonzero(total <= budget)
            first = int(fits[-1]) if fits.size else 0
            options = []
            for i in sorted({first, min(first + 1, len(total) - 1)}):
                scale = min(1.0, budget / max(float(total[i]), 1e-9))
                plan = DayPlan(s.spend[i] * scale, s.bids[i], s.device[i], s.hours[i])
                day = self.day(date, plan, exposure)
                options.append((float(day.per_campaign("conversions")[0].sum()), plan, day))
            _, best, day = max(options, key=lambda o: o[0])
            exposure, before = self.stock(day), exposure
            if settled(exposure, before):
                break
        return best

    def in_force(self) -> DayPlan:
        """The settings in force: the static operator's day."""
        device, hours = modifiers_in_force(self.params)
        return DayPlan(
            np.array([c.current_daily_budget for c in self.params.campaigns], dtype=float),
            np.array([c.current_bid for c in self.params.campaigns], dtype=float),
            device,
            hours,
        )


def settled(stock: np.ndarray, before: np.ndarray) -> bool:
    return bool(np.all(np.abs(stock - before) <= STEADY_TOL * (1.0 + np.abs(stock))))


def reorder(plan: DayPlan, source: MarketParams, target: MarketParams) -> DayPlan:
    """`plan`, made in `source`'s campaign order, in `target`'s; a campaign of `target` that `source` lacks is an
    error (the two must describe the same account)."""
    where = {cid: i for i, cid in enumerate(source.campaign_ids)}
    missing = sorted(set(target.campaign_ids) - set(where))
    if missing:
        raise ValueError(f"campaigns {missing} of {target.name!r} are not in {source.name!r}: not the same account")
    if source.hour_blocks != target.hour_blocks:
        raise ValueError(f"{source.name!r} has {source.hour_blocks} hour blocks, {target.name!r} {target.hour_blocks}")
    ix = np.array([where[cid] for cid in target.campaign_ids])
    return DayPlan(plan.budgets[ix], plan.bids[ix], plan.device[ix], plan.hours[ix])


@dataclass(frozen=True)
class Regret:
    """Per plan (ceiling, calibrated, static) the true steady day's spend and conversions [C] in the truth's campaign
    order, and the conversions the calibration expects from its own plan."""

    campaign_ids: tuple[int, ...]
    spend: dict[str, np.ndarray]
    conversions: dict[str, np.ndarray]
    believed: float

    def total(self, name: str) -> float:
        return float(self.conversions[name].sum())

    @property
    def share_of_ceiling(self) -> float:
        return self.total("calibrated") / max(self.total("ceiling"), 1e-12)


def calibration_regret(truth: MarketParams, calibrated: MarketParams, date: dt.date) -> Regret:
    """Plan `date` on the true and on the calibrated market and resolve both plans and the settings in force in the
    truth. The truth is held to the calibration's reference and max bids (the plan's guardrails), not its own."""
    guard = {c.id: c for c in calibrated.campaigns}
    truth = truth.model_copy(
        update={
            "campaigns": [
                c.model_copy(update={"max_bid": guard[c.id].max_bid, "reference_bid": guard[c.id].reference_bid})
                if c.id in guard
                else c
                for c in truth.campaigns
            ]
        }
    )
    world, model = PlanningMarket(truth), PlanningMarket(calibrated)
    own = model.plan(date)
    plans = {"ceiling": world.plan(date), "calibrated": reorder(own, calibrated, truth), "static": world.in_force()}
    days = {name: world.steady(date, plan) for name, plan in plans.items()}
    return Regret(
        campaign_ids=tuple(truth.campaign_ids),
        spend={n: d[0] for n, d in days.items()},
        conversions={n: d[1] for n, d in days.items()},
        believed=float(model.steady(date, own)[1].sum()),
    )
