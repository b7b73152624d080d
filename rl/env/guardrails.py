"""Action decoding and guardrails: a raw policy action → the budgets and bids actually applied.

Action layout (per market): `action[:C]` budget shares, `action[C:2C]` bid multipliers, then the device and
hour-block modifiers of the campaigns that have them (`rl.env.schema`; decoded and guarded in `rl.env.settings`),
each in [-1, 1].
  * budget share a → target budget (a + 1) / 2 × account daily budget (a = 0 is half the account budget per
    campaign; if the targets add up to more than the account budget they are scaled down, so a = 0 everywhere
    means an equal split of the whole budget);
  * bid multiplier a → target bid = reference bid × bid_range ** a (a = 0 is the reference bid, the bid in force
    when the market was set up; default range ×1/4 … ×4).

`apply_guardrails` then enforces, in this order, and for arbitrary input (NaN, ±inf, out of range):
  1. NaN in an action element → that element keeps the current value as its target; ±inf and out-of-range
     values are clipped to [-1, 1];
  2. targets whose total exceeds the account daily budget are scaled down to it;
  3. each budget moves at most `max_step` × max(current budget, `budget_floor`) from the current budget (the floor
     lets a zero budget restart) and each bid at most `max_step` × the current bid;
  4. if the total still exceeds the account budget (the step bands held some budgets up), the budgets are pulled
     towards their lower band edges until the total fits — this always succeeds when the current budgets fit the
     account budget; only if the *current* budgets already exceed it (which the guardrails never produce) does the
     total win over the step band;
  5. bids are capped at `max_bid` (the hard cap wins over the step band if the current bid is above it), budgets
     are ≥ 0, and everything is finite.
All functions are pure and vectorised over leading batch dimensions: action [..., 2C], budgets/bids [..., C].
`rl.env.settings.apply_action` applies a whole action (modifiers included) so that no cell's effective bid (base ×
device × hour-block modifier) exceeds the max bid: the boosts give way first, then the base bid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.market.modifiers import ModifierLimits
from rl.market.params import DEFAULT_HOUR_BLOCKS, DEVICES, MarketParams

DEFAULT_MAX_STEP = 0.20
DEFAULT_BID_RANGE = 4.0
DEFAULT_MODIFIER_RANGE = 4.0  # modifier action a → modifier_range ** a: ×1/4 … ×4, inside the platforms' ranges
BUDGET_FLOOR_SHARE = 0.1  # budget_floor = this × the equal share of the account budget
_TOTAL_SAFETY = 1.0 - 1e-12  # a final total rescale lands strictly inside the account budget despite round-off


@dataclass(frozen=True)
class GuardrailLimits:
    """Everything the guardrails need. ref_bids, max_bids: [C]; `modifiers` the platforms' modifier ranges
    (None: no campaign has modifiers)."""

    daily_budget: float
    ref_bids: np.ndarray
    max_bids: np.ndarray
    max_step: float | None = DEFAULT_MAX_STEP
    bid_range: float = DEFAULT_BID_RANGE
    budget_floor: float | None = None  # default BUDGET_FLOOR_SHARE × daily_budget / C
    modifiers: ModifierLimits | None = None
    modifier_range: float = DEFAULT_MODIFIER_RANGE

    def __post_init__(self) -> None:
        if not self.daily_budget > 0:
            raise ValueError(f"daily_budget must be > 0, got {self.daily_budget}")
        if self.max_step is not None and not 0 <= self.max_step:
            raise ValueError(f"max_step must be >= 0 or None, got {self.max_step}")
        if not self.bid_range > 1:
            raise ValueError(f"bid_range must be > 1, got {self.bid_range}")
        if np.any(~(np.asarray(self.ref_bids) > 0)) or np.any(~(np.asarray(self.max_bids) > 0)):
            raise ValueError("reference and max bids must be > 0")
        if not self.modifier_range > 1:
            raise ValueError(f"modifier_range must be > 1, got {self.modifier_range}")
        if self.modifiers is not None and self.modifiers.n_campaigns != len(self.ref_bids):
            raise ValueError("modifier limits and bids disagree on the number of campaigns")

    @classmethod
    def from_params(
        cls,
        params: MarketParams,
        max_step: float | None = DEFAULT_MAX_STEP,
        bid_range: float = DEFAULT_BID_RANGE,
        modifier_range: float = DEFAULT_MODIFIER_RANGE,
    ) -> GuardrailLimits:
        return cls(
            daily_budget=float(params.daily_budget),
            ref_bids=np.array([c.reference_bid or c.current_bid for c in params.campaigns], dtype=float),
            max_bids=np.array([c.max_bid for c in params.campaigns], dtype=float),
            max_step=max_step,
            bid_range=bid_range,
            modifiers=ModifierLimits.from_params(params),
            modifier_range=modifier_range,
        )

    @property
    def modifier_mask(self) -> np.ndarray:
        """[C] bool: which campaigns have modifiers."""
        if self.modifiers is None:
            return np.zeros(self.n_campaigns, dtype=bool)
        return self.modifiers.enabled

    @property
    def n_blocks(self) -> int:
        return DEFAULT_HOUR_BLOCKS if self.modifiers is None else self.modifiers.n_blocks

    @property
    def n_campaigns(self) -> int:
        return len(self.ref_bids)

    @property
    def floor(self) -> float:
        return (
            self.budget_floor
            if self.budget_floor is not None
            else BUDGET_FLOOR_SHARE * self.daily_budget / self.n_campaigns
        )


@dataclass(frozen=True)
class ActionCodec:
    """Maps between actions and *normalised* settings: budget shares of the account budget, bid multipliers of
    the reference bid, and (for the campaigns in `modifiers`) device and hour-block modifiers. Baselines work in
    these units, so they need neither the budget nor the reference bids. `modifiers`: one flag per campaign
    (None: no campaign has modifiers; the action is then 2C long)."""

    n_campaigns: int
    bid_range: float = DEFAULT_BID_RANGE
    modifiers: tuple[bool, ...] | None = None
    n_blocks: int = DEFAULT_HOUR_BLOCKS
    modifier_range: float = DEFAULT_MODIFIER_RANGE

    @classmethod
    def for_schema(cls, schema, bid_range: float = DEFAULT_BID_RANGE, modifier_range: float = DEFAULT_MODIFIER_RANGE):
        """The codec of an `ObservationSchema`'s action layout."""
        return cls(schema.n_campaigns, bid_range, tuple(schema.modifiers), schema.hour_blocks, modifier_range)

    @property
    def mask(self) -> np.ndarray:
        return np.zeros(self.n_campaigns, dtype=bool) if self.modifiers is None else np.asarray(self.modifiers)

    @property
    def action_size(self) -> int:
        return 2 * self.n_campaigns + int(self.mask.sum()) * (len(DEVICES) + self.n_blocks)

    def encode(
        self,
        budget_shares: np.ndarray,
        bid_mults: np.ndarray,
        device: np.ndarray | None = None,
        hours: np.ndarray | None = None,
    ) -> np.ndarray:
        """[..., C] shares (fraction of the account budget) and multipliers, device modifiers [..., C, D] and
        hour-block modifiers [..., C, B] (None: 1) → action [..., action_size] (float64, clipped)."""
        shares = np.asarray(budget_shares, dtype=float)
        mults = np.maximum(np.asarray(bid_mults, dtype=float), 1e-12)
        shares, mults = np.broadcast_arrays(shares, mults)
        a_budget = 2.0 * shares - 1.0
        a_bid = np.log(mults) / np.log(self.bid_range)
        parts = [a_budget, a_bid]
        mask = self.mask
        if mask.any():
            batch = shares.shape[:-1]
            dev = np.ones((*batch, self.n_campaigns, len(DEVICES))) if device is None else device
            hrs = np.ones((*batch, self.n_campaigns, self.n_blocks)) if hours is None else hours
            dev = np.broadcast_to(np.maximum(np.asarray(dev, dtype=float), 1e-12), (*batch, self.n_campaigns, 3))
            hrs = np.broadcast_to(
                np.maximum(np.asarray(hrs, dtype=float), 1e-12), (*batch, self.n_campaigns, self.n_blocks)
            )
            mods = np.concatenate([dev, hrs], axis=-1)[..., mask, :]  # [..., S, D + B]
            parts.append((np.log(mods) / np.log(self.modifier_range)).reshape(*batch, -1))
        return np.clip(np.concatenate(parts, axis=-1), -1.0, 1.0)

    def decode(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Action [..., 2C + …] → (budget shares, bid multipliers) as targets, before guardrails (NaN stays NaN)."""
        a = _clean(np.asarray(action, dtype=float))
        c = self.n_campaigns
        return (a[..., :c] + 1.0) / 2.0, self.bid_range ** a[..., c : 2 * c]

    def decode_modifiers(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Action → target (device [..., C, D], hour blocks [..., C, B]) modifiers: 1 for campaigns without
        modifiers, NaN where the action is NaN (keep the modifier in force)."""
        a = _clean(np.asarray(action, dtype=float))
        batch = a.shape[:-1]
        n_mod = len(DEVICES) + self.n_blocks
        out = np.ones((*batch, self.n_campaigns, n_mod))
        mask = self.mask
        if mask.any():
            part = a[..., 2 * self.n_campaigns :].reshape(*batch, int(mask.sum()), n_mod)
            out[..., mask, :] = self.modifier_range**part
        return out[..., : len(DEVICES)], out[..., len(DEVICES) :]


def _clean(a: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1] with ±inf mapped to the bounds; NaN is kept (callers decide what it means)."""
    return np.clip(np.where(np.isposinf(a), 1.0, np.where(np.isneginf(a), -1.0, a)), -1.0, 1.0)


def encode_settings(budgets: np.ndarray, bids: np.ndarray, limits: GuardrailLimits) -> np.ndarray:
    """The action whose targets are these budgets and bids (currency), clipped to the action space."""
    codec = ActionCodec(limits.n_campaigns, limits.bid_range)
    return codec.encode(np.asarray(budgets, dtype=float) / limits.daily_budget, np.asarray(bids) / limits.ref_bids)


def apply_guardrails(
    action: np.ndarray, budgets: np.ndarray, bids: np.ndarray, limits: GuardrailLimits
) -> tuple[np.ndarray, np.ndarray]:
    """Applied (budgets, bids) [..., C] for the budget-and-bid part of an action ([..., 2C]; a longer action's
    modifier part is ignored here, see `rl.env.settings.apply_action`) given the settings in force [..., C]."""
    c = limits.n_campaigns
    action = np.asarray(action, dtype=float)
    if action.shape[-1] < 2 * c:
        raise ValueError(f"action must have at least {2 * c} values in its last axis, got shape {action.shape}")
    action = action[..., : 2 * c]
    cur_b = np.nan_to_num(np.maximum(np.asarray(budgets, dtype=float), 0.0), nan=0.0, posinf=limits.daily_budget)
    cur_p = np.asarray(bids, dtype=float)
    cur_p = np.where(np.isfinite(cur_p) & (cur_p > 0), cur_p, limits.ref_bids)
    cur_b, cur_p = np.broadcast_to(cur_b, action.shape[:-1] + (c,)), np.broadcast_to(cur_p, action.shape[:-1] + (c,))
    a = _clean(action)
    big_b = limits.daily_budget

    # 1–2. targets; NaN keeps the current value; the targets' total fits the account budget
    tgt_b = np.where(np.isnan(a[..., :c]), cur_b, (a[..., :c] + 1.0) / 2.0 * big_b)
    tgt_p = np.where(np.isnan(a[..., c:]), cur_p, limits.ref_bids * limits.bid_range ** np.nan_to_num(a[..., c:]))
    tgt_b = _fit_total(tgt_b, np.zeros_like(tgt_b), big_b)

    # 3. step bands
    if limits.max_step is not None:
        width = limits.max_step * np.maximum(cur_b, limits.floor)
        lo_b, hi_b = np.maximum(cur_b - width, 0.0), cur_b + width
        new_b = np.clip(tgt_b, lo_b, hi_b)
        new_p = np.clip(tgt_p, cur_p * (1.0 - limits.max_step), cur_p * (1.0 + limits.max_step))
    else:
        lo_b = np.zeros_like(tgt_b)
        new_b, new_p = tgt_b, tgt_p

    # 4. the total again, respecting the lower band edges when possible
    new_b = _fit_total(new_b, lo_b, big_b)

    # 5. hard limits
    new_p = np.minimum(new_p, limits.max_bids)
    new_p = np.maximum(new_p, 1e-9)  # bids stay > 0 (the band keeps them there; this only guards round-off)
    return np.maximum(new_b, 0.0), new_p


def _fit_total(values: np.ndarray, lower: np.ndarray, total: float) -> np.ndarray:
    """Shrink rows whose sum exceeds `total`: move each value towards `lower` by a common fraction; if even the
    lower values exceed the total, scale everything proportionally."""
    s = values.sum(axis=-1, keepdims=True)
    over = s > total
    if not np.any(over):
        return values
    s_lo = lower.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(s - s_lo > 0, (total - s_lo) / (s - s_lo), 0.0)
        towards_lower = lower + np.clip(theta, 0.0, 1.0) * (values - lower)
        proportional = values * (total / s)
    out = np.where(over, np.where(s_lo <= total, towards_lower, proportional), values)
    # round-off: a row may still exceed the total by an ulp or two
    s2 = out.sum(axis=-1, keepdims=True)
    return np.where(s2 > total, out * (total / s2) * _TOTAL_SAFETY, out)
