"""A trained Stable-Baselines3 model as a `Policy` (`rl.policies.base`); apart from base.py because a residual model
carries a baseline (`rl.policies.residual` → `rl.policies.baselines` → `rl.policies.base`)."""

from __future__ import annotations

import numpy as np

from rl.policies.residual import combine, residual_spec


class SB3Policy:
    """A Stable-Baselines3 model as a `Policy` (deterministic actions by default). A residual model (one trained as
    a correction of a baseline, `rl.policies.residual`) carries its baseline in the model file; its action is the
    baseline's plus the scaled correction."""

    def __init__(self, model, deterministic: bool = True, name: str = "sb3"):
        self.model = model
        self.deterministic = deterministic
        self.name = name
        self.residual = residual_spec(model)
        self.base = None if self.residual is None else self.residual.baseline()

    def reset(self, n_envs: int) -> None:
        if self.base is not None:
            self.base.reset(n_envs)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        if self.base is None:
            return np.asarray(action)
        return combine(self.base.act(np.atleast_2d(obs)), np.atleast_2d(action), self.residual.scale).reshape(
            np.shape(action)
        )
