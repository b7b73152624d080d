"""Guardrail checks on a day's bid plan: pure functions returning named failures (no Dagster here).

The checks are the last line before a push, so they do not trust the planner: each takes the plan rows as they
are stored and re-derives the bounds from the account's limits.

Money is compared in whole cents, because every push rounds to the cent (`rl.bidding.plan.to_cents`):
  * `total_within_account_budget`  Σ daily budgets ≤ the account's daily budget;
  * `bids_within_max_bid`          every bid ≤ its campaign's max bid, and with its bid modifiers the highest
                                    (device, hour block) cell's bid too: bid × max device × max block ≤ max bid;
  * `changes_within_daily_step`    every budget within ±step × max(current budget, budget floor) of the current
                                    budget (the floor lets a zero budget restart), every bid within ±step × the
                                    current bid — each band widened outwards to whole cents; a bid may also sit
                                    at its cap (the max bid over its top modifier) when the current bid is above
                                    it (the hard cap wins);
  * `campaigns_known_and_enabled`  every row is a campaign of the registry (platform and id) with status enabled,
                                    and no campaign appears twice;
  * `no_nan`                       budgets and bids (new and current) are finite numbers ≥ 0 (bids > 0);
  * `within_platform_rules`        every budget and bid is a whole number of cents and at least what its platform
                                    accepts (`rl.bidding.platform_rules`: a TikTok daily budget ≥ 20.00, Meta ≥ 1.00,
                                    a budget of 0 only where the platform takes 0) — unless it is the value in force,
                                    which is not sent;
  * `modifiers_within_rules`       device and hour-block modifiers only on the platforms that have them, within
                                    the platform's range in whole percentage points, and each within ±step ×
                                    max(modifier in force, 0.1) of the modifier in force (widened to whole points).
A plan that passes all of them satisfies every bound (see tests/rl/bidding/test_checks.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rl.bidding.plan import DEVICE_KEYS, hour_block_key, to_cents
from rl.bidding.platform_rules import PLATFORM_RULES, bid_problem, budget_problem, modifier_problem
from rl.env.settings import MODIFIER_FLOOR

CHECKS = (
    "total_within_account_budget",
    "bids_within_max_bid",
    "changes_within_daily_step",
    "campaigns_known_and_enabled",
    "no_nan",
    "within_platform_rules",
    "modifiers_within_rules",
)


class CheckedRow(Protocol):
    platform: str
    campaign_id: int
    daily_budget: float | None
    bid: float | None
    current_budget: float | None
    current_bid: float | None
    # device_modifiers, hour_modifiers, current_device_modifiers, current_hour_modifiers: tuples or None (optional)


@dataclass(frozen=True)
class PlanLimits:
    """The account's limits: total daily budget, max bid per (platform, campaign id), daily step (0.2 = ±20%)
    and the budget floor the step of a zero budget is measured from."""

    daily_budget: float
    max_bids: Mapping[tuple[str, int], float]
    max_step: float  # the account's (`rl.account.AccountSettings.max_step`)
    budget_floor: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.daily_budget) and self.daily_budget > 0):
            raise ValueError(f"PlanLimits.daily_budget must be a finite number > 0, got {self.daily_budget!r}")
        if not (math.isfinite(self.max_step) and self.max_step >= 0):
            raise ValueError(f"PlanLimits.max_step must be a finite number >= 0, got {self.max_step!r}")


@dataclass(frozen=True)
class CheckFailure:
    """One named failure: which check, which campaign (None for plan-wide ones), and why."""

    check: str
    message: str
    platform: str | None = None
    campaign_id: int | None = None


def _finite(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _cents_floor(x: float) -> int:
    return math.floor(x * 100 + 1e-6)


def _cents_ceil(x: float) -> int:
    return math.ceil(x * 100 - 1e-6)


def _mods(r: CheckedRow, name: str) -> tuple[float, ...] | None:
    value = getattr(r, name, None)
    return None if value is None else tuple(value)


def bid_cap(r: CheckedRow, cap: float) -> float:
    """The highest base bid a row may have: its max bid, over its largest device × hour-block multiplier when that
    is above 1 (a cell bids base bid × both)."""
    device, hours = _mods(r, "device_modifiers"), _mods(r, "hour_modifiers")
    top = (max(device) if device else 1.0) * (max(hours) if hours else 1.0)
    return cap / max(top, 1.0)


def check_no_nan(rows: Sequence[CheckedRow]) -> list[CheckFailure]:
    out = []
    for r in rows:
        for name in ("daily_budget", "bid", "current_budget", "current_bid"):
            v = getattr(r, name)
            if not _finite(v) or v < 0 or (name in ("bid", "current_bid") and v <= 0):
                out.append(
                    CheckFailure(
                        "no_nan",
                        f"{r.platform}/{r.campaign_id}: {name} is {v!r}, not a finite number "
                        f"{'> 0' if 'bid' in name else '>= 0'}",
                        r.platform,
                        r.campaign_id,
                    )
                )
    return out


def check_total(rows: Sequence[CheckedRow], limits: PlanLimits) -> list[CheckFailure]:
    budgets = [r.daily_budget for r in rows]
    if not all(_finite(b) for b in budgets):
        return [CheckFailure("total_within_account_budget", "the total is undefined: a budget is missing or NaN")]
    total = sum(to_cents(b) for b in budgets)
    if total > to_cents(limits.daily_budget):
        return [
            CheckFailure(
                "total_within_account_budget",
                f"the plan's daily budgets add up to {total / 100:.2f}, above the account's daily budget "
                f"{limits.daily_budget:.2f}",
            )
        ]
    return []


def check_max_bid(rows: Sequence[CheckedRow], limits: PlanLimits) -> list[CheckFailure]:
    out = []
    for r in rows:
        cap = limits.max_bids.get((r.platform, r.campaign_id))
        if cap is None:
            out.append(
                CheckFailure(
                    "bids_within_max_bid",
                    f"{r.platform}/{r.campaign_id}: no max bid is configured for this campaign",
                    r.platform,
                    r.campaign_id,
                )
            )
        elif not _finite(r.bid) or to_cents(r.bid) > _cents_floor(cap):
            out.append(
                CheckFailure(
                    "bids_within_max_bid",
                    f"{r.platform}/{r.campaign_id}: bid {r.bid!r} is above the max bid {cap:.2f}",
                    r.platform,
                    r.campaign_id,
                )
            )
        elif to_cents(r.bid) > _cents_floor(bid_cap(r, cap)):
            out.append(
                CheckFailure(
                    "bids_within_max_bid",
                    f"{r.platform}/{r.campaign_id}: bid {r.bid:.2f} with its modifiers bids up to "
                    f"{r.bid * cap / bid_cap(r, cap):.2f} in its highest device and hour block, above the max bid "
                    f"{cap:.2f}",
                    r.platform,
                    r.campaign_id,
                )
            )
    return out


def check_step(rows: Sequence[CheckedRow], limits: PlanLimits) -> list[CheckFailure]:
    out = []
    s = limits.max_step
    for r in rows:
        where = f"{r.platform}/{r.campaign_id}"
        if not all(_finite(v) for v in (r.daily_budget, r.bid, r.current_budget, r.current_bid)):
            out.append(CheckFailure("changes_within_daily_step", f"{where}: a value is missing or NaN", *_key(r)))
            continue
        width = s * max(r.current_budget, limits.budget_floor)
        lo, hi = _cents_floor(max(r.current_budget - width, 0.0)), _cents_ceil(r.current_budget + width)
        if not lo <= to_cents(r.daily_budget) <= hi:
            out.append(
                CheckFailure(
                    "changes_within_daily_step",
                    f"{where}: budget {r.current_budget:.2f} -> {r.daily_budget:.2f} moves more than "
                    f"{s:.0%} (allowed {lo / 100:.2f} .. {hi / 100:.2f})",
                    *_key(r),
                )
            )
        lo, hi = _cents_floor(r.current_bid * (1 - s)), _cents_ceil(r.current_bid * (1 + s))
        cap = limits.max_bids.get((r.platform, r.campaign_id))
        if cap is not None and r.current_bid > bid_cap(r, cap):  # the hard cap wins over the band
            lo = min(lo, _cents_floor(bid_cap(r, cap)))
        if not lo <= to_cents(r.bid) <= hi:
            out.append(
                CheckFailure(
                    "changes_within_daily_step",
                    f"{where}: bid {r.current_bid:.2f} -> {r.bid:.2f} moves more than {s:.0%} "
                    f"(allowed {lo / 100:.2f} .. {hi / 100:.2f})",
                    *_key(r),
                )
            )
    return out


def check_campaigns(rows: Sequence[CheckedRow], campaigns: Mapping[tuple[str, int], str]) -> list[CheckFailure]:
    """`campaigns`: (platform, campaign id) -> status ("enabled" / "paused") from the registry (dim_campaign)."""
    out = []
    seen: set[tuple[str, int]] = set()
    for r in rows:
        key = (r.platform, r.campaign_id)
        status = campaigns.get(key)
        if status is None:
            out.append(
                CheckFailure(
                    "campaigns_known_and_enabled",
                    f"{r.platform}/{r.campaign_id} is not a campaign of the registry",
                    *key,
                )
            )
        elif status != "enabled":
            out.append(
                CheckFailure(
                    "campaigns_known_and_enabled",
                    f"{r.platform}/{r.campaign_id} is {status} in the registry: a plan must not touch it",
                    *key,
                )
            )
        if key in seen:
            out.append(CheckFailure("campaigns_known_and_enabled", f"{r.platform}/{r.campaign_id} appears twice", *key))
        seen.add(key)
    return out


def check_platform_rules(rows: Sequence[CheckedRow]) -> list[CheckFailure]:
    out = []
    for r in rows:
        if r.platform not in PLATFORM_RULES:
            continue  # an unknown platform is campaigns_known_and_enabled's to report
        problems = [
            budget_problem(r.platform, r.daily_budget, r.current_budget) if _finite(r.daily_budget) else None,
            bid_problem(r.platform, r.bid, r.current_bid) if _finite(r.bid) else None,
        ]
        for problem in filter(None, problems):
            out.append(CheckFailure("within_platform_rules", f"{r.platform}/{r.campaign_id}: {problem}", *_key(r)))
    return out


def check_modifiers(rows: Sequence[CheckedRow], max_step: float) -> list[CheckFailure]:
    out = []
    for r in rows:
        where = f"{r.platform}/{r.campaign_id}"
        for kind, name in (("device", "device_modifiers"), ("hours", "hour_modifiers")):
            new, now = _mods(r, name), _mods(r, f"current_{name}")
            if new is None:
                continue
            keys = DEVICE_KEYS if kind == "device" else [hour_block_key(b, len(new)) for b in range(len(new))]
            if len(keys) != len(new) or (now is not None and len(now) != len(new)):
                out.append(CheckFailure("modifiers_within_rules", f"{where}: {name} has the wrong length", *_key(r)))
                continue
            for j, (key, value) in enumerate(zip(keys, new, strict=True)):
                if not _finite(value):
                    problem = f"{key} modifier is {value!r}, not a finite number"
                else:
                    problem = modifier_problem(r.platform, kind, key, value)
                if problem is None and now is not None and _finite(now[j]):
                    width = max_step * max(now[j], MODIFIER_FLOOR)
                    lo, hi = _cents_floor(max(now[j] - width, 0.0)), _cents_ceil(now[j] + width)
                    if not lo <= to_cents(value) <= hi:
                        problem = (
                            f"{key} modifier {now[j]:.2f} -> {value:.2f} moves more than {max_step:.0%} "
                            f"(allowed {lo / 100:.2f} .. {hi / 100:.2f})"
                        )
                if problem:
                    out.append(CheckFailure("modifiers_within_rules", f"{where}: {problem}", *_key(r)))
    return out


def _key(r: CheckedRow) -> tuple[str, int]:
    return r.platform, r.campaign_id


def run_checks(
    rows: Sequence[CheckedRow], limits: PlanLimits, campaigns: Mapping[tuple[str, int], str]
) -> dict[str, list[CheckFailure]]:
    """Every check by name (CHECKS order) with its failures (an empty list: passed)."""
    return {
        "total_within_account_budget": check_total(rows, limits),
        "bids_within_max_bid": check_max_bid(rows, limits),
        "changes_within_daily_step": check_step(rows, limits),
        "campaigns_known_and_enabled": check_campaigns(rows, campaigns),
        "no_nan": check_no_nan(rows),
        "within_platform_rules": check_platform_rules(rows),
        "modifiers_within_rules": check_modifiers(rows, limits.max_step),
    }


def passes(results: Mapping[str, list[CheckFailure]]) -> bool:
    return not any(results.values())
