"""Environment fixtures: small markets and short episodes keep every test quick."""

from __future__ import annotations

import pytest

from rl.env import EnvConfig, ObservationSchema
from rl.market.params import MarketParams
from tests.conftest import scaled


@pytest.fixture(scope="session")
def schema() -> ObservationSchema:
    return ObservationSchema.from_registry()


@pytest.fixture(scope="session")
def mid_params(reference_params: MarketParams) -> MarketParams:
    """A fifth of the reference volume: a few conversions a day, still fast."""
    return scaled(reference_params, 0.2)


@pytest.fixture(scope="session")
def short_config() -> EnvConfig:
    return EnvConfig(episode_days=6, warmup_days=7)


def with_segments(params: MarketParams, **changes) -> MarketParams:
    """The market with every segment's fields changed: a value, or a callable of the old value."""
    data = params.model_dump()
    for seg in data["segments"]:
        for key, new in changes.items():
            seg[key] = new(seg[key]) if callable(new) else new
    return MarketParams.model_validate(data)
