"""The warm start of a training run: teachers (the informed planning ceiling, the clairvoyant oracle made followable,
or a rule-based baseline),
demonstrations collected while a teacher or the student drives the environment (DAgger-style relabelling), and
behaviour cloning of the actor (and, for PPO, the critic) on them. `rl.training.train` explains when each is used."""

from __future__ import annotations

import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from rl.env import BatchedBiddingVecEnv, Settings, encode_action
from rl.policies.baselines import BASELINES
from rl.policies.ceiling import InformedCeilingPolicy
from rl.training.config import TrainConfig


def discounted_returns(rewards: list[np.ndarray], gamma: float) -> list[np.ndarray]:
    """Per step, the discounted return from that step to the episode's end (rewards: one [M] array per step)."""
    acc = np.zeros_like(rewards[0])
    out = []
    for r in reversed(rewards):
        acc = r + gamma * acc
        out.append(acc.copy())
    return out[::-1]


def teacher_actions(venv: BatchedBiddingVecEnv, budget_step: float, full_budget: bool = True):
    """The oracle as a teacher a causal policy can imitate: (actions [M, A], loss weights [M, A]).

    In hindsight the oracle gives a campaign no budget on a day it would not have converted, and then its bid is
    meaningless (the cheapest grid row). Imitating that literally teaches under-spending and low bids. So with
    `full_budget` the oracle's budgets are rescaled to the whole account budget (its *allocation*), and bid targets
    of campaigns the oracle left without budget keep the bid in force and get zero weight in the loss."""
    limits = venv.sim.limits
    n_c = venv.schema.n_campaigns
    bids_now = venv.sim.reports.bids_now
    acts = np.empty((venv.num_envs, venv.schema.action_size))
    weights = np.ones_like(acts)
    for m, o in enumerate(venv.oracle_results(budget_step)):
        budgets = np.asarray(o.budgets, dtype=float)
        funded = budgets > 0
        if full_budget and budgets.sum() > 0:
            budgets = budgets * limits.daily_budget / budgets.sum()
        bids = np.where(funded, o.bids, bids_now[m])
        now = venv.sim.settings.market(m)
        acts[m] = encode_action(Settings(budgets, bids, now.device, now.hours), limits)
        weights[m, n_c : 2 * n_c] = funded
        weights[m, 2 * n_c :] = 0.0  # the oracle keeps the modifiers in force: nothing to imitate there
    return acts, weights


def collect_demonstrations(
    venv: BatchedBiddingVecEnv, cycles: int, budget_step: float, gamma: float, seed: int, full_budget: bool = True
):
    """(observations [N, D], teacher actions [N, A], loss weights [N, A], discounted returns [N]) from `cycles`
    reset cycles in which the teacher (`teacher_actions`) drives the environment."""
    obs_l, act_l, w_l, rew_l = [], [], [], []
    for k in range(cycles):
        venv.seed(seed + k)
        obs = venv.reset()
        ep_rew = []
        while True:
            action, weight = teacher_actions(venv, budget_step, full_budget)
            obs_l.append(obs.copy())
            act_l.append(action)
            w_l.append(weight)
            obs, rewards, dones, _ = venv.step(action)
            ep_rew.append(np.asarray(rewards, dtype=float))
            if dones.all():
                break
        rew_l += discounted_returns(ep_rew, gamma)
    return (
        np.concatenate(obs_l).astype(np.float32),
        np.clip(np.concatenate(act_l), -1.0, 1.0).astype(np.float32),
        np.concatenate(w_l).astype(np.float32),
        np.concatenate(rew_l).astype(np.float32),
    )


def baseline_teacher(venv: BatchedBiddingVecEnv, config: TrainConfig):
    """The configured teacher for `venv`: the informed planning ceiling ("ceiling": it reads the simulator's
    hidden truth, which is why it can only ever be a teacher), or a baseline (hyperparameters tuned on
    `select_seeds` if asked)."""
    if config.teacher == "ceiling":
        # one set of bid shapes per cycle and fewer candidate plans: a cheaper ceiling, labels in quantity (4 λ
        # values score as 6 do on held-out episodes of the calibrated market, in 60% of the time)
        teacher = InformedCeilingPolicy(venv, candidates=4, margins=(0.95, 1.1, 1.25), shared_shapes=True)
        return teacher, {"teacher": "ceiling"}

    cls = BASELINES[config.teacher]
    kwargs = dict(config.teacher_kwargs)
    info: dict = {"teacher": config.teacher}
    if config.teacher_tune and config.select_seeds:
        res = cls.tune(venv, list(config.select_seeds))
        kwargs = {**res.best, **kwargs}
        info["teacher_tune_score"] = res.best_score
    info["teacher_kwargs"] = kwargs
    teacher = cls.for_env(venv, **kwargs)
    if config.teacher_bid_mult is not None:
        info["teacher_bid_mult"] = config.teacher_bid_mult
        teacher = FixedBids(teacher, config.teacher_bid_mult, venv.codec.bid_range, venv.schema.n_campaigns)
    return teacher, info


class FixedBids:
    """A policy whose budget actions are `base`'s and whose bid targets are `mult` × the reference bid."""

    def __init__(self, base, mult: float, bid_range: float, n_campaigns: int):
        if not mult > 0:
            raise ValueError(f"teacher bid multiplier must be > 0, got {mult}")
        self.base, self.name = base, f"{base.name}_bids_x{mult:g}"
        self.a_bid = float(np.clip(np.log(mult) / np.log(bid_range), -1.0, 1.0))
        self.n_campaigns = n_campaigns

    def reset(self, n_envs: int) -> None:
        self.base.reset(n_envs)

    def act(self, obs: np.ndarray) -> np.ndarray:
        action = np.array(self.base.act(obs), dtype=float)
        action[:, self.n_campaigns : 2 * self.n_campaigns] = self.a_bid
        return action


def collect_dagger(
    venv: BatchedBiddingVecEnv, teacher, cycles: int, gamma: float, seed: int, student=None, deadline=None
):
    """(observations, teacher actions, weights, discounted returns) from `cycles` reset cycles (fewer if
    `deadline`, a `time.perf_counter()` value, passes first; at least one). The environment is driven by `student`
    (an SB3 model, deterministic) when given, else by the teacher; every observation is labelled with the teacher's
    action for it (the baseline teachers act on observations alone; the ceiling reads the environment's truth)."""
    obs_l, act_l, rew_l = [], [], []
    for k in range(cycles):
        if k > 0 and deadline is not None and time.perf_counter() >= deadline:
            break
        venv.seed(seed + k)
        obs = venv.reset()
        teacher.reset(venv.num_envs)
        ep_rew = []
        while True:
            label = np.asarray(teacher.act(obs), dtype=float)
            obs_l.append(obs.copy())
            act_l.append(label)
            drive = label if student is None else student.predict(obs, deterministic=True)[0]
            obs, rewards, dones, _ = venv.step(drive)
            ep_rew.append(np.asarray(rewards, dtype=float))
            if dones.all():
                break
        rew_l += discounted_returns(ep_rew, gamma)
    acts = np.clip(np.concatenate(act_l), -1.0, 1.0).astype(np.float32)
    return (
        np.concatenate(obs_l).astype(np.float32),
        acts,
        np.ones_like(acts),
        np.concatenate(rew_l).astype(np.float32),
    )


def budget_weights(actions: np.ndarray, n_campaigns: int, floor: float, bid_range: float) -> np.ndarray:
    """Loss weights [N, A] for labels `actions` [N, A]: the budget actions' squared error weighs as the squared error
    of log(budget share + `floor`), in the bid actions' units (log `bid_range`), or as before (1) where that is
    less; every other action weighs 1.

    A budget action is linear in the share (a = 2 × share − 1), so a plain squared error barely tells a small
    campaign's 30 a day from its 3 (0.06 and 0.006 of a 500 budget: 0.11 apart in action, as bids 17 % apart are),
    and the student let such budgets decay to nothing: on the demo market, Microsoft's 30 a day went, and with it a
    conversion every two or three days. In log terms that gap weighs as bids twice apart would; the floor (0.04: 20
    a day of 500) keeps the gap between two negligible budgets negligible. A large budget keeps weight 1, so that no
    budget is fitted less closely than before: in log terms Google brand's 200 a day (share 0.4) would weigh 0.67,
    and the campaign that converts most is where a budget error costs most."""
    weights = np.ones_like(actions, dtype=np.float32)
    share = np.clip((actions[:, :n_campaigns] + 1.0) / 2.0, 0.0, 1.0)
    weights[:, :n_campaigns] = np.maximum((1.0 / (2.0 * (share + floor) * np.log(bid_range))) ** 2, 1.0)
    return weights


def behaviour_clone(model: BaseAlgorithm, obs, actions, weights, returns, epochs: int, lr: float, seed: int) -> dict:
    """Fit the actor's deterministic action to the demonstrations (and, for PPO, the critic to their returns)."""
    gen = torch.Generator().manual_seed(seed)
    obs_t, act_t, ret_t = torch.as_tensor(obs), torch.as_tensor(actions), torch.as_tensor(returns)
    w_t = torch.as_tensor(weights)
    policy = model.policy
    if isinstance(model, PPO):
        params = [p for n, p in policy.named_parameters() if n != "log_std"]
    else:
        params = list(model.actor.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    n = len(obs_t)
    batch = min(256, n)
    first = last = None
    policy.set_training_mode(True)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            o = obs_t[idx]
            if isinstance(model, PPO):
                features = policy.extract_features(o)
                latent_pi, latent_vf = policy.mlp_extractor(features)
                mean = policy.action_net(latent_pi)
                value = policy.value_net(latent_vf).squeeze(-1)
                loss = _weighted_mse(mean, act_t[idx], w_t[idx]) + 0.5 * ((value - ret_t[idx]) ** 2).mean()
            else:
                pred = model.actor(o, deterministic=True)
                loss = _weighted_mse(pred, act_t[idx], w_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        first = total / n if first is None else first
        last = total / n
    policy.set_training_mode(False)
    return {"samples": n, "epochs": epochs, "loss_first": first, "loss_last": last}


def _weighted_mse(pred, target, weight):
    return (weight * (pred - target) ** 2).sum() / weight.sum().clamp(min=1.0)


def distill(model: BaseAlgorithm, env: BatchedBiddingVecEnv, config: TrainConfig, deadline: float | None) -> dict:
    """DAgger from the configured teacher into `model`: `config.bc_cycles` reset cycles of `env` split into
    `dagger_rounds` rounds — the first driven by the teacher, later ones by the student fitted so far, every state
    labelled with the teacher's action — refitting the student on all labels after each round.

    With a `deadline` (a `time.perf_counter()` value), round r ends at its share of the time left: the start plus
    (r + 1) / rounds of it, each round with at least one cycle. Without the slices the teacher-driven first round
    took all the time whenever the teacher was slow (the informed ceiling, on the demo market: 12 of its 16 cycles,
    no student-driven round), and the student never saw the states its own mistakes lead to, which is what DAgger
    is for."""
    teacher, info = baseline_teacher(env, config)
    rounds = min(config.dagger_rounds, config.bc_cycles)
    per_round = [config.bc_cycles // rounds + (r < config.bc_cycles % rounds) for r in range(rounds)]
    start = time.perf_counter()
    data, fits = None, []
    for r, cycles in enumerate(per_round):
        if deadline is not None and time.perf_counter() >= deadline and data is not None:
            break
        round_deadline = None if deadline is None else start + (r + 1) / rounds * (deadline - start)
        new = collect_dagger(
            env,
            teacher,
            cycles,
            config.gamma,
            config.seed + 1 + 1000 * r,
            student=None if r == 0 else model,
            deadline=round_deadline,
        )
        if config.bc_budget_floor is not None:
            obs, acts, weights, rets = new
            scale = budget_weights(acts, env.schema.n_campaigns, config.bc_budget_floor, env.codec.bid_range)
            new = (obs, acts, weights * scale, rets)  # on top of the collected weights, never instead of them
        data = new if data is None else tuple(np.concatenate([a, b]) for a, b in zip(data, new, strict=True))
        fits.append(behaviour_clone(model, *data, config.bc_epochs, config.bc_learning_rate, config.seed + r))
    info.update(fits[-1])
    info["rounds"] = [{k: f[k] for k in ("samples", "loss_first", "loss_last")} for f in fits]
    info["markets_per_cycle"] = env.num_envs
    return info
