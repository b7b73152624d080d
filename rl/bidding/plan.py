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

Bid modifiers (search platforms only). A row may also carry the campaign's device modifiers (mobile, desktop,
tablet) and hour-block modifiers (one per block of 24 / B hours, hour 0 first): multipliers of the bid, 1.0 = no
adjustment, 0 = device excluded. Each is one change whose target is `<campaign_id>:<key>` (`modifier_target`), key
one of `DEVICE_KEYS` or `hour_block_key(b, B)` ("h00_04"); the adapters map it to the platform's criteria (a Google
Ads `CampaignCriterion` with `DeviceInfo` / `AdScheduleInfo`, a Microsoft Advertising `DeviceCriterion` /
`DayTimeCriterion`). Modifiers are set in whole percentage points (the precision Microsoft takes), so "unchanged"
compares them at 0.01 like money.

In the demo market every campaign has exactly one budget object and one bid object, and their ids are derived
from the campaign id by `demo_targets`: budget `<campaign_id>00`, ad group `<campaign_id>01` (campaign 101 ->
budget "10100", ad group "10101"), except on Microsoft Advertising, where the daily budget is the campaign's own
(campaign 401 -> budget "401", ad group "40101"), as in a real Microsoft account (`rl.world.structure` shows the
demo's objects as each platform lists them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PLATFORMS = ("google_ads", "microsoft_ads", "meta", "tiktok")
SEARCH_PLATFORMS = ("google_ads", "microsoft_ads")
FIELDS = ("budget", "bid", "device_modifier", "hour_modifier")
MODIFIER_FIELDS = ("device_modifier", "hour_modifier")
DEVICE_KEYS = ("mobile", "desktop", "tablet")
HOURS = 24


class PlanError(ValueError):
    """A plan row is malformed or cannot be pushed as it is; the message names the row and the field."""


def to_cents(value: float) -> int:
    """Currency -> whole cents (half away from zero, as an accountant would), the unit every push is rounded to."""
    return int(math.floor(abs(value) * 100 + 0.5)) * (1 if value >= 0 else -1)


def hour_block_key(block: int, n_blocks: int) -> str:
    """The key of an hour block: "h00_04" for block 0 of 6 (hours 0 to 4, end exclusive)."""
    width = HOURS // n_blocks
    return f"h{block * width:02d}_{(block + 1) * width:02d}"


def hour_block_keys(n_blocks: int) -> tuple[str, ...]:
    return tuple(hour_block_key(b, n_blocks) for b in range(n_blocks))


def modifier_target(campaign_id: int, key: str) -> str:
    """The target of a modifier change: "<campaign_id>:<key>" (e.g. "101:mobile", "101:h00_04")."""
    return f"{int(campaign_id)}:{key}"


def parse_modifier_target(target: str) -> tuple[int, str, int | None]:
    """(campaign id, key, hour block index or None for a device) of a modifier change's target; PlanError if it is
    not one. The block index is the block's position among blocks of its width."""
    campaign, _, key = str(target).partition(":")
    if not campaign.isdigit() or not key:
        raise PlanError(f"modifier target {target!r} is not '<campaign_id>:<key>'")
    if key in DEVICE_KEYS:
        return int(campaign), key, None
    hours = key[1:].split("_") if key.startswith("h") else []
    if len(hours) == 2 and all(h.isdigit() for h in hours):
        start, end = int(hours[0]), int(hours[1])
        width = end - start
        if width > 0 and HOURS % width == 0 and start % width == 0 and end <= HOURS:
            return int(campaign), key, start // width
    raise PlanError(f"modifier target {target!r}: key {key!r} is neither a device {DEVICE_KEYS} nor an hour block")


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
    reference for "unchanged"); `device_modifiers` (mobile, desktop, tablet) and `hour_modifiers` (one per hour
    block, hour 0 first; 24 / B hours each) are bid multipliers or None (leave as they are), with the ones in force
    in `current_device_modifiers` / `current_hour_modifiers` (None: not known). `policy_version`
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
    device_modifiers: tuple[float, ...] | None = None
    hour_modifiers: tuple[float, ...] | None = None
    current_device_modifiers: tuple[float, ...] | None = None
    current_hour_modifiers: tuple[float, ...] | None = None

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
        for name in ("device_modifiers", "current_device_modifiers", "hour_modifiers", "current_hour_modifiers"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _modifiers(where, name, value))
        if self.has_modifiers and not self.is_search:
            raise PlanError(
                f"{where}: {self.platform} has no device or hour-of-day bid modifiers (only {SEARCH_PLATFORMS} do); "
                "leave device_modifiers and hour_modifiers None"
            )
        pairs = (("hour_modifiers", "current_hour_modifiers"), ("device_modifiers", "current_device_modifiers"))
        for new, now in pairs:
            a, b = getattr(self, new), getattr(self, now)
            if a is not None and b is not None and len(a) != len(b):
                raise PlanError(f"{where}: {new} has {len(a)} values, {now} {len(b)}")

    @property
    def is_search(self) -> bool:
        return self.platform in SEARCH_PLATFORMS

    @property
    def has_modifiers(self) -> bool:
        """True when the row sets device or hour-block modifiers (even to 1.0)."""
        return self.device_modifiers is not None or self.hour_modifiers is not None

    @property
    def n_blocks(self) -> int | None:
        return None if self.hour_modifiers is None else len(self.hour_modifiers)

    def changes(self) -> list[Change]:
        """The intended changes: the budget (if set) on `budget_target`, the bid (if set) on each bid target, then
        each device modifier and each hour-block modifier (if set) on `<campaign_id>:<key>`."""
        out = []
        if self.daily_budget is not None:
            out.append(Change(self, "budget", str(self.budget_target), self.current_budget, self.daily_budget))
        if self.bid is not None:
            out.extend(Change(self, "bid", str(t), self.current_bid, self.bid) for t in self.bid_targets)
        if self.device_modifiers is not None:
            now = self.current_device_modifiers or (None,) * len(DEVICE_KEYS)
            for key, old, new in zip(DEVICE_KEYS, now, self.device_modifiers, strict=True):
                out.append(Change(self, "device_modifier", modifier_target(self.campaign_id, key), old, new))
        if self.hour_modifiers is not None:
            n = len(self.hour_modifiers)
            now = self.current_hour_modifiers or (None,) * n
            for b, (old, new) in enumerate(zip(now, self.hour_modifiers, strict=True)):
                target = modifier_target(self.campaign_id, hour_block_key(b, n))
                out.append(Change(self, "hour_modifier", target, old, new))
        return out


def _modifiers(where: str, name: str, values) -> tuple[float, ...]:
    mods = tuple(float(m) for m in values)
    if name.endswith("device_modifiers"):
        if len(mods) != len(DEVICE_KEYS) or any(not math.isfinite(m) or m < 0 for m in mods):
            raise PlanError(f"{where}: {name} must be {len(DEVICE_KEYS)} multipliers >= 0 {DEVICE_KEYS}, got {mods!r}")
    elif not mods or HOURS % len(mods) or any(not math.isfinite(m) or m <= 0 for m in mods):
        raise PlanError(
            f"{where}: {name} must be one positive multiplier per hour block (a number of blocks dividing 24), "
            f"got {mods!r}"
        )
    return mods


@dataclass(frozen=True)
class Reference:
    """The reference settings per campaign (schema order): the policy's bid multiplier 1.0 and the static, safe
    plan. `source` says where they came from."""

    budgets: np.ndarray
    bids: np.ndarray
    source: str
    # [C, 3] device and [C, B] hour-block modifiers (None: none recorded, 1 everywhere)
    device: np.ndarray | None = None
    hours: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.any(~np.isfinite(self.bids)) or np.any(self.bids <= 0):
            raise PlanError(f"reference bids must be finite and > 0, got {self.bids.tolist()} ({self.source})")
        if np.any(~np.isfinite(self.budgets)) or np.any(self.budgets < 0):
            raise PlanError(f"reference budgets must be finite and >= 0, got {self.budgets.tolist()} ({self.source})")
