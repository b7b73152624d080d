"""What each ad platform accepts as a daily budget and a bid, so that a plan never asks for a value the platform
would refuse (or silently change).

Precision: every platform takes money to the cent (Google Ads in micros that must be whole cents, Meta in minor
units, TikTok and Microsoft in currency with two decimals), so a plan value must be a whole number of cents — a
sub-cent value would be rounded by someone other than GAELP.

Minimums (for a USD account; other currencies have their own, set `PLATFORM_RULES` for the account):
  * Google Ads: a budget is at least one cent; a budget of 0 is expressed as 0 (the platform decides whether the
    campaign may run on it: `BudgetPerDayMinimumErrorDetails` names its own minimum when it refuses);
  * Microsoft Advertising: a daily budget is at least 1.00;
  * Meta: an ad set's daily budget is at least 1.00 (impressions-billed ad sets; Meta asks more for others);
  * TikTok: an ad group's daily budget is at least 20.00;
  * bids (max CPC, CPM bid cap) are at least one cent everywhere.

Bid modifiers (`MODIFIER_RANGES`): Google Ads and Microsoft Advertising take device adjustments from −100% (the
device excluded, multiplier 0) to +900% (10) and ad-schedule / day-time adjustments from −90% (0.1) to +900%, in
whole percentage points on Microsoft (so GAELP plans every modifier to 0.01); Meta and TikTok have none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rl.bidding.plan import to_cents
from rl.market.params import SEARCH_DEVICE_MODIFIER_RANGE, SEARCH_HOUR_MODIFIER_RANGE


@dataclass(frozen=True)
class PlatformRule:
    """The smallest daily budget and bid a platform accepts (account currency), and whether a budget of exactly 0
    is a value it takes."""

    min_budget: float
    zero_budget_allowed: bool
    min_bid: float = 0.01


PLATFORM_RULES: dict[str, PlatformRule] = {
    "google_ads": PlatformRule(min_budget=0.01, zero_budget_allowed=True),
    "microsoft_ads": PlatformRule(min_budget=1.00, zero_budget_allowed=False),
    "meta": PlatformRule(min_budget=1.00, zero_budget_allowed=False),
    "tiktok": PlatformRule(min_budget=20.00, zero_budget_allowed=False),
}


@dataclass(frozen=True)
class ModifierRule:
    """The (low, high) multipliers a platform takes as device and as hour-of-day (ad schedule) bid modifiers."""

    device: tuple[float, float]
    hours: tuple[float, float]


MODIFIER_RANGES: dict[str, ModifierRule] = {
    "google_ads": ModifierRule(SEARCH_DEVICE_MODIFIER_RANGE, SEARCH_HOUR_MODIFIER_RANGE),
    "microsoft_ads": ModifierRule(SEARCH_DEVICE_MODIFIER_RANGE, SEARCH_HOUR_MODIFIER_RANGE),
}


def modifier_problem(platform: str, kind: str, key: str, value: float) -> str | None:
    """Why `platform` would refuse this modifier (`kind` "device" or "hours"; None: it takes it)."""
    rule = MODIFIER_RANGES.get(platform)
    if rule is None:
        return f"{platform} has no device or hour-of-day bid modifiers ({key} = {value!r})"
    low, high = rule.device if kind == "device" else rule.hours
    if not whole_cents(value):
        return f"{key} modifier {value!r} is not a whole percentage point"
    if not low - 1e-9 <= value <= high + 1e-9:
        return f"{key} modifier {value:.2f} is outside {platform}'s range [{low:g}, {high:g}]"
    return None


def whole_cents(value: float) -> bool:
    """True when `value` is a whole number of cents (up to float noise)."""
    return math.isfinite(value) and abs(value * 100 - round(value * 100)) < 1e-6


def budget_problem(platform: str, budget: float, current: float | None = None) -> str | None:
    """Why `platform` would refuse this daily budget (None: it accepts it, or it equals `current`, the budget in
    force, and is not sent)."""
    rule = PLATFORM_RULES[platform]
    if current is not None and math.isfinite(current) and budget == current:
        return None
    if not whole_cents(budget):
        return f"budget {budget!r} is not a whole number of cents"
    if to_cents(budget) == 0 and rule.zero_budget_allowed:
        return None
    if to_cents(budget) < to_cents(rule.min_budget):
        zero = " (and 0 is not accepted)" if not rule.zero_budget_allowed else ""
        return f"budget {budget:.2f} is below {platform}'s minimum daily budget {rule.min_budget:.2f}{zero}"
    return None


def bid_problem(platform: str, bid: float, current: float | None = None) -> str | None:
    """Why `platform` would refuse this bid (None: it accepts it, or it equals `current` and is not sent)."""
    rule = PLATFORM_RULES[platform]
    if current is not None and math.isfinite(current) and bid == current:
        return None
    if not whole_cents(bid):
        return f"bid {bid!r} is not a whole number of cents"
    if to_cents(bid) < to_cents(rule.min_bid):
        return f"bid {bid:.2f} is below {platform}'s minimum bid {rule.min_bid:.2f}"
    return None


def raise_to_minimums(
    budgets: np.ndarray,
    platforms: Sequence[str],
    current: np.ndarray,
    bands: tuple[np.ndarray, np.ndarray],
    total_limit: float,
) -> np.ndarray:
    """Budgets (whole cents) raised to their platform's minimum where they fall below it (a budget of 0 stays 0
    where the platform takes 0). Where the minimum lies above the daily-step band (`bands`: lower and upper edges)
    — a campaign whose budget in force is below the platform's minimum — the budget in force is kept (it is not
    pushed). What the raises add is taken back from the budgets with room above their lower edge (never below the
    minimum), so the total stays within `total_limit`; when there is not enough room the total is left over, and
    the plan's checks block it."""
    out = np.asarray(budgets, dtype=float).copy()
    lower, upper = (np.asarray(b, dtype=float) for b in bands)
    floors = lower.copy()
    for j, platform in enumerate(platforms):
        rule = PLATFORM_RULES[platform]
        floors[j] = max(floors[j], rule.min_budget)
        if to_cents(out[j]) == 0 and rule.zero_budget_allowed:
            floors[j] = 0.0
            continue
        if to_cents(out[j]) < to_cents(rule.min_budget):
            if to_cents(rule.min_budget) > math.ceil(upper[j] * 100 - 1e-6):
                out[j] = floors[j] = float(current[j])  # out of reach today: leave it as it is
            else:
                out[j] = rule.min_budget
    excess = sum(to_cents(b) for b in out) - to_cents(total_limit)
    if excess <= 0:
        return out
    room = np.array([max(0, to_cents(b) - math.ceil(f * 100 - 1e-6)) for b, f in zip(out, floors, strict=True)])
    if room.sum() < excess:
        return out
    take = np.floor(room * excess / room.sum()).astype(int)
    short = excess - int(take.sum())
    for j in np.argsort(-room, kind="stable"):  # the last cents from the budgets with the most room
        if short <= 0:
            break
        extra = min(short, int(room[j] - take[j]))
        take[j] += extra
        short -= extra
    return np.array([(to_cents(b) - t) / 100 for b, t in zip(out, take, strict=True)])
