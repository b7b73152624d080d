"""`BatchedBiddingVecEnv`: M markets in one Stable-Baselines3 `VecEnv`, each day resolved by ONE engine call.

    venv = BatchedBiddingVecEnv(params, n_envs=16, config=EnvConfig(), params_sampler=None, seed=0)
    obs = venv.reset()                              # float32 [M, D]
    obs, rewards, dones, infos = venv.step(actions) # actions [M, 2C]

Design (documented constraint): the engine draws a day for many markets with one `MarketParams` and one date, so
the M markets of a reset cycle share the params (one `params_sampler` draw per cycle), the start date and the
episode length, and differ in their random numbers (market m uses generator [market seed, m, date]) and, with
`EnvConfig.volume_scale_range`, in their volume. All M episodes therefore end on the same step; SB3's auto-reset
contract holds per env: on that step `dones` is all True, each `infos[i]` has "terminal_observation" (the last
observation of the finished episode), "TimeLimit.truncated" (True only when the settle period is shorter than the
longest lag, i.e. conversions are still in flight; see `BiddingEnv`) and "episode_summary", and the returned
observations are the first ones of the next cycle (a new setup drawn from the env's generator).

Market m of a cycle is the same simulation as `BiddingEnv` reset with options {"params", "start_date",
"market_seed"} of that cycle as its market 0 when m = 0 (tests hold the two to identical observations and rewards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from stable_baselines3.common.vec_env import VecEnv

from rl.env.core import EnvConfig, MarketBatch, ParamsSampler
from rl.env.env import make_spaces, setup_from_options
from rl.env.guardrails import ActionCodec
from rl.env.schema import ObservationSchema
from rl.market.params import MarketParams

Observations = npt.NDArray[np.float32]
"""[M, D] float32: one observation row per market (D = `schema.obs_size`)."""
StepResult = tuple[Observations, npt.NDArray[np.float32], npt.NDArray[np.bool_], list[dict[str, Any]]]
"""(observations [M, D] float32, rewards [M] float32, dones [M] bool, infos: one dict per market): SB3's
`VecEnvStepReturn` for array observations."""


class BatchedBiddingVecEnv(VecEnv):
    """M markets stepped in lockstep (see module docstring)."""

    def __init__(
        self,
        params: MarketParams,
        n_envs: int = 16,
        config: EnvConfig | None = None,
        schema: ObservationSchema | None = None,
        params_sampler: ParamsSampler | None = None,
        seed: int | None = None,
    ):
        self.render_mode = None
        self.schema = ObservationSchema.from_registry() if schema is None else schema
        self.base_params = self.schema.align(params)
        self.config = EnvConfig() if config is None else config
        self.params_sampler = params_sampler
        self.codec = ActionCodec.for_schema(self.schema, self.config.bid_range, self.config.modifier_range)
        self.sim = MarketBatch(self.schema, self.config, n_envs)
        self._rng = np.random.default_rng(seed)
        self._actions: np.ndarray | None = None
        # False: a finished cycle is not followed by a new one until `follow()` hands one over (a paired twin)
        self.auto_restart = True
        self._finished = False
        obs_space, act_space = make_spaces(self.schema)
        super().__init__(n_envs, obs_space, act_space)

    # -- VecEnv API -------------------------------------------------------------------------------------------
    def reset(self) -> Observations:
        """Start a new cycle and return its first observations [M, D]. A seed from `seed()` (SB3 sets one per env;
        the first is used) re-seeds the cycle generator; options from `set_options` (the first env's dict) override
        the drawn setup. Each market's reset info (date, market seed, market index) is in `reset_infos`."""
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        options = self._options[0] if self._options else {}
        obs = self._start(options)
        self._finished = False
        self._reset_seeds()
        self._reset_options()
        return obs

    def _start(self, options: dict[str, Any] | None = None) -> Observations:
        setup = setup_from_options(
            options, self._rng, self.base_params, self.config, self.num_envs, self.params_sampler
        )
        obs = self.sim.start(setup)
        info = {"date": self.sim.date.isoformat(), "market_seed": setup.market_seed}
        self.reset_infos = [dict(info, market=m) for m in range(self.num_envs)]
        return obs

    def follow(self, other: BatchedBiddingVecEnv) -> Observations:
        """Continue with a copy of `other`'s markets as they stand (its setup, warm-up history and day), and return
        their observation. A twin that follows the learner's environment at every new cycle skips simulating the
        same warm-up a second time."""
        if other.num_envs != self.num_envs or other.schema.to_json() != self.schema.to_json():
            raise ValueError("follow() needs an environment with the same number of markets and schema")
        self.sim = other.sim.fork()
        self.reset_infos = [dict(i) for i in other.reset_infos]
        self._finished = False
        return self.sim.observe()

    def step(self, actions: npt.ArrayLike) -> StepResult:
        """Decide one day in every market: actions [M, A] (A = `schema.action_size`, in [-1, 1]; reshaped from any
        array of M × A numbers). Returns (observations [M, D] float32, rewards [M] float32, dones [M] bool, infos:
        M dicts); on the cycle's last step see the module docstring (auto-reset, "terminal_observation")."""
        return super().step(actions)  # step_async, then step_wait (SB3's VecEnv)

    def step_async(self, actions: npt.ArrayLike) -> None:
        if self._finished:
            raise RuntimeError("the cycle has finished and auto_restart is off: call follow() (or reset()) first")
        self._actions = np.asarray(actions, dtype=float).reshape(self.num_envs, self.schema.action_size)

    def step_wait(self) -> StepResult:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, rewards, done, infos = self.sim.step(self._actions)
        self._actions = None
        dones = np.full(self.num_envs, done, dtype=bool)
        if done:
            for m, info in enumerate(infos):
                info["terminal_observation"] = obs[m]
                info["TimeLimit.truncated"] = not self.sim.complete
            if self.auto_restart:
                obs = self._start()
            else:
                self._finished = True
        else:
            for info in infos:
                info["TimeLimit.truncated"] = False
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        pass

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    # -- for evaluators ---------------------------------------------------------------------------------------
    def oracle_actions(self, budget_step: float = 5.0) -> np.ndarray:
        """[M, 2C] actions targeting each market's clairvoyant settings for the day about to be decided."""
        return self.sim.oracle_actions(budget_step)

    def informed_actions(self, replicates: int = 8, budget_step: float = 5.0) -> np.ndarray:
        """[M, 2C] actions targeting each market's informed-oracle settings (true parameters, not today's draws)."""
        return self.sim.informed_actions(replicates, budget_step)

    def oracle_results(self, budget_step: float = 5.0) -> Sequence:
        return [self.sim.oracle_result(m, budget_step) for m in range(self.num_envs)]
