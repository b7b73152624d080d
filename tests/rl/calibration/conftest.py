"""A demo warehouse for the response model, built once per test session: 60 days of the default world at full
volume through the real ingestion and dbt assets (~30 s; the build's cost is mostly fixed, so full volume is barely
slower than 20% and gives the held-out comparisons enough trials)."""

from __future__ import annotations

import dagster as dg
import pytest

FIRST, LAST = "2024-12-01", "2025-01-29"


@pytest.fixture(scope="session")
def response_warehouse(tmp_path_factory, reference_params):
    """Path of the built warehouse's DuckDB file."""
    from tests.builders import build_warehouse, demo_resources

    tmp = tmp_path_factory.mktemp("response_warehouse")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    resources = demo_resources(tmp, reference_params, scale=1.0, seed=5)
    result = build_warehouse(resources, FIRST, LAST, dg.DagsterInstance.ephemeral())
    assert result.success
    yield tmp / "data" / "warehouse.duckdb"
    mp.undo()
