"""Training a bidding policy with Stable-Baselines3 on the batched environment.

    result = train(params, TrainConfig(total_timesteps=50_000), out_dir, params_sampler=sampler)
    result.model_path, result.curve                        # model.zip, [{"timesteps", "score", "return"}, ...]
    train(params, cfg, out_dir, resume_from=latest_checkpoint(out_dir))  # continues the step count

PPO by default, SAC selectable (`TrainConfig.algo`); torch runs single-threaded; a progress bar (tqdm/rich), TensorBoard
logs under `out_dir/tensorboard`, checkpoints every `checkpoint_every` timesteps under `out_dir/checkpoints`, seeded
(the model, the environment's cycle generator and the demonstrations all derive from `TrainConfig.seed`).

Optional warm start (`bc_cycles` > 0): behaviour cloning of the clairvoyant oracle. The oracle's per-day settings
(hindsight; `BatchedBiddingVecEnv.oracle_results`), turned into a teacher a causal policy can follow
(`teacher_actions`: its allocation of the whole budget; bids only where it spends), are recorded with the
observations they were decided from while the teacher drives the training environment; the actor is fit to them by
weighted least squares and (PPO) the critic to the discounted returns of those demonstrations; RL then fine-tunes.
The oracle is only a teacher during training: the trained policy acts from observations alone.

Alternatively (`teacher` = a baseline name, e.g. "online_lp"): the teacher is a rule-based baseline that acts on the
same observations as the policy, so imitation transfers. Demonstrations are collected DAgger-style
(`dagger_rounds`): the first round is driven by the teacher, later rounds by the student fitted so far, every
observation labelled with the teacher's action; `teacher_bid_mult` holds the teacher's bids at a multiple of the
reference. With `select_seeds` (validation seeds, never evaluation seeds) the warm-started model and the RL
fine-tuned one are both scored and the better is kept (RL with a few thousand steps can make it worse).

Residual learning (`residual_base` = a baseline without per-market memory, e.g. "online_lp"): the model learns a
correction of that baseline's actions (`rl.policies.residual`) on a `ResidualVecEnv`; its action head starts at
zero, so before any learning it acts exactly as the baseline, and no imitation is needed. The baseline's name,
hyperparameters and the correction's scale are saved inside the model file; `SB3Policy` applies them on load.
With `select_seeds` the zero-correction start and the trained correction are compared as above.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import configure_logger

from rl.env import BatchedBiddingVecEnv, ObservationSchema
from rl.market.params import MarketParams
from rl.policies.base import run_episode
from rl.policies.residual import ResidualSpec, ResidualVecEnv, attach_spec
from rl.policies.sb3 import SB3Policy
from rl.training.callbacks import LearningCurve, WallClockLimit
from rl.training.config import ALGOS, TENSORBOARD_PIN, TrainConfig
from rl.training.imitation import behaviour_clone, collect_demonstrations, distill
from rl.training.paired import FrozenPolicy, PairedVecEnv


@dataclass
class TrainResult:
    model: BaseAlgorithm
    model_path: Path
    curve: list[dict]  # per finished reset cycle: timesteps, mean true score, mean return
    timesteps: int
    wall_s: float
    schema: ObservationSchema
    config: TrainConfig
    bc: dict | None = None
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "model_path": str(self.model_path),
            "timesteps": self.timesteps,
            "wall_s": round(self.wall_s, 2),
            "algo": self.config.algo,
            "config": asdict(self.config),
            "bc": self.bc,
            "stopped_early": self.stopped_early,
            "curve": self.curve,
            "extra": self.extra,
        }


def make_venv(
    params: MarketParams,
    config: TrainConfig,
    schema: ObservationSchema | None = None,
    params_sampler: Callable | None = None,
    seed: int | None = None,
    engine: str = "full",
) -> BatchedBiddingVecEnv:
    """The batched environment of `config`; `engine` "full" unless the caller trains (`TrainConfig.engine`)."""
    return BatchedBiddingVecEnv(
        params,
        n_envs=config.n_envs,
        config=config.env_config(engine),
        schema=schema,
        params_sampler=params_sampler,
        seed=config.seed if seed is None else seed,
    )


def build_model(config: TrainConfig, venv, tensorboard_dir: Path | None) -> BaseAlgorithm:
    common = dict(seed=config.seed, device="cpu", verbose=0, learning_rate=config.learning_rate, gamma=config.gamma)
    tb = None if tensorboard_dir is None else str(tensorboard_dir)
    if config.algo == "ppo":
        return PPO(
            "MlpPolicy",
            venv,
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            ent_coef=config.ent_coef,
            policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init},
            tensorboard_log=tb,
            **common,
        )
    return SAC(
        "MlpPolicy",
        venv,
        batch_size=config.batch_size,
        learning_starts=min(config.n_envs * config.episode_days, config.total_timesteps),
        policy_kwargs={"net_arch": list(config.net_arch)},
        tensorboard_log=tb,
        **common,
    )


def _tensorboard_dir(config: TrainConfig, out_dir: Path) -> Path | None:
    if not config.tensorboard:
        return None
    try:
        import tensorboard  # noqa: F401 -- optional: imported only to say it is missing
    except ImportError:
        raise ImportError(
            f"TrainConfig.tensorboard=True needs the tensorboard package ({TENSORBOARD_PIN}); install it or set "
            "tensorboard=False"
        ) from None
    return out_dir / "tensorboard"


def sb3_logger(tensorboard_dir: Path | None, tb_log_name: str = "", reset_num_timesteps: bool = True) -> Logger:
    """The logger a model gets before it learns (`model.set_logger`): TensorBoard event files under
    `tensorboard_dir/<tb_log_name>_<n>` (the run directory SB3 itself picks), or, without TensorBoard, a logger with
    no folder that writes nothing. Left to itself, SB3 configures `learn` without TensorBoard with
    `configure(folder=None)`, which creates an empty `SB3-<time>` directory in the system temp dir every time."""
    if tensorboard_dir is None:
        return Logger(folder=None, output_formats=[])
    return configure_logger(0, str(tensorboard_dir), tb_log_name, reset_num_timesteps)


# -- behaviour cloning warm start ---------------------------------------------------------------------------------
def mean_score(model: BaseAlgorithm, venv: BatchedBiddingVecEnv, seeds) -> float:
    """Mean true episode score of the deterministic `model` on `venv` over `seeds` (validation, not evaluation)."""
    policy = SB3Policy(model)
    return float(np.mean([run_episode(policy, venv, s).scores.mean() for s in seeds]))


def start_as_base(model: BaseAlgorithm) -> None:
    """Zero the actor's output layer, so a residual model's deterministic correction starts at exactly zero (the
    policy starts as its baseline) while gradients still reach the layer."""
    head = model.policy.action_net if isinstance(model, PPO) else model.actor.mu
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()


# -- the training run -----------------------------------------------------------------------------------------------
def latest_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint with the most timesteps under `out_dir/checkpoints`, if any."""
    found = []
    for p in (Path(out_dir) / "checkpoints").glob("model_*_steps.zip"):
        m = re.fullmatch(r"model_(\d+)_steps\.zip", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def load_model(path: Path, algo: str, venv=None) -> BaseAlgorithm:
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r} for model {path} (known: {sorted(ALGOS)})")
    if not Path(path).exists():
        raise FileNotFoundError(f"model file not found: {path}")
    return ALGOS[algo].load(str(path), env=venv, device="cpu")


def train(
    params: MarketParams,
    config: TrainConfig,
    out_dir: Path,
    params_sampler: Callable | None = None,
    schema: ObservationSchema | None = None,
    resume_from: Path | None = None,
) -> TrainResult:
    """Train (or resume) a policy; writes out_dir/model.zip and out_dir/training.json. With `resume_from` the model
    continues from that checkpoint, counting steps on from its `num_timesteps`, up to `total_timesteps` in all."""
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    base_env = make_venv(params, config, schema, params_sampler, engine=config.engine)
    spec = None
    if config.residual_base is not None:
        spec = ResidualSpec(
            base=config.residual_base,
            scale=config.residual_scale,
            schema_json=base_env.schema.to_json(),
            bid_range=base_env.codec.bid_range,
            kwargs=dict(config.residual_kwargs),
        )
    venv = base_env if spec is None else ResidualVecEnv(base_env, spec)
    if config.paired:  # the twin gets the same seed, params sampler and schema: the same markets and draws
        twin = make_venv(params, config, base_env.schema, params_sampler, engine=config.engine)
        # the reference: the residual base, or (set below, once it exists) a frozen copy of the warm start
        venv = PairedVecEnv(venv, twin, spec.baseline() if spec is not None else None)
    tb_dir = _tensorboard_dir(config, out_dir)
    bc = None
    if resume_from is not None:
        model = load_model(Path(resume_from), config.algo, venv)
        if tb_dir is not None:
            model.tensorboard_log = str(tb_dir)
    else:
        model = build_model(config, venv, tb_dir)
        if spec is not None:
            start_as_base(model)
            attach_spec(model, spec)
        elif config.bc_cycles > 0 and config.teacher != "oracle":
            teach_cfg = dataclasses.replace(config, n_envs=config.dagger_envs)
            demo_env = make_venv(
                params, teach_cfg, venv.schema, params_sampler, seed=config.seed + 7919, engine=config.engine
            )
            deadline = None if config.max_wall_s is None else start + config.dagger_share * config.max_wall_s
            bc = distill(model, demo_env, config, deadline)
            bc["collect_and_fit_s"] = round(time.perf_counter() - start, 2)
            if config.paired:  # RL is rewarded for what it adds to the distilled student (a frozen copy)
                venv.reference = FrozenPolicy(copy.deepcopy(model.policy), name="warm_start")
        elif config.bc_cycles > 0:
            demo_env = make_venv(params, config, venv.schema, params_sampler, seed=config.seed + 7919)
            obs, acts, weights, rets = collect_demonstrations(
                demo_env,
                config.bc_cycles,
                config.oracle_budget_step,
                config.gamma,
                config.seed + 1,
                full_budget=config.bc_full_budget,
            )
            bc = behaviour_clone(
                model, obs, acts, weights, rets, config.bc_epochs, config.bc_learning_rate, config.seed
            )
            bc["collect_and_fit_s"] = round(time.perf_counter() - start, 2)
    curve: list[dict] = []
    callbacks: list[BaseCallback] = [LearningCurve(curve)]
    if config.checkpoint_every > 0:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(config.checkpoint_every // config.n_envs, 1),
                save_path=str(out_dir / "checkpoints"),
                name_prefix="model",
            )
        )
    select_env = warm_path = None
    warm_score = None
    if config.select_seeds and resume_from is None and (bc is not None or spec is not None):
        select_env = make_venv(params, config, venv.schema, params_sampler, seed=config.seed + 104729)
        t0 = time.perf_counter()
        warm_score = mean_score(model, select_env, config.select_seeds)
        select_s = time.perf_counter() - t0
        warm_path = out_dir / "warm_start.zip"
        model.save(str(warm_path))
    limit = None
    if config.max_wall_s is not None:
        reserve = select_s if select_env is not None else 0.0  # time to validate the fine-tuned model too
        limit = WallClockLimit(max(config.max_wall_s - (time.perf_counter() - start) - reserve, 1.0))
        callbacks.append(limit)
    remaining = config.total_timesteps - model.num_timesteps
    if remaining > 0:
        model.set_logger(sb3_logger(tb_dir, config.algo, reset_num_timesteps=resume_from is None))
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList(callbacks),
            progress_bar=config.progress_bar,
            reset_num_timesteps=resume_from is None,
            tb_log_name=config.algo,
        )
    extra: dict = {}
    if select_env is not None:
        tuned_score = mean_score(model, select_env, config.select_seeds)
        extra = {"select_warm_score": warm_score, "select_rl_score": tuned_score, "kept": "rl"}
        if tuned_score < warm_score:  # RL fine-tuning made it worse on the validation seeds: keep the warm start
            steps = model.num_timesteps
            model = load_model(warm_path, config.algo, venv)
            model.num_timesteps = steps
            extra["kept"] = "warm_start"
    model_path = out_dir / "model.zip"
    model.save(str(model_path))
    result = TrainResult(
        model=model,
        model_path=model_path,
        curve=curve,
        timesteps=int(model.num_timesteps),
        wall_s=time.perf_counter() - start,
        schema=base_env.schema,
        config=config,
        bc=bc,
        stopped_early=bool(limit is not None and limit.hit),
        extra=extra,
    )
    (out_dir / "training.json").write_text(json.dumps(result.summary(), indent=2, default=str))
    return result
