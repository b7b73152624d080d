"""Device and hour-block bid modifiers: what they are and how they turn into a bid per (hour, device) cell.

On the search platforms a campaign's bid for one auction is

    effective bid = base bid × device modifier[device] × hour-block modifier[block of the hour],

the way Google Ads and Microsoft Advertising apply device and ad-schedule bid adjustments (a modifier of 1.3 is
"+30%"). The day is cut into `n_blocks` equal blocks (6 blocks of 4 hours by default: block b covers hours
24/n·b … 24/n·(b+1) − 1). Social platforms have no modifiers: their modifiers are 1 everywhere, always.

Shapes: D = 3 devices (`rl.market.params.DEVICES`), B = hour blocks, leading batch dimensions [...] (markets,
campaigns) broadcast. Everything here is pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.market.params import DEVICES, HOURS, MarketParams

N_DEVICES = len(DEVICES)


def block_of_hour(n_blocks: int) -> np.ndarray:
    """[24] int: the hour block of each hour of the day."""
    if n_blocks < 1 or HOURS % n_blocks:
        raise ValueError(f"the number of hour blocks must divide 24, got {n_blocks}")
    return np.arange(HOURS) // (HOURS // n_blocks)


def block_labels(n_blocks: int) -> list[str]:
    """'00-04', '04-08', … : the hours each block covers (end exclusive)."""
    width = HOURS // n_blocks
    return [f"{b * width:02d}-{(b + 1) * width:02d}" for b in range(n_blocks)]


def cell_multipliers(device: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """The bid multiplier of every (hour, device) cell: device [..., D] × hour blocks [..., B] → [..., 24, D]."""
    device = np.asarray(device, dtype=float)
    hours = np.asarray(hours, dtype=float)
    if device.shape[-1] != N_DEVICES:
        raise ValueError(f"device modifiers need {N_DEVICES} values on the last axis, got shape {device.shape}")
    per_hour = hours[..., block_of_hour(hours.shape[-1])]  # [..., 24]
    return per_hour[..., :, None] * device[..., None, :]


@dataclass(frozen=True)
class ModifierLimits:
    """Which campaigns have modifiers and the platform's range for each, in the market's campaign order.

    enabled: [C] bool; device_range, hour_range: [C, 2] (low, high) multipliers, (1, 1) where not enabled."""

    enabled: np.ndarray
    device_range: np.ndarray
    hour_range: np.ndarray
    n_blocks: int

    @classmethod
    def from_params(cls, params: MarketParams) -> ModifierLimits:
        plat = {p.name: p for p in params.platforms}
        enabled, dev, hour = [], [], []
        for c in params.campaigns:
            p = plat[c.platform]
            enabled.append(p.has_modifiers)
            dev.append(p.device_modifier_range if p.has_modifiers else (1.0, 1.0))
            hour.append(p.hour_modifier_range if p.has_modifiers else (1.0, 1.0))
        return cls(np.array(enabled, dtype=bool), np.array(dev, float), np.array(hour, float), params.hour_blocks)

    @property
    def n_campaigns(self) -> int:
        return len(self.enabled)

    def clip(self, device: np.ndarray, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Modifiers [..., C, D] and [..., C, B] clipped to each campaign's platform range (1 without modifiers)."""
        d = np.clip(device, self.device_range[:, None, 0], self.device_range[:, None, 1])
        h = np.clip(hours, self.hour_range[:, None, 0], self.hour_range[:, None, 1])
        return d, h


def modifiers_in_force(params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
    """The campaigns' modifiers in force, device [C, D] and hour blocks [C, B] (1 where none are set)."""
    n_b = params.hour_blocks
    dev = [c.current_device_modifiers or [1.0] * N_DEVICES for c in params.campaigns]
    hours = [c.current_hour_modifiers or [1.0] * n_b for c in params.campaigns]
    return np.array(dev, dtype=float), np.array(hours, dtype=float)


def neutral(batch: tuple[int, ...], n_campaigns: int, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """All-ones modifiers, device [*batch, C, D] and hour blocks [*batch, C, B]."""
    return np.ones((*batch, n_campaigns, N_DEVICES)), np.ones((*batch, n_campaigns, n_blocks))
