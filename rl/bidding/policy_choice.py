"""Which policy a day's plan comes from: the promoted model from the policy registry, or a named baseline (the
gate failed, nothing is promoted, an operator asked for one, or the kill switch fired), and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl.bidding.plan import PlanError, Reference
from rl.env.guardrails import ActionCodec
from rl.env.schema import ObservationSchema
from rl.policies.baselines import BASELINES, StaticPolicy
from rl.training.model_registry import ModelRegistry

SAFE_BASELINE = "static_reference"  # the static policy holding the reference settings


@dataclass
class PolicyChoice:
    """The policy a plan comes from: `source` is promoted | fallback | override | kill_switch; `version` is what the
    audit records (a registry version, or "baseline:<name>"); `reason` says why it is not the promoted model."""

    policy: Any
    version: str
    source: str
    reason: str | None = None
    baseline: str | None = None
    episode_days: int | None = None  # a model's episode length: the plan cuts the days into cycles of it


def make_baseline(name: str, schema: ObservationSchema, codec: ActionCodec, reference_shares: np.ndarray):
    """A baseline policy by name: `static_reference` (and `static`) hold the reference settings; the others are
    `rl.policies.baselines.BASELINES` with their default hyperparameters."""
    if name in (SAFE_BASELINE, "static"):
        shares = np.asarray(reference_shares, dtype=float)
        if shares.sum() > 1:
            shares = shares / shares.sum()
        return StaticPolicy(schema, codec, shares=shares)
    if name not in BASELINES:
        raise PlanError(f"unknown baseline {name!r} (known: {sorted({SAFE_BASELINE, *BASELINES})})")
    return BASELINES[name](schema, codec)


@dataclass(frozen=True)
class PromotedPolicy:
    """What the policy registry offers a plan: the promoted `policy` and its `version`, or None and `reason` (why
    not); `best_baseline` is the registry's best baseline name (advisory, None if unknown). Unpacks and indexes like
    the 4-tuple (policy, version, reason, best_baseline) it replaces."""

    policy: Any | None = None
    version: str | None = None
    reason: str | None = None
    best_baseline: str | None = None
    episode_days: int | None = None  # the episode length the model was evaluated (and gated) on

    def _legacy(self) -> tuple[Any, Any, Any, Any]:
        # the fields themselves: `dataclasses.astuple` would deep-copy the policy (a whole model) on every access
        return (self.policy, self.version, self.reason, self.best_baseline)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._legacy())

    def __getitem__(self, index: int) -> Any:
        return self._legacy()[index]


def promoted_policy(con: Any, model_dir: str) -> PromotedPolicy:
    """The promoted model from the policy registry; a missing table or promoted model, or one that cannot be
    loaded, gives no policy and the reason (with the best baseline when the registry names one)."""
    try:
        registry = ModelRegistry(con, model_dir)
    except Exception as e:  # no table, unreadable directory: fall back and say so
        return PromotedPolicy(reason=f"policy registry unreadable ({type(e).__name__}: {e})")
    best = None
    try:
        best = registry.best_baseline()
    except Exception:  # the best baseline is advisory; static is the default
        best = None
    try:
        entry = registry.promoted()
    except Exception as e:
        return PromotedPolicy(reason=f"policy registry unreadable ({type(e).__name__}: {e})", best_baseline=best)
    if entry is None:
        return PromotedPolicy(reason="no promoted model in the policy registry", best_baseline=best)
    try:
        days = (entry.evaluation or {}).get("episode_days")
        return PromotedPolicy(registry.load_policy(entry), str(entry.version), None, best, int(days) if days else None)
    except Exception as e:
        return PromotedPolicy(
            reason=f"promoted model {getattr(entry, 'version', '?')} cannot be loaded ({e})", best_baseline=best
        )


def choose_policy(
    schema: ObservationSchema,
    codec: ActionCodec,
    reference: Reference,
    daily_budget: float,
    promoted: PromotedPolicy,
    gate_failed: str | None = None,
    override: str | None = None,
    fallback: str | None = None,
) -> PolicyChoice:
    """The promoted policy unless the gate failed or there is none; then `fallback`, else the registry's best
    baseline, else the static reference settings. `override` (a baseline name) wins over everything."""
    shares = reference.budgets / daily_budget
    if override:
        return PolicyChoice(
            make_baseline(override, schema, codec, shares), f"baseline:{override}", "override", "asked for", override
        )
    if promoted.policy is not None and gate_failed is None:
        return PolicyChoice(promoted.policy, promoted.version, "promoted", episode_days=promoted.episode_days)
    why = gate_failed or promoted.reason or "no promoted model"
    name = fallback or promoted.best_baseline or SAFE_BASELINE
    return PolicyChoice(make_baseline(name, schema, codec, shares), f"baseline:{name}", "fallback", why, name)
