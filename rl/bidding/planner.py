"""The daily bid planner: yesterday's marts (`rl.bidding.history`) → the policy's observation → its action →
guardrails → a plan.

Pure Python (no Dagster, no DuckDB): the asset reads the marts and hands them over as a polars frame.

Observation. The policy reads the same features it was trained on (`rl.env.observation`), built from
`fct_campaign_daily` over the last `history_days` days ending on the data day D (the partition):
  * spend, impressions, clicks as the platforms report them;
  * opportunities = impressions / impression_share on the search platforms; the social platforms report no
    eligible impressions, so theirs are 0 (their impression-share features are 0);
  * conversions by CLICK date, as reported so far (recent days still maturing) — put in the report history at lag
    0, so every trailing window reads exactly the reported count;
  * the budgets in force each day, and as "now" the latest day's daily_budget / bid (what is in force on D);
  * reference bids (the action's bid multiplier 1.0) and the reference budgets: the settings in force when GAELP
    took over (see `Reference`), the static, safe settings.
  * per device and per hour block: spend, clicks and conversions by click date (`fct_campaign_device_daily`,
    `fct_campaign_hourly`) and the modifiers in force (`fct_campaign_modifiers_daily`), as `MartHistory.breakdowns`
    / `.modifiers` hold them — the same figures the simulator's `Reports` carry.
Episode features: the policy was trained on episodes of `episode_days`; in production the days are cut into
consecutive cycles of that length (by date ordinal), so the episode features run over the range seen in training.
A promoted model brings its own length (`PolicyChoice.episode_days`, the episodes it was evaluated and gated on);
`PlanSettings.episode_days` is the length for the baselines and for a plan that sets it explicitly.
Stateful baselines (PI pacer, response-curve history) are replayed over the cycle's days so far, as in training.

Decoding. The action goes through `rl.env.settings.apply_action` (total ≤ account budget, ±step per day
from the settings in force, bids ≤ max bid = the account's `max_bid_multiple` × reference bid), then is rounded to
cents so that the rounded plan still satisfies every bound: budgets down, bids to the nearest cent inside the band;
a budget below its platform's minimum (`rl.bidding.platform_rules`: TikTok 20.00, Meta 1.00...) is raised to it,
paid for by the budgets with room. Search campaigns' device and hour-block modifiers go through
`rl.env.settings.apply_action` (the platform's range, ±step per day from the modifiers in force), are rounded to
whole percentage points inside those bounds, and then cap the base bid: no (device, hour block) cell bids above the
max bid. The safe plan (the kill switch, the static fallback) moves the modifiers back towards the reference ones,
those in force when GAELP took over, as it does budgets and bids.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rl.account import AccountSettings
from rl.bidding.checks import PlanLimits
from rl.bidding.history import CampaignInfo, MartHistory
from rl.bidding.kill_switch import KillSwitchDecision, evaluate
from rl.bidding.modifiers import (
    back_to_reference,
    modifier_fields,
    modifier_limits,
    round_modifiers,
    settings_in_force,
)
from rl.bidding.plan import SEARCH_PLATFORMS, PlanError, PlanRow, Reference, demo_targets
from rl.bidding.platform_rules import raise_to_minimums
from rl.bidding.policy_choice import SAFE_BASELINE, PolicyChoice, make_baseline
from rl.env.guardrails import BUDGET_FLOOR_SHARE, ActionCodec, GuardrailLimits
from rl.env.observation import Reports, build_observation
from rl.env.schema import ObservationSchema
from rl.env.settings import apply_action
from rl.market.modifiers import ModifierLimits


@dataclass(frozen=True)
class PlanSettings:
    """How the planner works for this account: the account's own settings (`rl.account.AccountSettings`: budget,
    target CPA, daily step) and the planning knobs (not fitted)."""

    account: AccountSettings
    bid_range: float = 4.0
    history_days: int = 56
    episode_days: int = 28
    hour_blocks: int = 6
    kill_switch: bool = True
    kill_switch_factor: float = 1.5
    kill_switch_days: int = 3

    def __post_init__(self) -> None:
        if self.history_days < self.episode_days + 28:
            raise ValueError(
                f"history_days ({self.history_days}) must cover an episode cycle ({self.episode_days}) plus the "
                "28-day trailing windows"
            )
        if not self.bid_range > 0:
            raise ValueError(f"PlanSettings.bid_range must be > 0, got {self.bid_range!r}")

    @property
    def daily_budget(self) -> float:
        return self.account.daily_budget

    @property
    def target_cpa(self) -> float:
        return self.account.target_cpa

    @property
    def max_step(self) -> float:
        return self.account.max_step


# -- the plan -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntry:
    """One campaign's line of the plan, as stored in `bid_plan` (one row per campaign and data partition)."""

    data_partition: str
    plan_date: str
    platform: str
    campaign_id: int
    campaign_name: str
    bid_kind: str | None
    daily_budget: float
    bid: float
    current_budget: float
    current_bid: float
    reference_budget: float
    reference_bid: float
    max_bid: float
    policy_version: str
    policy_source: str
    fallback_reason: str | None
    budget_target: str | None = None
    bid_targets: tuple[str, ...] = field(default_factory=tuple)
    device_modifiers: tuple[float, ...] | None = None
    hour_modifiers: tuple[float, ...] | None = None
    current_device_modifiers: tuple[float, ...] | None = None
    current_hour_modifiers: tuple[float, ...] | None = None

    def to_plan_row(self) -> PlanRow:
        return PlanRow(
            platform=self.platform,
            campaign_id=self.campaign_id,
            daily_budget=self.daily_budget,
            bid=self.bid,
            current_budget=self.current_budget,
            current_bid=self.current_bid,
            policy_version=self.policy_version,
            data_partition=self.data_partition,
            budget_target=self.budget_target,
            bid_targets=self.bid_targets,
            device_modifiers=self.device_modifiers,
            hour_modifiers=self.hour_modifiers,
            current_device_modifiers=self.current_device_modifiers,
            current_hour_modifiers=self.current_hour_modifiers,
        )


@dataclass(frozen=True)
class Plan:
    entries: tuple[PlanEntry, ...]
    choice_version: str
    choice_source: str
    fallback_reason: str | None
    kill_switch: KillSwitchDecision | None
    limits: PlanLimits

    @property
    def total_budget(self) -> float:
        return sum(e.daily_budget for e in self.entries)


def guardrail_limits(
    reference: Reference, settings: PlanSettings, modifiers: ModifierLimits | None = None
) -> GuardrailLimits:
    return GuardrailLimits(
        daily_budget=settings.daily_budget,
        ref_bids=reference.bids.astype(float),
        max_bids=settings.account.max_bid(reference.bids.astype(float)),
        max_step=settings.max_step,
        bid_range=settings.bid_range,
        modifiers=modifiers,
    )


def plan_limits(campaigns: Sequence[CampaignInfo], reference: Reference, settings: PlanSettings) -> PlanLimits:
    g = guardrail_limits(reference, settings)
    return PlanLimits(
        daily_budget=settings.daily_budget,
        max_bids={(c.platform, c.campaign_id): float(m) for c, m in zip(campaigns, g.max_bids, strict=True)},
        max_step=settings.max_step,
        budget_floor=BUDGET_FLOOR_SHARE * settings.daily_budget / len(campaigns),
    )


def reports_for(
    history: MartHistory, reference: Reference, settings: PlanSettings, today: int | None = None
) -> Reports:
    """The `Reports` of the morning after history index `today - 1` (default: after the last day)."""
    h, c = history.spend.shape
    today = h if today is None else today
    plan_date = history.first_date + dt.timedelta(days=h)
    cycle_day = plan_date.toordinal() % settings.episode_days  # days of the current cycle already decided
    extra = {}
    if "share_reported" in Reports.__dataclass_fields__:  # search platforms report impression share, social do not
        extra["share_reported"] = np.array([c.platform in SEARCH_PLATFORMS for c in history.campaigns], dtype=bool)
    n_k = 3 + settings.hour_blocks
    breakdown = history.breakdowns if history.breakdowns is not None else np.zeros((3, h, c, n_k))
    return Reports(
        spend=history.spend[None].copy(),
        impressions=history.impressions[None].copy(),
        clicks=history.clicks[None].copy(),
        opportunities=history.opportunities[None].copy(),
        budgets=history.budgets[None].copy(),
        conv_by_lag=history.conversions[None, :, :, None].copy(),
        today=today,
        warmup_days=h - cycle_day,
        episode_days=settings.episode_days,
        first_date=history.first_date,
        budgets_now=history.budgets[today - 1][None].copy(),
        bids_now=history.bids[today - 1][None].copy(),
        ref_bids=reference.bids.astype(float),
        bid_range=settings.bid_range,
        daily_budget=settings.daily_budget,
        target_cpa=settings.target_cpa,
        spend_by=breakdown[0][None].copy(),
        clicks_by=breakdown[1][None].copy(),
        conv_by_lag_by=breakdown[2][None, ..., None].copy(),
        modifiers_now=history.modifiers[today - 1][None].copy()
        if history.modifiers is not None
        else np.ones((1, c, n_k)),
        **extra,
    )


def policy_action(
    policy: Any, schema: ObservationSchema, history: MartHistory, reference: Reference, settings: PlanSettings
) -> np.ndarray:
    """[2C] action for the plan day; the policy is reset at the start of the current cycle and replayed over the
    cycle's days so far (stateful baselines then hold the state they would have in training)."""
    rep = reports_for(history, reference, settings)
    policy.reset(1)
    action = None
    for t in range(rep.warmup_days, history.n_days + 1):
        action = np.asarray(policy.act(build_observation(schema, reports_for(history, reference, settings, t))))
    action = np.asarray(action, dtype=float).reshape(-1)
    if action.shape != (schema.action_size,):
        raise PlanError(f"policy returned an action of shape {action.shape}, the schema expects {schema.action_size}")
    return action


def _cents_down(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x) * 100 + 1e-6) / 100


def _cents_up(x: np.ndarray) -> np.ndarray:
    return np.ceil(np.asarray(x) * 100 - 1e-6) / 100


def round_settings(
    budgets: np.ndarray, bids: np.ndarray, current_bids: np.ndarray, limits: GuardrailLimits
) -> tuple[np.ndarray, np.ndarray]:
    """Round guard-railed settings to cents without leaving the bounds: budgets down; bids to the nearest cent,
    then into [ceil(lower band edge), floor(min(upper band edge, max bid))] (the max bid wins), never below 0.01."""
    new_b = _cents_down(np.maximum(budgets, 0.0))
    step = limits.max_step if limits.max_step is not None else math.inf
    lo = _cents_up(current_bids * (1 - step)) if math.isfinite(step) else np.zeros_like(bids)
    hi = _cents_down(np.minimum(current_bids * (1 + step) if math.isfinite(step) else bids, limits.max_bids))
    new_p = np.round(np.asarray(bids, dtype=float), 2)
    new_p = np.minimum(np.maximum(new_p, lo), hi)
    new_p = np.minimum(new_p, _cents_down(limits.max_bids))
    return new_b, np.maximum(new_p, 0.01)


def keep_platform_minimums(budgets: np.ndarray, history: MartHistory, settings: PlanSettings) -> np.ndarray:
    """Budgets below their platform's minimum raised to it (`rl.bidding.platform_rules`), the difference taken from
    budgets with room above their daily-step band, so the plan stays within the account budget and the band."""
    floor = BUDGET_FLOOR_SHARE * settings.daily_budget / len(history.campaigns)
    current = np.asarray(history.current_budgets, dtype=float)
    width = settings.max_step * np.maximum(current, floor)
    bands = (np.maximum(current - width, 0.0), current + width)
    platforms = [c.platform for c in history.campaigns]
    return raise_to_minimums(budgets, platforms, current, bands, settings.daily_budget)


def make_plan(
    history: MartHistory,
    reference: Reference,
    settings: PlanSettings,
    schema: ObservationSchema,
    choice: PolicyChoice,
    data_partition: str,
    targets: Callable[[str, int], tuple[str, tuple[str, ...]]] | None = None,
) -> Plan:
    """The plan for the day after `history.last_date` (= `data_partition`). `targets(platform, campaign_id)` gives
    the platform objects holding each campaign's budget and bid (default: the demo market's ids)."""
    targets = targets or demo_targets_for
    if history.last_date.isoformat() != data_partition:
        raise PlanError(f"history ends on {history.last_date}, not on the data partition {data_partition}")
    if [c.campaign_id for c in history.campaigns] != list(schema.campaign_ids):
        raise PlanError("history campaigns are not in the schema's order")
    codec = ActionCodec.for_schema(schema, settings.bid_range)
    decision = None
    if settings.kill_switch:
        decision = evaluate(
            history.account_days(), settings.target_cpa, settings.kill_switch_factor, settings.kill_switch_days
        )
        if decision.fire and choice.baseline != SAFE_BASELINE:
            choice = PolicyChoice(
                make_baseline(SAFE_BASELINE, schema, codec, reference.budgets / settings.daily_budget),
                f"baseline:{SAFE_BASELINE}",
                "kill_switch",
                f"kill switch: {decision.reason}",
                SAFE_BASELINE,
            )
    if choice.episode_days is not None and choice.episode_days != settings.episode_days:
        try:  # the model's episode features run over the cycle it was trained and gated on
            settings = replace(settings, episode_days=choice.episode_days)
        except ValueError as err:
            raise PlanError(f"policy {choice.version}: {err}") from None
    limits = guardrail_limits(reference, settings, modifier_limits(history.campaigns, schema, settings.hour_blocks))
    action = policy_action(choice.policy, schema, history, reference, settings)
    now = settings_in_force(history, settings.hour_blocks)
    applied = apply_action(action, now, limits)
    if choice.baseline == SAFE_BASELINE:
        applied = back_to_reference(applied, now, reference, limits)
    device, hours = round_modifiers(applied, now, limits)
    top = device.max(axis=-1) * hours.max(axis=-1)
    capped = replace(limits, max_bids=limits.max_bids / np.maximum(top, 1.0))
    budgets, bids = round_settings(applied.budgets, applied.bids, history.current_bids, capped)
    budgets = keep_platform_minimums(budgets, history, settings)
    plan_date = (history.last_date + dt.timedelta(days=1)).isoformat()
    entries = []
    for j, c in enumerate(history.campaigns):
        if c.status != "enabled":
            continue  # paused campaigns are not planned (their budget is not pushed)
        budget_target, bid_targets = targets(c.platform, c.campaign_id)
        entries.append(
            PlanEntry(
                data_partition=data_partition,
                plan_date=plan_date,
                platform=c.platform,
                campaign_id=c.campaign_id,
                campaign_name=c.campaign_name,
                bid_kind=history.bid_kinds[j],
                daily_budget=float(budgets[j]),
                bid=float(bids[j]),
                current_budget=float(history.current_budgets[j]),
                current_bid=float(history.current_bids[j]),
                reference_budget=float(reference.budgets[j]),
                reference_bid=float(reference.bids[j]),
                max_bid=float(limits.max_bids[j]),
                policy_version=choice.version,
                policy_source=choice.source,
                fallback_reason=choice.reason,
                budget_target=budget_target,
                bid_targets=tuple(bid_targets),
                **modifier_fields(limits.modifier_mask[j], device[j], hours[j], now.device[j], now.hours[j]),
            )
        )
    return Plan(
        tuple(entries),
        choice.version,
        choice.source,
        choice.reason,
        decision,
        plan_limits(history.campaigns, reference, settings),
    )


def demo_targets_for(platform: str, campaign_id: int) -> tuple[str, tuple[str, ...]]:
    """The demo market's platform object ids (`rl.bidding.plan.demo_targets`)."""
    return demo_targets(campaign_id, platform)


def targets_from_rows(rows: Sequence[dict]) -> Callable[[str, int], tuple[str, tuple[str, ...]]]:
    """A target lookup from rows with platform, campaign_id, budget_target and bid_targets ("id1;id2")."""
    table = {
        (str(r["platform"]), int(r["campaign_id"])): (
            str(r["budget_target"]),
            tuple(t.strip() for t in str(r["bid_targets"]).split(";") if t.strip()),
        )
        for r in rows
    }

    def lookup(platform: str, campaign_id: int) -> tuple[str, tuple[str, ...]]:
        if (platform, campaign_id) not in table:
            raise PlanError(f"no platform object ids (budget/bid targets) are configured for {platform}/{campaign_id}")
        return table[(platform, campaign_id)]

    return lookup
