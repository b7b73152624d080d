"""Which policy a day's plan comes from: the promoted model from the policy registry, or a named baseline (the
gate failed, nothing is promoted, an operator asked for one, or the kill switch fired), and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.bidding.plan import PlanError
from rl.env.guardrails import ActionCodec
from rl.env.schema import ObservationSchema

if TYPE_CHECKING:
    from rl.bidding.planner import Reference

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


def make_baseline(name: str, schema: ObservationSchema, codec: ActionCodec, reference_shares: np.ndarray):
    """A baseline policy by name: `static_reference` (and `static`) hold the reference settings; the others are
    `rl.policies.baselines.BASELINES` with their default hyperparameters."""
    from rl.policies.baselines import BASELINES, StaticPolicy

    if name in (SAFE_BASELINE, "static"):
        shares = np.asarray(reference_shares, dtype=float)
        if shares.sum() > 1:
            shares = shares / shares.sum()
        return StaticPolicy(schema, codec, shares=shares)
    if name not in BASELINES:
        raise PlanError(f"unknown baseline {name!r} (known: {sorted({SAFE_BASELINE, *BASELINES})})")
    return BASELINES[name](schema, codec)


def promoted_policy(con: Any, model_dir: str) -> tuple[Any | None, str | None, str | None, str | None]:
    """(policy, version, why-not, best baseline name) from the policy registry, imported lazily: a missing
    module, table or promoted model gives (None, None, reason, best baseline or None)."""
    try:
        from rl.training.registry import ModelRegistry
    except ImportError as e:
        return None, None, f"no policy registry yet (rl.training.registry cannot be imported: {e})", None
    try:
        registry = ModelRegistry(con, model_dir)
    except Exception as e:  # no table, unreadable directory: fall back and say so
        return None, None, f"policy registry unreadable ({type(e).__name__}: {e})", None
    best = None
    try:
        best = registry.best_baseline()
    except Exception:  # the best baseline is advisory; static is the default
        best = None
    try:
        entry = registry.promoted()
    except Exception as e:
        return None, None, f"policy registry unreadable ({type(e).__name__}: {e})", best
    if entry is None:
        return None, None, "no promoted model in the policy registry", best
    try:
        return registry.load_policy(entry), str(entry.version), None, best
    except Exception as e:
        return None, None, f"promoted model {getattr(entry, 'version', '?')} cannot be loaded ({e})", best


def choose_policy(
    schema: ObservationSchema,
    codec: ActionCodec,
    reference: Reference,
    daily_budget: float,
    promoted: tuple[Any | None, str | None, str | None, str | None],
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
    policy, version, reason, best = promoted
    if policy is not None and gate_failed is None:
        return PolicyChoice(policy, version, "promoted")
    why = gate_failed or reason or "no promoted model"
    name = fallback or best or SAFE_BASELINE
    return PolicyChoice(make_baseline(name, schema, codec, shares), f"baseline:{name}", "fallback", why, name)
