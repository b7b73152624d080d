"""The learning stages as plain functions (the Dagster assets in assets/learning.py only call these).

`train_policy` reads the calibration artifact (or falls back to the world file's parameters with noise, flagged),
trains with domain randomisation around it, and records the run under data_dir/models/runs/<stamp>/ with a pointer
data_dir/models/latest_training.json. `run_yardsticks` runs, in the same market and meanwhile, what the policy will
be compared with on the held-out seeds (`rl.training.yardsticks`: every tuned baseline, the informed ceiling, the
oracle and the LP bound) and records it in data_dir/models/evaluation_yardsticks.json under a key of everything the
results depend on.
`evaluate_and_register` evaluates the latest run on the same seeds beside those results (running them itself when
none match its setup), optionally also against a copy of the demo world, stores the model in the registry with its
scores and gate decision, and promotes it when the gate passes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import torch

from rl.env.schema import ObservationSchema
from rl.evaluation.evaluate import Evaluation, evaluate, run_tracked
from rl.evaluation.world import copy_world, fresh_world, world_episode
from rl.market.params import parse_market_params
from rl.policies.residual import residual_spec
from rl.policies.sb3 import SB3Policy
from rl.training.model_registry import GateDecision, ModelRegistry, RegisteredModel, gate
from rl.training.params import (
    TrainingMarket,
    lower_bound_ranges,
    make_params_sampler,
    scale_market,
    training_market,
)
from rl.training.train import TrainConfig, TrainResult, load_model, make_venv, train
from rl.training.yardsticks import EvalSettings, compute_yardsticks, yardstick_key

CALIBRATION_FILE = ("calibration", "market_calibration.json")
LATEST = "latest_training.json"
YARDSTICKS = "evaluation_yardsticks.json"


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def calibration_path(data_dir: Path) -> Path:
    return Path(data_dir).joinpath(*CALIBRATION_FILE)


@dataclass
class TrainingRun:
    result: TrainResult
    market: TrainingMarket
    run_dir: Path
    info: dict


def train_policy(
    data_dir: Path,
    world_file: Path,
    config: TrainConfig,
    market_scale: float = 1.0,
    uncertainty_scale: float = 1.0,
    schema: ObservationSchema | None = None,
    lower_bound_volumes: bool = False,
) -> TrainingRun:
    """Train a policy on the calibrated market (`training_market`), randomised by `uncertainty_scale` × the
    calibration's uncertainty and, with `lower_bound_volumes`, with the volumes the reports only bound from below
    drawn upwards (`rl.training.params`); record the run in `latest_training.json`."""
    market = training_market(calibration_path(data_dir), world_file)
    params = scale_market(market.params, market_scale)
    config = market_config(market, config, lower_bound_volumes)
    sampler = None
    if uncertainty_scale > 0:
        sampler = make_params_sampler(params, market.uncertainty, uncertainty_scale)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = models_dir(data_dir) / "runs" / stamp
    result = train(params, config, run_dir, params_sampler=sampler, schema=schema)
    (run_dir / "params.json").write_text(params.model_dump_json(indent=1))
    info = {
        "model_path": str(result.model_path),
        "run_dir": str(run_dir),
        "algo": config.algo,
        "observation_schema": result.schema.to_json(),
        "params_file": str(run_dir / "params.json"),
        "params_hash": market.params_hash,
        "trained_params_hash": params.params_hash(),
        "window": market.window,
        "source": market.source,
        "fallback": market.is_fallback,
        "market_scale": market_scale,
        "uncertainty_scale": uncertainty_scale,
        # drawn upwards in training, its yardsticks and its evaluation (rl.training.params)
        "volume_lower_bounds": [r[0] for r in config.campaign_volume_ranges],
        "timesteps": result.timesteps,
        "wall_s": round(result.wall_s, 2),
        "config": dataclasses.asdict(config),
        "curve": result.curve,
        "bc": result.bc,
        "learns": learns(result),
    }
    models_dir(data_dir).mkdir(parents=True, exist_ok=True)
    (models_dir(data_dir) / LATEST).write_text(json.dumps(info, indent=1, default=str))
    return TrainingRun(result, market, run_dir, info)


def market_config(market: TrainingMarket, config: TrainConfig, lower_bound_volumes: bool) -> TrainConfig:
    """`config` for the markets a policy of `market` trains and is judged in: with `lower_bound_volumes`, each
    volume the calibration only bounds from below is drawn per market (`lower_bound_ranges`). Training, the
    yardsticks (`run_yardsticks`) and the evaluation (`eval_config`, from the run's recorded config) all take the
    draws from it, so the gate compares the policy with the baselines in the markets it was trained for."""
    bounds = lower_bound_ranges(market) if lower_bound_volumes else ()
    return dataclasses.replace(config, campaign_volume_ranges=bounds) if bounds else config


def learns(result: TrainResult) -> str:
    """What the trained model is, in words: a correction of a named baseline, or the actions themselves (and from
    which teacher it was distilled)."""
    spec = residual_spec(result.model)
    if spec is not None:
        return spec.label
    what = "the budget, bid and modifier actions themselves"
    if not result.bc:
        return what
    teacher = result.bc.get("teacher", result.config.teacher)
    kept = (result.extra or {}).get("kept")
    tail = "" if kept is None else (", PPO fine-tuning kept" if kept == "rl" else ", PPO fine-tuning not kept")
    return f"{what}, distilled from the {teacher} (DAgger){tail}"


def latest_training(data_dir: Path) -> dict:
    path = models_dir(data_dir) / LATEST
    if not path.exists():
        raise FileNotFoundError(f"no training run recorded ({path} missing): materialize bidding_policy first")
    return json.loads(path.read_text())


def world_comparison(
    policy,
    params,
    schema,
    settings: EvalSettings,
    venv,
    world_src: Path | None,
    world_file: Path,
    world_seed: int,
    start: dt.date | None = None,
) -> dict:
    """World score of `policy` on a COPY of the demo world (or a fresh one from the same file and seed, advanced to
    `start`) and its simulator score from the same date on the evaluation seeds."""
    with tempfile.TemporaryDirectory(prefix="gaelp-world-eval-") as tmp:
        copy_dir = Path(tmp) / "world"
        if world_src is not None and (Path(world_src) / "world.json").exists():
            world = copy_world(Path(world_src), copy_dir, world_file, world_seed)
            if start is not None and world.today < start:
                world.advance_to(start)
        else:
            if start is None:
                raise ValueError("a fresh world copy needs a start date")
            world = fresh_world(copy_dir, world_file, world_seed, start)
        start_date = world.today
        out = world_episode(policy, world, params, schema, settings.world_days, settle_days=settings.settle_days)
    sims = []
    for seed in settings.eval_seeds:
        venv.set_options({"start_date": start_date})
        sims += run_tracked(policy, venv, seed)
    sim_score = float(np.mean([s["score"] for s in sims]))
    return {
        "world_score": out["score"],
        "sim_score": sim_score,
        "gap": sim_score - out["score"],
        "world": out,
        "sim_scores": [s["score"] for s in sims],
    }


def eval_config(train: Mapping, settings: EvalSettings, algo: str = "ppo") -> TrainConfig:
    """The evaluation environment's settings: `settings`' episode settings, else those of the training config
    `train` (a `TrainConfig` as a dict, lists where JSON made them), and always its per-campaign volume draws
    (`market_config`): the policy is judged in the markets it was trained for."""
    return TrainConfig(
        algo=algo,
        n_envs=settings.n_envs,
        episode_days=settings.episode_days or train["episode_days"],
        warmup_days=settings.warmup_days if settings.warmup_days is not None else train["warmup_days"],
        settle_days=settings.settle_days if settings.settle_days is not None else train["settle_days"],
        campaign_volume_ranges=tuple(
            (int(cid), float(low), float(high)) for cid, low, high in train.get("campaign_volume_ranges") or ()
        ),
    )


def run_yardsticks(
    data_dir: Path,
    world_file: Path,
    config: TrainConfig,
    settings: EvalSettings,
    progress: Callable[[str], None] | None = None,
    lower_bound_volumes: bool = False,
) -> tuple[dict, Path]:
    """`compute_yardsticks` in the markets the policy trains in (`train_policy`'s, for the training `config` and
    `lower_bound_volumes`), recorded under the models directory for `evaluate_and_register`: (what was recorded,
    its path)."""
    market = training_market(calibration_path(data_dir), world_file)
    config = market_config(market, config, lower_bound_volumes)
    tc = eval_config(dataclasses.asdict(config), settings, config.algo)
    found = compute_yardsticks(market.params, None, tc, settings, progress)
    return found, write_yardsticks(data_dir, found)


def write_yardsticks(data_dir: Path, yardsticks: dict) -> Path:
    path = models_dir(data_dir) / YARDSTICKS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(yardsticks, default=str))
    tmp.replace(path)  # a reader never sees half a file
    return path


def read_yardsticks(data_dir: Path, key: dict) -> tuple[dict | None, str]:
    """The yardsticks recorded for `key`, or None and why they cannot be used."""
    path = models_dir(data_dir) / YARDSTICKS
    if not path.exists():
        return None, f"no yardsticks recorded ({path.name} missing)"
    try:
        found = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return None, f"{path} is not valid JSON ({e})"
    if found.get("key") != key:
        differ = sorted(k for k in key if (found.get("key") or {}).get(k) != key[k])
        return None, f"the yardsticks recorded were run for another setup (differs in {', '.join(differ)})"
    return found, "recorded"


def evaluate_and_register(
    data_dir: Path,
    con: duckdb.DuckDBPyConnection,
    settings: EvalSettings,
    world_src: Path | None = None,
    world_file: Path | None = None,
    world_seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[Evaluation, RegisteredModel, GateDecision]:
    """Evaluate the latest training run's model beside the yardsticks recorded for the same setup
    (`compute_yardsticks`; run here when none match), register it and promote it if the gate passes."""
    info = latest_training(data_dir)
    params = parse_market_params(json.loads(Path(info["params_file"]).read_text()), info["params_file"])
    schema = ObservationSchema.from_json(info["observation_schema"])
    tc = eval_config(info["config"], settings, info["algo"])
    # one torch thread, as in training: a batch of a few markets gains nothing from more, and forked evaluation
    # workers (settings.workers) must not inherit an OpenMP thread pool (not fork-safe)
    torch.set_num_threads(1)
    venv = make_venv(params, tc, schema=schema, seed=0)
    model = load_model(Path(info["model_path"]), info["algo"])
    policy = SB3Policy(model, name="policy")
    yardsticks, why = read_yardsticks(data_dir, yardstick_key(params, schema, tc, settings))
    if yardsticks is None:
        if progress:
            progress(f"{why}: running the baselines and yardsticks now")
        yardsticks = compute_yardsticks(params, schema, tc, dataclasses.replace(settings, nice=0), progress)
    ev = evaluate(
        {"policy": policy},
        venv,
        list(settings.eval_seeds),
        policy="policy",
        oracle=False,
        lp_bound=False,
        progress=progress,
        workers=settings.workers,
        known=yardsticks["results"],
    )
    ev.extra["baseline_settings"] = yardsticks["baseline_settings"]
    ev.extra["yardsticks"] = why
    ev.extra["source"] = info["source"]
    if settings.world_days > 0 and world_file is not None:
        ev.world = world_comparison(
            policy,
            params,
            schema,
            settings,
            venv,
            world_src,
            world_file,
            world_seed,
            start=params.history_start + dt.timedelta(days=tc.warmup_days),
        )
    decision = gate(ev)
    registry = ModelRegistry(con, models_dir(data_dir))
    window = (info["window"].get("first"), info["window"].get("last"))
    entry = registry.register(
        Path(info["model_path"]),
        schema=schema,
        params_hash=info["params_hash"],
        window=window,
        evaluation=ev,
        algo=info["algo"],
        timesteps=info["timesteps"],
        source=info["source"],
    )
    if decision.passed and settings.promote:
        entry = registry.promote(entry.version)
    return ev, entry, decision
