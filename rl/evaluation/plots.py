"""Plots for the learning assets: the learning curve and policy vs baselines vs oracle vs LP bound."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rl.evaluation.evaluate import INFORMED_CEILING, INFORMED_ORACLE, LP_BOUND, ORACLE, Evaluation  # noqa: E402


def plot_learning_curve(curve: list[dict], path: Path, title: str = "learning curve") -> Path:
    """Mean true episode score per finished reset cycle against timesteps."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if curve:
        x = [c["timesteps"] for c in curve]
        ax.plot(x, [c["score"] for c in curve], marker=".", label="episode score")
        ax.set_xlabel("timesteps")
    else:
        ax.text(0.5, 0.5, "no episode finished during training", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("score (conversions at target CPA)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_scores(ev: Evaluation, path: Path) -> Path:
    """Bar chart of mean episode score with the policy, baselines, oracle and LP bound (error bars: ±1.96 SE)."""
    yardsticks = (INFORMED_CEILING, INFORMED_ORACLE, ORACLE, LP_BOUND)
    names = [ev.policy, *ev.baselines] + [n for n in yardsticks if n in ev.results]
    means = [ev.mean(n) for n in names]
    errs = []
    for n in names:
        s = np.asarray(ev.results[n]["score"], dtype=float)
        errs.append(1.96 * s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else 0.0)
    extra = [
        c
        for n, c in (
            (INFORMED_CEILING, "tab:purple"),
            (INFORMED_ORACLE, "tab:cyan"),
            (ORACLE, "tab:green"),
            (LP_BOUND, "tab:olive"),
        )
        if n in ev.results
    ]
    colors = ["tab:blue"] + ["tab:gray"] * len(ev.baselines) + extra
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(names, means, yerr=errs, color=colors, capsize=3)
    ax.set_ylabel("mean episode score")
    ax.set_title(f"held-out seeds {ev.seeds} × {ev.n_envs} markets, {ev.episode_days}-day episodes")
    ax.tick_params(axis="x", rotation=30)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
