"""A demo warehouse for the response model, built once per test session: 60 days of the default world at full
volume (the ingestion assets' reports and writes, the real dbt build: `tests.builders.build_long_warehouse`; full
volume gives the held-out comparisons enough trials), and the response models fitted on it once for every test
that reads them."""

from __future__ import annotations

import duckdb
import pytest

FIRST, LAST = "2024-12-01", "2025-01-29"


@pytest.fixture(scope="session")
def response_warehouse(tmp_path_factory, reference_params):
    """Path of the built warehouse's (published) DuckDB file."""
    from tests.builders import build_long_warehouse, demo_resources

    tmp = tmp_path_factory.mktemp("response_warehouse")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    resources = demo_resources(tmp, reference_params, scale=1.0, seed=5)
    yield build_long_warehouse(resources, FIRST, LAST)
    mp.undo()


@pytest.fixture(scope="session")
def response_models(response_warehouse):
    """`fit_response_models` on the warehouse with its default 14 held-out days (read-only: tests that change a
    model change a copy, `dataclasses.replace`)."""
    from rl.calibration.response import fit_response_models

    with duckdb.connect(str(response_warehouse), read_only=True) as con:
        return fit_response_models(con, holdout_days=14)
