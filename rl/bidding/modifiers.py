"""The plan's device and hour-block modifiers: which campaigns get them, those in force, the safe plan's step back
to the reference ones, and rounding to whole percentage points inside the step band and the platform's range.

Shapes: [C, 3] device and [C, B] hour-block modifiers; pure numpy. `rl.bidding.planner` uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl.bidding.history import CampaignInfo, MartHistory
from rl.bidding.plan import Reference
from rl.bidding.platform_rules import MODIFIER_RANGES
from rl.env.guardrails import GuardrailLimits
from rl.env.schema import ObservationSchema
from rl.env.settings import MODIFIER_FLOOR, Settings, guard_modifiers
from rl.market.modifiers import N_DEVICES, ModifierLimits


def _cents_down(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x) * 100 + 1e-6) / 100


def _cents_up(x: np.ndarray) -> np.ndarray:
    return np.ceil(np.asarray(x) * 100 - 1e-6) / 100


def modifier_limits(
    campaigns: Sequence[CampaignInfo], schema: ObservationSchema | None, n_blocks: int
) -> ModifierLimits:
    """Which campaigns' modifiers the plan sets (the schema says the policy acts on them and the platform has them:
    `rl.bidding.platform_rules.MODIFIER_RANGES`) and each platform's range."""
    flags = schema.modifiers if schema is not None else (False,) * len(campaigns)
    enabled, device, hours = [], [], []
    for c, has in zip(campaigns, flags, strict=True):
        rule = MODIFIER_RANGES.get(c.platform) if has else None
        enabled.append(rule is not None)
        device.append(rule.device if rule else (1.0, 1.0))
        hours.append(rule.hours if rule else (1.0, 1.0))
    return ModifierLimits(np.array(enabled, dtype=bool), np.array(device, float), np.array(hours, float), n_blocks)


def settings_in_force(history: MartHistory, n_blocks: int) -> Settings:
    """Budgets, bids and modifiers in force on the plan's data day ([C], [C], [C, 3], [C, B]; modifiers 1 where the
    marts carry none)."""
    c = len(history.campaigns)
    mods = history.modifiers[-1] if history.modifiers is not None else np.ones((c, N_DEVICES + n_blocks))
    mods = np.where(np.isfinite(mods), mods, 1.0)
    return Settings(
        np.asarray(history.current_budgets, dtype=float),
        np.asarray(history.current_bids, dtype=float),
        mods[:, :N_DEVICES].copy(),
        mods[:, N_DEVICES:].copy(),
    )


def back_to_reference(applied: Settings, now: Settings, reference: Reference, limits: GuardrailLimits) -> Settings:
    """The safe plan's modifiers: a step from those in force towards the reference ones (1 where none were
    recorded), within the platform's range."""
    ml = limits.modifiers
    if ml is None or not ml.enabled.any():
        return applied
    c, n_b = limits.n_campaigns, limits.n_blocks
    ref_d = reference.device if reference.device is not None else np.ones((c, N_DEVICES))
    ref_h = reference.hours if reference.hours is not None else np.ones((c, n_b))
    step = limits.max_step
    device = guard_modifiers(ref_d, now.device, ml.device_range[:, 0], ml.device_range[:, 1], ml.enabled, step)
    hours = guard_modifiers(ref_h, now.hours, ml.hour_range[:, 0], ml.hour_range[:, 1], ml.enabled, step)
    return Settings(applied.budgets, applied.bids, device, hours)


def _round_band(values: np.ndarray, current: np.ndarray, low: np.ndarray, high: np.ndarray, step) -> np.ndarray:
    out = np.round(values, 2)
    if step is not None:
        width = step * np.maximum(current, MODIFIER_FLOOR)
        out = np.clip(out, _cents_up(np.maximum(current - width, 0.0)), _cents_down(current + width))
    return np.clip(out, _cents_up(low[:, None]), _cents_down(high[:, None]))


def round_modifiers(applied: Settings, now: Settings, limits: GuardrailLimits) -> tuple[np.ndarray, np.ndarray]:
    """Modifiers [C, 3], [C, B] in whole percentage points inside the step band and the platform's range (the
    range wins); 1 where the plan does not set them."""
    ml = limits.modifiers
    if ml is None or not ml.enabled.any():
        return np.ones_like(now.device), np.ones_like(now.hours)
    step = limits.max_step
    device = _round_band(applied.device, now.device, ml.device_range[:, 0], ml.device_range[:, 1], step)
    hours = _round_band(applied.hours, now.hours, ml.hour_range[:, 0], ml.hour_range[:, 1], step)
    mask = ml.enabled[:, None]
    return np.where(mask, device, 1.0), np.where(mask, hours, 1.0)


def modifier_fields(enabled: bool, device, hours, device_now, hours_now) -> dict:
    if not enabled:
        return {}
    return {
        "device_modifiers": tuple(float(v) for v in device),
        "hour_modifiers": tuple(float(v) for v in hours),
        "current_device_modifiers": tuple(float(v) for v in device_now),
        "current_hour_modifiers": tuple(float(v) for v in hours_now),
    }
