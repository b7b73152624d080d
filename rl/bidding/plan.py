"""A day's bid plan as the push adapters take it: one `PlanRow` per campaign.

Units. Money is in the account currency (not micros, not cents); each adapter converts to what its API wants and
rounds to the cent first. `bid` means what the platform's auction means by it: a max CPC on the search platforms
(Google Ads, Microsoft Advertising), a CPM bid cap (currency per 1000 impressions) on the social ones (Meta,
TikTok).

Targets. A budget or a bid is not set on "the campaign" everywhere, so each row names the platform objects it is
applied to:

| platform      | `budget_target` (holds the daily budget)  | `bid_targets` (hold the bid)          |
| ------------- | ----------------------------------------- | ------------------------------------- |
| google_ads    | campaign budget id (CampaignBudget)       | ad group ids (AdGroup.cpc_bid_micros) |
| microsoft_ads | campaign id (Campaign.DailyBudget)        | ad group ids (AdGroup.CpcBid)         |
| meta          | ad set id (AdSet.daily_budget)            | ad set id (AdSet.bid_amount)          |
| tiktok        | ad group id (budget)                      | ad group id (bid_price)               |

In the demo market every campaign has exactly one budget object and one bid object, and their ids are derived
from the campaign id by `demo_targets`: budget `<campaign_id>00`, ad group `<campaign_id>01` (campaign 101 ->
budget "10100", ad group "10101"), except on Microsoft Advertising, where the daily budget is the campaign's own
(campaign 401 -> budget "401", ad group "40101"), as in a real Microsoft account (`rl.world.structure` shows the
demo's objects as each platform lists them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PLATFORMS = ("google_ads", "microsoft_ads", "meta", "tiktok")
SEARCH_PLATFORMS = ("google_ads", "microsoft_ads")
FIELDS = ("budget", "bid")
HOURS = 24


class PlanError(ValueError):
    """A plan row is malformed or cannot be pushed as it is; the message names the row and the field."""


def to_cents(value: float) -> int:
    """Currency -> whole cents (half away from zero, as an accountant would), the unit every push is rounded to."""
    return int(math.floor(abs(value) * 100 + 0.5)) * (1 if value >= 0 else -1)


def demo_targets(campaign_id: int, platform: str = "google_ads") -> tuple[str, tuple[str, ...]]:
    """(budget_target, bid_targets) of a demo-market campaign (see the module docstring)."""
    budget = str(int(campaign_id)) if platform == "microsoft_ads" else f"{int(campaign_id)}00"
    return budget, (f"{int(campaign_id)}01",)


@dataclass(frozen=True)
class Change:
    """One intended change: one field of one platform object. `old_value` is what the plan says is in force."""

    row: PlanRow
    field: str
    target: str
    old_value: float | None
    new_value: float

    @property
    def unchanged(self) -> bool:
        return self.old_value is not None and to_cents(self.old_value) == to_cents(self.new_value)

    def describe(self) -> str:
        return f"{self.row.platform} campaign {self.row.campaign_id} {self.field} of {self.target}"


@dataclass(frozen=True)
class PlanRow:
    """Tomorrow's budget and bid for one campaign, as computed by the bidding policy (None: leave as it is).

    `current_budget` / `current_bid` are what the planner believes is in force (the audit's old values, and the
    reference for "unchanged"); `hour_modifiers` are 24 bid multipliers, hour 0 first, or None. `policy_version`
    and `data_partition` (the plan's Dagster partition, e.g. "2025-03-02") identify the plan in the audit table."""

    platform: str
    campaign_id: int
    daily_budget: float | None
    bid: float | None
    current_budget: float | None
    current_bid: float | None
    policy_version: str
    data_partition: str
    budget_target: str | None = None
    bid_targets: tuple[str, ...] = field(default_factory=tuple)
    hour_modifiers: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        where = f"plan row {self.platform}/{self.campaign_id}"
        if self.platform not in PLATFORMS:
            raise PlanError(f"{where}: platform {self.platform!r} is not one of {PLATFORMS}")
        if isinstance(self.campaign_id, bool) or not isinstance(self.campaign_id, int) or self.campaign_id <= 0:
            raise PlanError(f"{where}: campaign_id must be a positive integer, got {self.campaign_id!r}")
        for name in ("daily_budget", "bid", "current_budget", "current_bid"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not math.isfinite(value) or value < 0):
                raise PlanError(f"{where}: {name} must be a finite number >= 0 or None, got {value!r}")
        if self.bid is not None and to_cents(self.bid) == 0:
            raise PlanError(f"{where}: bid {self.bid} rounds to 0.00 (to stop a campaign, pause it instead)")
        if not self.data_partition or not self.policy_version:
            raise PlanError(f"{where}: data_partition and policy_version must be non-empty")
        if not isinstance(self.bid_targets, tuple):
            object.__setattr__(self, "bid_targets", tuple(self.bid_targets))
        if self.daily_budget is not None and not self.budget_target:
            raise PlanError(f"{where}: a daily_budget needs a budget_target (the platform object holding the budget)")
        if self.bid is not None and not self.bid_targets:
            raise PlanError(f"{where}: a bid needs bid_targets (the platform objects holding the bid)")
        if any(not str(t).strip() for t in self.bid_targets) or len(set(self.bid_targets)) != len(self.bid_targets):
            raise PlanError(f"{where}: bid_targets must be distinct non-empty ids, got {self.bid_targets!r}")
        if self.hour_modifiers is not None:
            mods = tuple(self.hour_modifiers)
            if len(mods) != HOURS or any(not math.isfinite(m) or m <= 0 for m in mods):
                raise PlanError(f"{where}: hour_modifiers must be {HOURS} positive multipliers, got {mods!r}")
            object.__setattr__(self, "hour_modifiers", mods)

    @property
    def is_search(self) -> bool:
        return self.platform in SEARCH_PLATFORMS

    @property
    def has_hour_modifiers(self) -> bool:
        """True when the row asks for hour-of-day bid modifiers other than all 1.0."""
        return self.hour_modifiers is not None and any(abs(m - 1.0) > 1e-9 for m in self.hour_modifiers)

    def changes(self) -> list[Change]:
        """The intended changes: the budget (if set) on `budget_target`, then the bid (if set) on each bid target."""
        out = []
        if self.daily_budget is not None:
            out.append(Change(self, "budget", str(self.budget_target), self.current_budget, self.daily_budget))
        if self.bid is not None:
            out.extend(Change(self, "bid", str(t), self.current_bid, self.bid) for t in self.bid_targets)
        return out
