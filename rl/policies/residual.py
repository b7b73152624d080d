"""Residual policies: a learned correction on top of a rule-based baseline.

    action = clip(base.act(obs) + scale · model_action, -1, 1)        # all [n_envs, 2C]

The learner starts from the baseline's behaviour instead of having to rediscover it (residual policy learning,
Silver et al. 2018; Johannink et al. 2019): with a zero correction the policy *is* the baseline, and reinforcement
learning only has to find where deviating from it pays. Imitation (behaviour cloning of the same baseline) reaches
the baseline only approximately and loses a few percent of the score on the way; a residual loses nothing.

The correction model is an ordinary SB3 model. What it is a correction *of* travels inside the model file
(`ResidualSpec`, saved as the model attribute `gaelp_residual`), so a model from the registry acts the same way
wherever it is loaded, with no side file to lose.

Only baselines that act on the observation alone qualify (`RESIDUAL_BASES`): the training environment resets
markets one cycle at a time, and a baseline with per-market memory would carry state across them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rl.env.guardrails import ActionCodec
from rl.env.schema import ObservationSchema
from rl.policies.baselines import BASELINES, Baseline

RESIDUAL_BASES = ("online_lp", "proportional", "static")
ATTRIBUTE = "gaelp_residual"  # the model attribute SB3 saves into (and restores from) the model zip


@dataclass(frozen=True)
class ResidualSpec:
    """What a residual model corrects: the baseline `base` with hyperparameters `kwargs`, the correction's `scale`
    (model action 1 moves the baseline's action by `scale`), and the observation schema and bid range the baseline
    needs to read observations and write actions."""

    base: str
    scale: float
    schema_json: str
    bid_range: float
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.base not in RESIDUAL_BASES:
            raise ValueError(
                f"residual base must be one of {list(RESIDUAL_BASES)} (baselines without per-market memory), "
                f"got {self.base!r}"
            )
        if not 0 < self.scale <= 2:
            raise ValueError(f"residual scale must be in (0, 2], got {self.scale}")

    def baseline(self) -> Baseline:
        schema = ObservationSchema.from_json(self.schema_json)
        return BASELINES[self.base](schema, ActionCodec.for_schema(schema, self.bid_range), **self.kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ResidualSpec:
        return cls(**d)

    @property
    def label(self) -> str:
        hp = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"{self.base}({hp}) + learned correction ×{self.scale:g}"


def combine(base_action: np.ndarray, correction: np.ndarray, scale: float) -> np.ndarray:
    """The residual policy's action [n, 2C]: the baseline's plus the scaled correction, clipped to the action box."""
    return np.clip(np.asarray(base_action, dtype=float) + scale * np.asarray(correction, dtype=float), -1.0, 1.0)


def residual_spec(model) -> ResidualSpec | None:
    """The spec stored in a loaded SB3 model, or None for a plain (non-residual) model."""
    raw = getattr(model, ATTRIBUTE, None)
    if raw is None:
        return None
    return ResidualSpec.from_dict(json.loads(raw) if isinstance(raw, str) else raw)


def attach_spec(model, spec: ResidualSpec) -> None:
    """Record `spec` on `model` so that `model.save` writes it into the zip and `load` restores it."""
    setattr(model, ATTRIBUTE, json.dumps(spec.to_dict(), sort_keys=True))


class ResidualVecEnv(VecEnvWrapper):
    """The training view of a VecEnv for a residual learner: the learner's action is a correction, the wrapped
    environment receives `combine(base.act(obs), correction, scale)`. Observations and rewards pass through.

    The baseline acts on the observation the learner saw (kept from the last reset / step, which after an
    automatic reset is already the new episode's first observation)."""

    def __init__(self, venv: VecEnv, spec: ResidualSpec):
        super().__init__(venv)
        self.spec = spec
        self.base = spec.baseline()
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        self.base.reset(self.num_envs)
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._obs is None:
            raise RuntimeError("ResidualVecEnv.step_async before reset")
        self._actions = combine(self.base.act(self._obs), actions, self.spec.scale)
        self.venv.step_async(self._actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs = obs
        return obs, rewards, dones, infos
