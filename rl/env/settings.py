"""The settings a campaign runs with, and a whole action (modifiers included) turned into them by the guardrails.

`Settings` holds, per market and campaign, the daily budget, the base bid, the device modifiers (mobile,
desktop, tablet) and the hour-block modifiers; `cell_multipliers()` gives the engine the bid multiplier of every
(hour, device) cell. `apply_action` is the one place an action becomes settings:

  1. budgets and base bids: `rl.env.guardrails.apply_guardrails` on the action's first 2C values;
  2. modifiers (campaigns whose platform has them; 1 everywhere else, always): target = modifier_range ** a
     (a = 0 is no adjustment; NaN keeps the modifier in force), clipped to the platform's range, then moved at
     most `max_step` × max(modifier in force, `MODIFIER_FLOOR`) from the modifier in force (the floor lets an
     excluded device, modifier 0, come back), then clipped to the platform's range again (the hard limit wins);
  3. the effective bid cap: no (hour, device) cell may bid above the campaign's max bid. The boosts (modifiers
     above 1) give way first, each raised to one power in [0, 1] per campaign, as far as the step band lets them
     (`yield_boosts`); then the base bid is capped at max bid / the largest device × hour-block product. The base
     bid is the lever on every cell, a boost on a few, so a policy that wants both keeps the base.

Shapes: [..., C] budgets and bids, [..., C, D] device and [..., C, B] hour-block modifiers; pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.env.guardrails import ActionCodec, GuardrailLimits, apply_guardrails
from rl.market.modifiers import N_DEVICES, cell_multipliers

MODIFIER_FLOOR = 0.1  # the step band of a modifier is at least max_step × this wide


@dataclass(frozen=True)
class Settings:
    """Budgets [..., C], base bids [..., C], device modifiers [..., C, D] and hour-block modifiers [..., C, B]."""

    budgets: np.ndarray
    bids: np.ndarray
    device: np.ndarray
    hours: np.ndarray

    @classmethod
    def without_modifiers(cls, budgets: np.ndarray, bids: np.ndarray, n_blocks: int) -> Settings:
        budgets = np.asarray(budgets, dtype=float)
        return cls(
            budgets,
            np.asarray(bids, dtype=float),
            np.ones(budgets.shape + (N_DEVICES,)),
            np.ones(budgets.shape + (n_blocks,)),
        )

    def cell_multipliers(self) -> np.ndarray:
        """[..., C, 24, D] bid multiplier of every (hour, device) cell."""
        return cell_multipliers(self.device, self.hours)

    def effective_max(self) -> np.ndarray:
        """[..., C] the largest multiplier any cell applies to the base bid."""
        return self.device.max(axis=-1) * self.hours.max(axis=-1)

    def market(self, m: int) -> Settings:
        """Market m's settings (drop the leading market axis)."""
        return Settings(self.budgets[m], self.bids[m], self.device[m], self.hours[m])

    def copy(self) -> Settings:
        return Settings(self.budgets.copy(), self.bids.copy(), self.device.copy(), self.hours.copy())


def _clean(a: np.ndarray) -> np.ndarray:
    return np.clip(np.where(np.isposinf(a), 1.0, np.where(np.isneginf(a), -1.0, a)), -1.0, 1.0)


def guard_modifiers(
    target: np.ndarray, current: np.ndarray, low: np.ndarray, high: np.ndarray, mask: np.ndarray, max_step
) -> np.ndarray:
    """Applied modifiers [..., C, K] from targets (NaN: keep current) within [low, high] ([C] each) and the step
    band; 1 where `mask` [C] is False."""
    current = np.asarray(current, dtype=float)
    current = np.where(np.isfinite(current), current, 1.0)
    lo, hi = low[:, None], high[:, None]
    tgt = np.where(np.isnan(target), current, target)
    tgt = np.clip(tgt, lo, hi)
    if max_step is not None:
        width = max_step * np.maximum(current, MODIFIER_FLOOR)
        tgt = np.clip(tgt, current - width, current + width)
    out = np.clip(tgt, lo, hi)
    return np.where(mask[:, None], out, 1.0)


def codec_of(limits: GuardrailLimits) -> ActionCodec:
    """The action layout the guardrails read: the campaigns with modifiers, the hour blocks and the ranges."""
    return ActionCodec(
        limits.n_campaigns,
        limits.bid_range,
        tuple(limits.modifier_mask.tolist()),
        limits.n_blocks,
        limits.modifier_range,
    )


def apply_action(action: np.ndarray, now: Settings, limits: GuardrailLimits) -> Settings:
    """The settings applied for a raw action [..., A] given the settings in force (see the module docstring)."""
    action = np.asarray(action, dtype=float)
    codec = codec_of(limits)
    if action.shape[-1] != codec.action_size:
        raise ValueError(f"action must have {codec.action_size} values in its last axis, got shape {action.shape}")
    budgets, bids = apply_guardrails(action, now.budgets, now.bids, limits)
    batch = budgets.shape[:-1]
    n_c = limits.n_campaigns
    dev_now = np.broadcast_to(now.device, (*batch, n_c, N_DEVICES))
    hrs_now = np.broadcast_to(now.hours, (*batch, n_c, limits.n_blocks))
    mask = limits.modifier_mask
    if mask.any():
        dev_t, hrs_t = codec.decode_modifiers(action)
        ml = limits.modifiers
        device = guard_modifiers(dev_t, dev_now, ml.device_range[:, 0], ml.device_range[:, 1], mask, limits.max_step)
        hours = guard_modifiers(hrs_t, hrs_now, ml.hour_range[:, 0], ml.hour_range[:, 1], mask, limits.max_step)
        # boosts that would take a cell above the max bid give way, as far as the step band lets them
        dev_y, hrs_y = yield_boosts(bids, device, hours, limits.max_bids)
        device = guard_modifiers(dev_y, dev_now, ml.device_range[:, 0], ml.device_range[:, 1], mask, limits.max_step)
        hours = guard_modifiers(hrs_y, hrs_now, ml.hour_range[:, 0], ml.hour_range[:, 1], mask, limits.max_step)
    else:
        device, hours = np.ones_like(dev_now), np.ones_like(hrs_now)
    top = device.max(axis=-1) * hours.max(axis=-1)
    bids = np.minimum(bids, limits.max_bids / np.maximum(top, 1e-12))
    bids = np.maximum(bids, 1e-9)
    return Settings(budgets, bids, device, hours)


def yield_boosts(bids: np.ndarray, device: np.ndarray, hours: np.ndarray, max_bids: np.ndarray):
    """Where the base bid [..., C] × the top cell's modifiers would bid above the max bid [C], the boosts (modifiers
    above 1) give way first: each becomes boost ** a, with the one a in [0, 1] per campaign that brings the top
    cell to the max bid. What is left over (no boost left, or the step band holding one up when the caller applies
    it again) comes off the base bid (the caller's cap)."""
    d_top, h_top = device.max(axis=-1), hours.max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # an excluded device (modifier 0) has log −inf: no boost
        log_boost = np.log(np.maximum(d_top, 1.0)) + np.log(np.maximum(h_top, 1.0))
        log_rest = np.log(np.minimum(d_top, 1.0)) + np.log(np.minimum(h_top, 1.0))
        room = np.log(max_bids) - np.log(np.maximum(bids, 1e-12)) - log_rest
        a = np.where(log_boost > 0, np.clip(room / np.where(log_boost > 0, log_boost, 1.0), 0.0, 1.0), 1.0)
    a = a[..., None]
    device = np.where(device > 1.0, device**a, device)
    hours = np.where(hours > 1.0, hours**a, hours)
    return device, hours


def encode_action(settings: Settings, limits: GuardrailLimits) -> np.ndarray:
    """The action whose targets are these settings (currency budgets and bids, modifiers), clipped to the action
    space."""
    return codec_of(limits).encode(
        np.asarray(settings.budgets, dtype=float) / limits.daily_budget,
        np.asarray(settings.bids, dtype=float) / limits.ref_bids,
        settings.device,
        settings.hours,
    )
