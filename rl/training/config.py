"""The training run's configuration (`TrainConfig`): a leaf the trainer (`rl.training.train`), the warm start
(`rl.training.imitation`) and the assets' run config (`assets.learning.PolicyTrainingConfig`) all import."""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from rl.env import EnvConfig
from rl.env.core import ENGINES
from rl.policies.baselines import BASELINES
from rl.policies.residual import RESIDUAL_BASES

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}
TENSORBOARD_PIN = "tensorboard==2.21.0"


@dataclass(frozen=True)
class TrainConfig:
    algo: str = "ppo"
    total_timesteps: int = 20_000
    n_envs: int = 8
    seed: int = 0
    episode_days: int = 14
    warmup_days: int = 28
    settle_days: int | None = None
    volume_scale_range: tuple[float, float] | None = None
    # (campaign id, low, high): that campaign's volume drawn per market and episode (`EnvConfig`; e.g. the volumes
    # the calibration only bounds from below, `rl.training.params.lower_bound_ranges`)
    campaign_volume_ranges: tuple[tuple[int, float, float], ...] = ()
    net_arch: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-4
    n_steps: int = 14  # PPO: steps per env per rollout
    batch_size: int = 56
    n_epochs: int = 5
    gamma: float = 0.98
    ent_coef: float = 0.0
    log_std_init: float = -1.0  # PPO: initial exploration noise (log sigma of the action)
    bc_cycles: int = 0  # reset cycles of oracle demonstrations for the warm start (0: none)
    bc_epochs: int = 300
    bc_learning_rate: float = 1e-3
    oracle_budget_step: float = 25.0
    bc_full_budget: bool = True  # teacher = the oracle's allocation of the whole budget (see `teacher_actions`)
    # DAgger's fit: a small budget's error weighs as the error of log(share + this floor), never less than the
    # share's own error (`imitation.budget_weights`); None: as the share's own error
    bc_budget_floor: float | None = 0.04
    # "oracle", or a baseline name (rl.policies.baselines.BASELINES): a causal teacher acting on the same
    # observations as the policy (imitation transfers), labelling states the student itself visits (DAgger)
    teacher: str = "oracle"
    teacher_kwargs: tuple[tuple[str, float], ...] = ()  # the baseline teacher's hyperparameters
    teacher_bid_mult: float | None = None  # baseline teacher: hold every bid at this × the reference bid
    teacher_tune: bool = False  # grid-search the baseline teacher's hyperparameters on `select_seeds` first
    dagger_rounds: int = 2  # baseline teacher: rounds of collection (the first driven by the teacher)
    dagger_envs: int = 4  # markets per teaching cycle (each cycle draws one market: fewer markets, more draws)
    dagger_share: float = 0.6  # of max_wall_s: the teacher's labelling stops after this share (rounds end early)
    # residual learning (rl.policies.residual): the model learns a correction of this baseline's actions instead of
    # the actions themselves; it starts as exactly the baseline (zeroed action head) and no warm start is needed
    residual_base: str | None = None
    residual_kwargs: tuple[tuple[str, float], ...] = ()  # the residual base's hyperparameters
    residual_scale: float = 0.3  # model action 1 moves the baseline's action by this much
    # paired training (rl.training.paired): each training market runs beside a twin with the same random numbers
    # driven by the residual base; the reward is the difference (needs residual_base)
    paired: bool = False
    select_seeds: tuple[int, ...] = ()  # validation seeds: keep the warm-started model if RL made it worse
    checkpoint_every: int = 0  # timesteps between checkpoints (0: only the final model)
    progress_bar: bool = True
    tensorboard: bool = True
    max_wall_s: float | None = None  # stop learning after this many seconds (the model so far is kept)
    # the simulator the learner trains in: "fast" (bid landscapes, `rl.market.fast`) or "full" (the opportunity-level
    # engine). Only the training environments use it; every evaluation and validation runs the full engine.
    engine: str = "fast"

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {sorted(ALGOS)}, got {self.algo!r}")
        if self.total_timesteps < 0:  # 0: no reinforcement learning, the starting model (warm start or residual)
            raise ValueError(f"total_timesteps must be >= 0, got {self.total_timesteps}")
        for name in ("n_envs", "episode_days", "n_steps", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.bc_cycles < 0 or self.checkpoint_every < 0:
            raise ValueError("bc_cycles and checkpoint_every must be >= 0")
        if self.teacher not in ("oracle", "ceiling"):
            if self.teacher not in BASELINES:
                raise ValueError(
                    f"teacher must be 'oracle', 'ceiling' or one of {sorted(BASELINES)}, got {self.teacher!r}"
                )
        if self.residual_base is not None:
            if self.residual_base not in RESIDUAL_BASES:
                raise ValueError(f"residual_base must be one of {list(RESIDUAL_BASES)}, got {self.residual_base!r}")
            if self.bc_cycles > 0:
                raise ValueError("a residual model starts as its baseline: set bc_cycles=0 with residual_base")
        elif self.paired and not (self.bc_cycles > 0 and self.teacher != "oracle"):
            raise ValueError(
                "paired training compares with a fixed reference: the residual base (set residual_base) or the "
                "warm start distilled from a teacher (set bc_cycles > 0 with teacher 'ceiling' or a baseline)"
            )
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.bc_budget_floor is not None and not self.bc_budget_floor > 0:
            raise ValueError(f"bc_budget_floor must be > 0 or None, got {self.bc_budget_floor}")
        if self.dagger_rounds < 1:
            raise ValueError(f"dagger_rounds must be >= 1, got {self.dagger_rounds}")
        if not 0 < self.dagger_share <= 1:
            raise ValueError(f"dagger_share must be in (0, 1], got {self.dagger_share}")

    def env_config(self, engine: str = "full") -> EnvConfig:
        return EnvConfig(
            episode_days=self.episode_days,
            warmup_days=self.warmup_days,
            settle_days=self.settle_days,
            volume_scale_range=self.volume_scale_range,
            campaign_volume_ranges=self.campaign_volume_ranges,
            engine=engine,
        )
