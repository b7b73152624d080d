"""`BiddingEnv`: one market as a gymnasium environment; a step is one day, an episode several weeks.

    env = BiddingEnv(params, config=EnvConfig(episode_days=28), params_sampler=None)
    obs, info = env.reset(seed=0)                  # obs: float32 [schema.obs_size]
    obs, reward, terminated, truncated, info = env.step(action)   # action: float32 [2C] in [-1, 1]

Observation, action, guardrails and reward are described in `rl.env.schema`, `rl.env.observation`,
`rl.env.guardrails` and `rl.env.reward`. After `episode_days` decided days the last step also runs the settle
period (campaigns paused while late conversions arrive; `EnvConfig.settle_days`). If it covers the longest lag
the score is final and the episode *terminates*; with a shorter settle period conversions are still in flight and
the episode is *truncated* (learners bootstrap). The final step's info has "episode_summary" with the true score.
reset(options=...) accepts "start_date" (datetime.date), "market_seed" (int), "params" (MarketParams) and
"volume_scale" ([1] or [1, C] array) to replay a specific episode (e.g. the same days under different policies: common
random numbers).
Domain randomisation: `params_sampler(rng) -> MarketParams` is called at every reset with the env's generator.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from rl.env.core import EnvConfig, EpisodeSetup, MarketBatch, ParamsSampler
from rl.env.guardrails import ActionCodec
from rl.env.observation import OBS_BOUND
from rl.env.schema import ObservationSchema
from rl.market.params import MarketParams
from rl.policies.oracle import OracleResult


def make_spaces(schema: ObservationSchema) -> tuple[spaces.Box, spaces.Box]:
    obs = spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(schema.obs_size,), dtype=np.float32)
    act = spaces.Box(-1.0, 1.0, shape=(schema.action_size,), dtype=np.float32)
    return obs, act


def setup_from_options(
    options: dict | None, rng: np.random.Generator, params: MarketParams, config: EnvConfig, n_markets: int, sampler
) -> EpisodeSetup:
    """Draw an episode setup, then let `options` override any of its parts."""
    setup = EpisodeSetup.sample(rng, params, config, n_markets, sampler)
    options = dict(options or {})
    unknown = set(options) - {"start_date", "market_seed", "params", "volume_scale"}
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)}")
    return EpisodeSetup(
        params=options.get("params", setup.params),
        start_date=options.get("start_date", setup.start_date),
        market_seed=int(options.get("market_seed", setup.market_seed)),
        volume_scale=options.get("volume_scale", setup.volume_scale),
    )


class BiddingEnv(gym.Env):
    """One market (see module docstring). `schema` defaults to the campaign registry's (`from_registry()`)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        params: MarketParams,
        config: EnvConfig | None = None,
        schema: ObservationSchema | None = None,
        params_sampler: ParamsSampler | None = None,
    ):
        super().__init__()
        self.schema = ObservationSchema.from_registry() if schema is None else schema
        self.base_params = self.schema.align(params)  # fail fast on a market the registry does not match
        self.config = EnvConfig() if config is None else config
        self.params_sampler = params_sampler
        self.observation_space, self.action_space = make_spaces(self.schema)
        self.codec = ActionCodec.for_schema(self.schema, self.config.bid_range, self.config.modifier_range)
        self.sim = MarketBatch(self.schema, self.config, 1)
        self.render_mode = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """(observation [schema.obs_size] float32, info with "date" and "market_seed"); `options` as in the module
        docstring."""
        super().reset(seed=seed)
        setup = setup_from_options(options, self.np_random, self.base_params, self.config, 1, self.params_sampler)
        obs = self.sim.start(setup)
        info = {"date": self.sim.date.isoformat(), "market_seed": setup.market_seed}
        return obs[0], info

    def step(self, action: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """One day: action [schema.action_size] in [-1, 1] → (observation [schema.obs_size] float32, reward,
        terminated, truncated, info)."""
        obs, reward, done, infos = self.sim.step(np.asarray(action, dtype=float)[None])
        terminated = bool(done and self.sim.complete)
        return obs[0], float(reward[0]), terminated, bool(done and not terminated), infos[0]

    # -- for evaluators ------------------------------------------------------------------------------------------
    def oracle_result(self, budget_step: float = 5.0) -> OracleResult:
        """The clairvoyant best budgets and bids for the day about to be decided (hindsight: uses today's draws)."""
        return self.sim.oracle_result(0, budget_step)

    def oracle_action(self, budget_step: float = 5.0) -> np.ndarray:
        """[2C] action targeting the oracle's settings (still subject to the guardrails)."""
        return self.sim.oracle_actions(budget_step)[0]

    def oracle_actions(self, budget_step: float = 5.0) -> np.ndarray:
        """[1, 2C] (the batched form, so `OraclePolicy` works on both environments)."""
        return self.sim.oracle_actions(budget_step)

    def informed_actions(self, replicates: int = 8, budget_step: float = 5.0) -> np.ndarray:
        """[1, 2C] informed-oracle actions (true parameters, not today's draws), for `InformedOraclePolicy`."""
        return self.sim.informed_actions(replicates, budget_step)
