"""Paired training: every training market runs next to a twin with the same random numbers, driven by a reference
policy, and the learner is rewarded with the difference.

    env = PairedVecEnv(learner_env, twin_env, reference)     # twin_env: same params, sampler, schema and seed
    obs, reward, dones, infos = env.step(actions)            # reward = learner's − twin's, [M]
                                                             # infos[m]["reference_reward"] = the twin's

Why: a day's conversions are a few Poisson draws, so one episode's return varies by about ±10% between markets
while the policies worth telling apart differ by a few percent. The simulator draws every random number before
any action is known (common random numbers, `rl.market.draws`), so a twin fed the same seeds sees the same
visitors, clicks and conversion chances; subtracting its reward cancels most of that noise. The twin's reward
does not depend on the learner's actions, so the subtraction is a control variate: the policy gradient stays
unbiased and the ranking of policies by expected return is unchanged, only its variance drops.

The twin is stepped in lockstep. It does not simulate the warm-up history itself: at every new cycle it takes a
copy of the learner's markets as they stand after the warm-up (`BatchedBiddingVecEnv.follow`), which is the same
simulation (the warm-up runs the settings in force, whatever either policy would do) at a fraction of the cost.
Its reference policy acts on the twin's own observations and must not keep per-market memory across cycles (the
same rule as residual bases).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rl.env import BatchedBiddingVecEnv
from rl.policies.base import Policy


class FrozenPolicy:
    """An SB3 policy network as a fixed reference `Policy` (deterministic actions, no memory): a twin's driver
    that the learner's updates never touch."""

    def __init__(self, network, name: str = "frozen"):
        self.network = network
        self.name = name

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.network.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        return np.asarray(action)


class PairedVecEnv(VecEnvWrapper):
    """`venv` (the learner's environment, possibly a `ResidualVecEnv`) paired with `twin` driven by `reference`."""

    def __init__(self, venv: VecEnv, twin: BatchedBiddingVecEnv, reference: Policy | None, copy_warmup: bool = True):
        if twin.num_envs != venv.num_envs:
            raise ValueError(f"the twin has {twin.num_envs} markets, the learner's environment {venv.num_envs}")
        if twin.schema.to_json() != venv.get_attr("schema")[0].to_json():
            raise ValueError("the twin and the learner's environment must share the observation schema")
        if not isinstance(venv.unwrapped, BatchedBiddingVecEnv):
            raise TypeError(f"paired training needs a BatchedBiddingVecEnv underneath, got {type(venv.unwrapped)}")
        super().__init__(venv)
        self.twin = twin
        # copy_warmup=False: the twin simulates its own cycles and stays in step only by sharing the learner's seed,
        # params sampler and schema (the same markets, at twice the warm-up cost; kept for benchmarks.env)
        self.copy_warmup = copy_warmup
        self.twin.auto_restart = not copy_warmup
        self.reference = reference
        self._twin_obs: np.ndarray | None = None

    def seed(self, seed: int | None = None):
        if not self.copy_warmup:
            self.twin.seed(seed)
        return self.venv.seed(seed)

    def _follow(self) -> None:
        self._twin_obs = self.twin.follow(self.venv.unwrapped)
        if self.reference is not None:
            self.reference.reset(self.num_envs)

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        if self.copy_warmup:
            self._follow()
        else:
            self._twin_obs = self.twin.reset()
            if self.reference is not None:
                self.reference.reset(self.num_envs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._twin_obs is None:
            raise RuntimeError("PairedVecEnv.step_async before reset")
        if self.reference is None:
            raise RuntimeError("PairedVecEnv has no reference policy for its twin yet")
        self.venv.step_async(actions)
        self.twin.step_async(self.reference.act(self._twin_obs))

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        twin_obs, twin_rewards, twin_dones, _ = self.twin.step_wait()
        if not np.array_equal(dones, twin_dones):
            raise RuntimeError("the twin fell out of step with the learner's environment (different episode ends)")
        self._twin_obs = twin_obs
        if dones.all() and self.copy_warmup:  # the learner's environment has started its next cycle: copy it
            self._follow()
        for info, r in zip(infos, twin_rewards, strict=True):
            info["reference_reward"] = float(r)
        return obs, (rewards - twin_rewards).astype(np.float32), dones, infos
