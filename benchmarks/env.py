"""Speed of the batched environment against SB3's DummyVecEnv over the single-market env, PPO training speed, the
paired residual training env with the twin copying the learner's warm-up against simulating its own, and a
training decision at the reference account's full volume in the fast simulator against the full engine.

    .venv/bin/python -m benchmarks.env [--markets 16] [--volume 0.1] [--steps 40] [--ppo-steps 2048]

An env step is one market-day (warm-up and settle periods at resets included, as in training). Both sides step
the same markets with the same random actions for `--steps` vector steps after a reset (reset time included).
The market volume is scaled by `--volume` (default 0.1 of the reference account) to keep the run short.
Human-readable lines first; the LAST line is one JSON object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded numpy, set pre-import
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from rl.env import BatchedBiddingVecEnv, BiddingEnv, EnvConfig, ObservationSchema  # noqa: E402
from rl.market.params import MarketParams, load_market_params  # noqa: E402
from rl.policies.base import run_episode  # noqa: E402
from rl.policies.baselines import BASELINES, StaticPolicy  # noqa: E402
from rl.policies.residual import ResidualSpec, ResidualVecEnv  # noqa: E402
from rl.training.paired import PairedVecEnv  # noqa: E402
from rl.training.train import sb3_logger  # noqa: E402
from rl.world.paths import DEFAULT_WORLD_FILE  # noqa: E402


def scaled(params: MarketParams, factor: float) -> MarketParams:
    data = params.model_dump()
    for c in data["campaigns"]:
        c["opportunities_per_day"] *= factor
    return MarketParams.model_validate(data)


def time_steps(venv, n_steps: int, seed: int) -> float:
    """Market-days per second over one seeded reset and `n_steps` vector steps of random actions."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (n_steps, venv.num_envs) + venv.action_space.shape).astype(np.float32)
    start = time.perf_counter()
    venv.seed(seed)
    venv.reset()
    for a in actions:
        venv.step(a)
    return n_steps * venv.num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=16)
    ap.add_argument("--volume", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--ppo-steps", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    params = scaled(load_market_params(DEFAULT_WORLD_FILE), args.volume)
    schema = ObservationSchema.from_registry()
    config = EnvConfig()
    episode = config.episode_days
    print(
        f"world {params.name} at volume x{args.volume}: {len(params.campaigns)} campaigns, episodes of {episode} days "
        f"+ {config.warmup_days} warm-up days; {args.markets} markets"
    )

    batched = BatchedBiddingVecEnv(params, n_envs=args.markets, config=config, schema=schema)
    dummy = DummyVecEnv([lambda: BiddingEnv(params, config, schema) for _ in range(args.markets)])
    batched_rate = time_steps(batched, args.steps, args.seed)
    dummy_rate = time_steps(dummy, args.steps, args.seed)
    ratio = batched_rate / dummy_rate
    print(f"batched VecEnv: {batched_rate:,.0f} market-days/s")
    print(f"DummyVecEnv:    {dummy_rate:,.0f} market-days/s  -> batched is {ratio:.2f}x")

    n_steps = max(args.ppo_steps // (2 * args.markets), 8)
    model = PPO(
        "MlpPolicy",
        batched,
        n_steps=n_steps,
        batch_size=min(256, n_steps * args.markets),
        n_epochs=4,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    model.set_logger(sb3_logger(None))  # SB3's default makes an empty SB3-<time> directory in the system temp dir
    start = time.perf_counter()
    model.learn(total_timesteps=args.ppo_steps)
    ppo_s = time.perf_counter() - start
    ppo_rate = model.num_timesteps / ppo_s
    print(f"PPO on the batched env: {model.num_timesteps} steps in {ppo_s:.1f} s -> {ppo_rate:,.0f} steps/s")

    # paired residual training (rl.training.paired): the twin copying the learner's warm-up vs simulating its own
    paired_rates = {}
    for copy_warmup in (True, False):
        learner = BatchedBiddingVecEnv(params, n_envs=args.markets, config=config, schema=schema)
        spec = ResidualSpec("online_lp", 0.3, schema.to_json(), learner.codec.bid_range, {"slack": 1.0, "decay": 0.5})
        twin = BatchedBiddingVecEnv(params, n_envs=args.markets, config=config, schema=schema)
        env = PairedVecEnv(ResidualVecEnv(learner, spec), twin, spec.baseline(), copy_warmup=copy_warmup)
        paired_rates[copy_warmup] = time_steps(env, 2 * episode, args.seed)
    paired_ratio = paired_rates[True] / paired_rates[False]
    print(
        f"paired residual env: {paired_rates[True]:,.0f} decided market-days/s with the twin copying the warm-up, "
        f"{paired_rates[False]:,.0f} simulating its own -> {paired_ratio:.2f}x"
    )

    # a training decision at full volume: the paired residual env (online LP base) in each simulator, and the
    # fidelity that makes the fast one usable: the same policies' scores on the same seeds in both
    full_params = load_market_params(DEFAULT_WORLD_FILE)
    decision_rates, fidelity = {}, {}
    for engine in ("full", "fast"):
        cfg = EnvConfig(engine=engine)
        learner = BatchedBiddingVecEnv(full_params, n_envs=args.markets, config=cfg, schema=schema)
        spec = ResidualSpec("online_lp", 0.3, schema.to_json(), learner.codec.bid_range, {"slack": 1.0, "decay": 0.5})
        twin = BatchedBiddingVecEnv(full_params, n_envs=args.markets, config=cfg, schema=schema)
        env = PairedVecEnv(ResidualVecEnv(learner, spec), twin, spec.baseline())
        decision_rates[engine] = time_steps(env, 2 * episode, args.seed)
        scores = {}
        for name, policy in (
            ("static", StaticPolicy.reference(learner)),
            ("online_lp", BASELINES["online_lp"].for_env(learner, slack=1.0, decay=0.5)),
        ):
            scores[name] = round(float(np.mean([run_episode(policy, learner, s).scores.mean() for s in (71, 72)])), 2)
        fidelity[engine] = scores
    decision_ratio = decision_rates["fast"] / decision_rates["full"]
    print(
        f"paired training decision at full volume: fast simulator {decision_rates['fast']:,.0f}/s, full engine "
        f"{decision_rates['full']:,.0f}/s -> {decision_ratio:.1f}x; scores on seeds 71-72 (fast vs full): "
        + ", ".join(f"{n} {fidelity['fast'][n]} vs {fidelity['full'][n]}" for n in fidelity["full"])
    )

    out = {
        "benchmark": "env",
        "paired_steps_per_s": {
            "twin_copies_warmup": round(paired_rates[True], 1),
            "twin_simulates_warmup": round(paired_rates[False], 1),
        },
        "paired_ratio": round(paired_ratio, 2),
        "train_decisions_per_s": {k: round(v, 1) for k, v in decision_rates.items()},
        "train_decision_ratio": round(decision_ratio, 2),
        "fast_vs_full_scores": fidelity,
        "env_steps_per_s": {"batched_vec_env": round(batched_rate, 1), "dummy_vec_env": round(dummy_rate, 1)},
        "ratio": round(ratio, 2),
        "ppo_steps_per_s": round(ppo_rate, 1),
        "ppo_timesteps": model.num_timesteps,
        "markets": args.markets,
        "vector_steps": args.steps,
        "volume_scale": args.volume,
        "episode_days": episode,
        "warmup_days": config.warmup_days,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
