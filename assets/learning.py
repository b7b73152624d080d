"""Learning: the bidding policy trained in the calibrated simulator, evaluated against every baseline, the oracle
and the LP bound on held-out seeds, registered, and promoted only through the blocking `promotion_gate` check.

Thin: training, evaluation, the registry and the gate live in `rl.training` / `rl.evaluation`.
"""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets import _preview
from orchestration.environment import Environment, current_environment, data_dir, world_file, world_seed
from rl.evaluation.evaluate import INFORMED_CEILING, INFORMED_ORACLE, LP_BOUND, ORACLE
from rl.evaluation.plots import plot_learning_curve, plot_scores
from rl.training.pipeline import EvalSettings, evaluate_and_register, latest_training, train_policy
from rl.training.train import TrainConfig

GATE = "promotion_gate"


class PolicyTrainingConfig(dg.Config):
    """Training run settings (see `rl.training.train.TrainConfig`). By default the policy is distilled from the
    informed planning ceiling (DAgger over `bc_cycles` reset cycles in `dagger_rounds` rounds), then fine-tuned by
    paired PPO on the fast simulator against a frozen copy of itself, and the fine-tuned model is kept only if it
    does better on the validation seeds."""

    algo: str = "ppo"
    total_timesteps: int = 200_000
    n_envs: int = 16
    seed: int = 0
    episode_days: int = 14
    warmup_days: int = 28
    settle_days: int | None = None
    net_arch: list[int] = [256, 256]
    learning_rate: float = 3e-5
    log_std_init: float = -2.0
    n_steps: int = 14
    batch_size: int = 112
    # a residual policy learns a correction of this baseline instead (None: the actions themselves)
    residual_base: str | None = None
    residual_kwargs: dict[str, float] = {"slack": 1.0, "decay": 0.5}
    residual_scale: float = 0.3
    paired: bool = True  # reward against a same-draws twin run by the residual base or the frozen warm start
    teacher: str = "ceiling"  # the warm start's teacher: "ceiling", "oracle" or a baseline's name
    bc_cycles: int = 48  # reset cycles of the teacher's labels (0: no warm start; fewer if the time runs out)
    dagger_rounds: int = 3
    dagger_envs: int = 4  # markets per teaching cycle
    bc_epochs: int = 100
    select_seeds: list[int] = [601]  # validation: keep the warm start if RL made it worse
    engine: str = "fast"  # the training simulator (evaluation always runs the full engine)
    oracle_budget_step: float = 25.0  # the clairvoyant teacher's budget grid (coarser is faster)
    checkpoint_every: int = 0
    progress_bar: bool = False
    tensorboard: bool = True
    max_wall_s: float | None = 300.0
    # domain randomisation around the calibration by its uncertainty (0: off). Off by default for the distilled
    # policy: the teacher plans each randomised market with its true parameters, and where a month of reports
    # cannot tell those markets apart the student learns the average of their plans (benchmarks.policy's note)
    uncertainty_scale: float = 0.0


class PolicyEvaluationConfig(dg.Config):
    """Held-out evaluation settings; the tuning seeds and evaluation seeds must not overlap."""

    eval_seeds: list[int] = [10_001, 10_002]
    tune_seeds: list[int] = [501]
    n_envs: int = 4
    episode_days: int | None = None
    warmup_days: int | None = None
    settle_days: int | None = None
    oracle_budget_step: float = 5.0
    ceiling: bool = True  # the informed planning ceiling, the yardstick the policy is measured against
    informed_replicates: int = 0  # replicate days of the greedy informed oracle (a diagnostic); 0 skips it
    world_days: int = 14  # demo mode: days the policy runs in a copy of the demo world (0: skip)
    promote: bool = True


@dg.asset(
    deps=[dg.AssetKey("market_calibration")],
    group_name="learning",
    kinds={"python", "pytorch"},
)
def bidding_policy(context: dg.AssetExecutionContext, config: PolicyTrainingConfig) -> dg.MaterializeResult:
    """A policy trained (PPO by default) in the calibrated simulator with domain randomisation around its
    uncertainty; falls back, flagged, to the default world file's parameters with noise when no calibration exists."""
    tc = TrainConfig(
        algo=config.algo,
        total_timesteps=config.total_timesteps,
        n_envs=config.n_envs,
        seed=config.seed,
        episode_days=config.episode_days,
        warmup_days=config.warmup_days,
        settle_days=config.settle_days,
        net_arch=tuple(config.net_arch),
        learning_rate=config.learning_rate,
        log_std_init=config.log_std_init,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        residual_base=config.residual_base,
        residual_kwargs=tuple(sorted(config.residual_kwargs.items())),
        residual_scale=config.residual_scale,
        paired=config.paired and (config.residual_base is not None or config.bc_cycles > 0),
        teacher=config.teacher,
        bc_cycles=0 if config.residual_base is not None else config.bc_cycles,
        dagger_rounds=config.dagger_rounds,
        dagger_envs=config.dagger_envs,
        bc_epochs=config.bc_epochs,
        select_seeds=tuple(config.select_seeds),
        engine=config.engine,
        oracle_budget_step=config.oracle_budget_step,
        checkpoint_every=config.checkpoint_every,
        progress_bar=config.progress_bar,
        tensorboard=config.tensorboard,
        max_wall_s=config.max_wall_s,
    )
    run = train_policy(data_dir(), world_file(), tc, uncertainty_scale=config.uncertainty_scale)
    if run.market.is_fallback:
        context.log.warning("no market calibration found: trained on the world file's parameters with noise")
    info = run.info
    png = plot_learning_curve(info["curve"], run.run_dir / "learning_curve.png")
    window = info["window"]
    curve = info["curve"]
    return dg.MaterializeResult(
        metadata={
            "model": dg.MetadataValue.path(info["model_path"]),
            "params_source": info["source"],
            "fallback_params": dg.MetadataValue.bool(info["fallback"]),
            "params_hash": info["params_hash"],
            "window": f"{window['first']} .. {window['last']}"
            if window.get("first") and window.get("last")
            else "no calibration window: the world file's parameters",
            "algo": info["algo"],
            "timesteps": dg.MetadataValue.int(info["timesteps"]),
            "wall_s": dg.MetadataValue.float(float(info["wall_s"])),
            "final_score": dg.MetadataValue.float(float(curve[-1]["score"]))
            if curve
            else f"no episode finished in {info['timesteps']} timesteps",
            "learns": info["learns"],
            "behaviour_cloning": dg.MetadataValue.json(info["bc"] or {"used": False}),
            "tensorboard": dg.MetadataValue.path(str(run.run_dir / "tensorboard")),
            "learning_curve": _preview.png(png, "learning curve"),
        }
    )


@dg.asset(
    deps=[bidding_policy],
    group_name="learning",
    kinds={"python", "duckdb"},
    pool="duckdb_writer",  # it records the model in the policy_registry table
    check_specs=[dg.AssetCheckSpec(GATE, asset="policy_evaluation", blocking=True)],
)
def policy_evaluation(
    context: dg.AssetExecutionContext, config: PolicyEvaluationConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """The trained policy against every tuned baseline (and pattern-rules variant), the informed planning ceiling,
    the clairvoyant oracle and the LP bound on held-out seeds (common random numbers, full engine); registered in
    `policy_registry`, promoted only if the gate passes."""
    overlap = set(config.eval_seeds) & set(config.tune_seeds)
    if overlap:
        raise dg.Failure(f"evaluation seeds {sorted(overlap)} are also tuning seeds: held-out seeds must be unseen")
    settings = EvalSettings(
        eval_seeds=tuple(config.eval_seeds),
        tune_seeds=tuple(config.tune_seeds),
        n_envs=config.n_envs,
        episode_days=config.episode_days,
        warmup_days=config.warmup_days,
        settle_days=config.settle_days,
        oracle_budget_step=config.oracle_budget_step,
        ceiling=config.ceiling,
        informed_replicates=config.informed_replicates,
        world_days=config.world_days if current_environment() is Environment.DEMO else 0,
        promote=config.promote,
    )
    from orchestration.resources import world_dir  # the demo world's state directory (read, copied, never written)

    with duckdb.get_connection() as conn:
        ev, entry, decision = evaluate_and_register(
            data_dir(),
            conn,
            settings,
            world_src=Path(world_dir()),
            world_file=world_file(),
            world_seed=world_seed(),
            progress=context.log.info,
        )
    run_dir = Path(latest_training(data_dir())["run_dir"])
    png = plot_scores(ev, run_dir / "evaluation.png")
    table = ev.table()
    metadata = {
        "version": dg.MetadataValue.int(entry.version),
        "promoted": dg.MetadataValue.bool(entry.promoted),
        "policy_score": dg.MetadataValue.float(table["policy"]["score"]),
        "best_baseline": ev.best_baseline() or "none",
        "scores": dg.MetadataValue.json(table),
        "comparisons": dg.MetadataValue.json({b: ci.to_dict() for b, ci in ev.comparisons.items()}),
        "params_hash": entry.params_hash,
        "scores_chart": _preview.png(png, "policy vs baselines vs the informed ceiling, oracle and LP bound"),
        "scores_table": _preview.markdown(_score_rows(ev), "no evaluation result", max_rows=50),
    }
    if ev.world is not None:
        metadata["world_vs_sim"] = dg.MetadataValue.json(
            {k: ev.world[k] for k in ("world_score", "sim_score", "gap")} | {"world": ev.world["world"]}
        )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE,
                passed=decision.passed,
                metadata={"reasons": dg.MetadataValue.json(decision.reasons), "version": entry.version},
            )
        ],
    )


def _score_rows(ev) -> list[dict]:
    """Policy, baselines, oracle and LP bound side by side, with the paired difference of the policy's score
    against each baseline (the promotion gate's test)."""
    comparisons = ev.comparisons
    rows = []
    for name, figures in ev.table().items():
        role = {
            ev.policy: "policy",
            INFORMED_CEILING: "informed planning ceiling (the target)",
            ORACLE: "clairvoyant oracle (hindsight: reported, not a target)",
            INFORMED_ORACLE: "greedy informed oracle (a diagnostic)",
            LP_BOUND: "per-auction LP bound",
        }.get(name, "baseline")
        ci = comparisons.get(name)
        rows.append(
            {"name": name, "role": role}
            | {k: float(v) for k, v in figures.items()}
            | {
                "policy minus it (paired CI)": f"{ci.mean:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}] at {ci.level:.0%}"
                if ci
                else "not a baseline"
            }
        )
    return rows


LEARNING_ASSETS = [bidding_policy, policy_evaluation]
