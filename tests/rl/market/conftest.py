"""Fixtures of the market mechanics tests."""

import pytest

from rl.market.compiled import CompiledMarket
from tests.rl.market.tiny_market import tiny_market


@pytest.fixture(scope="module")
def tiny() -> CompiledMarket:
    """The tiny hand-computable market of `tests.rl.market.tiny_market`."""
    return tiny_market()
