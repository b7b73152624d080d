"""Shared fixtures: the default demo world's parameters, and a scaled-down copy that keeps tests fast."""

from __future__ import annotations

import pytest

from rl.market.compiled import CompiledMarket
from rl.market.params import MarketParams, load_market_params
from rl.world.paths import DEFAULT_WORLD_FILE


@pytest.fixture(scope="session")
def reference_params() -> MarketParams:
    return load_market_params(DEFAULT_WORLD_FILE)


def scaled(params: MarketParams, factor: float) -> MarketParams:
    """The same market with every campaign's opportunity volume multiplied by `factor`."""
    data = params.model_dump()
    for c in data["campaigns"]:
        c["opportunities_per_day"] *= factor
    return MarketParams.model_validate(data)


@pytest.fixture(scope="session")
def small_params(reference_params: MarketParams) -> MarketParams:
    """The reference market at 2% of its volume (a few thousand opportunities a day)."""
    return scaled(reference_params, 0.02)


@pytest.fixture(scope="session")
def small_market(small_params: MarketParams) -> CompiledMarket:
    return CompiledMarket.from_params(small_params)
