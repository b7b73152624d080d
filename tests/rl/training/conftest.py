"""Tiny markets and trainings: a few hundred steps at a few percent of the reference volume."""

from __future__ import annotations

import pytest

from rl.training.params import scale_market
from rl.training.train import TrainConfig


@pytest.fixture(scope="session")
def tiny_params(reference_params):
    return scale_market(reference_params, 0.05)


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        total_timesteps=96,
        n_envs=2,
        episode_days=4,
        warmup_days=7,
        settle_days=3,
        n_steps=8,
        batch_size=16,
        n_epochs=2,
        net_arch=(16, 16),
        progress_bar=False,
        tensorboard=False,
    )
    return TrainConfig(**(base | kw))
