"""Device and hour-block bid modifiers set from the discovered patterns, the way a search marketer sets them.

The rule (`pattern_modifiers`), per campaign whose platform has modifiers, from the trailing 28 days the
observation reports (clicks and conversions by click date, per device and per hour block of the click):

    rate_k   = (conversions_k + s · r) / (clicks_k + s)      shrunk towards the campaign's rate r = Σ conv / Σ clicks
                                                              by s pseudo-clicks (a breakdown with few clicks stays
                                                              near the campaign's rate: its uncertainty is large)
    mod_k    = (rate_k / r) ** power                          relative conversions per click (power 1: proportional)
    mod_k   /= Σ_k share_k · mod_k                            click-weighted mean 1, so the base bid keeps its level

then clipped to the action space and the platform's range (the guardrails clip again). Conversions by click date
are still maturing for recent clicks, but maturity does not depend on device or hour, so the ratios are unbiased.
A campaign without modifiers, or without a reported conversion, keeps every modifier at 1.

`with_patterns(cls)` makes any baseline's "pattern rules" variant: the baseline's budgets and bids, these
modifiers. Its hyperparameters are the baseline's plus `strength` (s) and `power`; `tune` searches the pattern
grid on top of the baseline's own tuned hyperparameters (the baseline is tuned first, as before).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rl.env.schema import ObservationSchema, breakdown_keys
from rl.market.modifiers import N_DEVICES

PATTERN_GRID: dict[str, list[Any]] = {"strength": [100.0, 400.0], "power": [0.5, 1.0]}
PATTERN_SUFFIX = "_patterns"


def modifiers_in_force(schema: ObservationSchema, f: dict[str, np.ndarray], modifier_range: float):
    """The device [n, C, D] and hour-block [n, C, B] modifiers in force, from the decoded `mod_*` features."""
    keys = breakdown_keys(schema.hour_blocks)
    mods = modifier_range ** np.stack([f[f"mod_{k}"] for k in keys], axis=-1)  # [n, C, D + B]
    return mods[..., :N_DEVICES], mods[..., N_DEVICES:]


def _relative(clicks: np.ndarray, conv: np.ndarray, strength: float, power: float) -> np.ndarray:
    """[n, C, K] click-weighted-mean-1 modifiers from clicks and conversions per breakdown key."""
    tot_clicks = clicks.sum(axis=-1, keepdims=True)
    tot_conv = conv.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(tot_clicks > 0, tot_conv / np.where(tot_clicks > 0, tot_clicks, 1.0), 0.0)
        rate = (conv + strength * r) / (clicks + strength)
        rel = np.where(r > 0, rate / np.where(r > 0, r, 1.0), 1.0) ** power
        share = np.where(tot_clicks > 0, clicks / np.where(tot_clicks > 0, tot_clicks, 1.0), 1.0 / clicks.shape[-1])
        mean = (share * rel).sum(axis=-1, keepdims=True)
        rel = np.where(mean > 0, rel / np.where(mean > 0, mean, 1.0), 1.0)
    return np.where(tot_conv > 0, rel, 1.0)


def pattern_modifiers(
    schema: ObservationSchema, f: dict[str, np.ndarray], strength: float, power: float, modifier_range: float
) -> tuple[np.ndarray, np.ndarray]:
    """Device [n, C, D] and hour-block [n, C, B] modifiers from the decoded features (module docstring)."""
    keys = breakdown_keys(schema.hour_blocks)
    clicks = np.stack([f[f"clicks_{k}_28d"] for k in keys], axis=-1) * 28.0  # per-day means → window totals
    conv = np.stack([f[f"conversions_{k}_28d"] for k in keys], axis=-1)
    clicks, conv = np.maximum(clicks, 0.0), np.maximum(conv, 0.0)
    device = _relative(clicks[..., :N_DEVICES], conv[..., :N_DEVICES], strength, power)
    hours = _relative(clicks[..., N_DEVICES:], conv[..., N_DEVICES:], strength, power)
    lo, hi = 1.0 / modifier_range, modifier_range
    mask = np.asarray(schema.modifiers, dtype=bool)[None, :, None]
    return np.where(mask, np.clip(device, lo, hi), 1.0), np.where(mask, np.clip(hours, lo, hi), 1.0)


class PatternRules:
    """Mixin for a `Baseline` subclass: its budgets and bids, the pattern-rule modifiers (module docstring)."""

    PATTERN_GRID: ClassVar[dict[str, list[Any]]] = PATTERN_GRID

    def __init__(self, schema, codec, strength: float = 200.0, power: float = 1.0, **base_hyperparams):
        super().__init__(schema, codec, **base_hyperparams)
        if not strength >= 0 or not power >= 0:
            raise ValueError(f"pattern rules need strength >= 0 and power >= 0, got {strength}, {power}")
        self.strength, self.power = float(strength), float(power)

    def modifiers(self, f):
        return pattern_modifiers(self.schema, f, self.strength, self.power, self.codec.modifier_range)


def with_patterns(base: type) -> type:
    """The pattern-rules variant of the baseline class `base` (named `<base.name>_patterns`)."""
    name = base.__name__.removesuffix("Policy") + "Patterns"
    return type(
        name,
        (PatternRules, base),
        {
            "__module__": base.__module__,
            "__qualname__": name,
            "name": base.name + PATTERN_SUFFIX,
            "GRID": {**base.GRID, **PATTERN_GRID},
            "__doc__": f"{base.__name__} with device and hour-block modifiers from the discovered patterns.",
            "base_name": base.name,
        },
    )
