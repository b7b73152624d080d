"""The discovery asset on the small demo warehouse: artifact, table row, plot, and its two blocking checks."""

from __future__ import annotations

import json

import dagster as dg
import duckdb

from assets.discovery import DISCOVERY_ASSETS
from rl.discovery.schema import DiscoveredPatterns


def _run(built, config=None):
    run_config = {"ops": {"discovered_patterns": {"config": config}}} if config else None
    return dg.materialize(DISCOVERY_ASSETS, resources=built["resources"], run_config=run_config, raise_on_error=False)


def test_discovery_writes_a_valid_artifact_a_row_and_a_plot(built, monkeypatch):
    monkeypatch.setenv("GAELP_DATA_DIR", str(built["tmp"] / "data"))
    result = _run(built)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"artifact_validates": True, "drift_within_bounds": True}
    folder = built["tmp"] / "data" / "discovery"
    patterns = DiscoveredPatterns.model_validate(json.loads((folder / "discovered_patterns.json").read_text()))
    assert str(patterns.last_date) == "2025-01-29"
    assert (folder / "discovered_patterns.png").read_bytes()[:4] == b"\x89PNG"
    meta = result.asset_materializations_for_node("discovered_patterns")[0].metadata
    assert "data:image/png;base64," in meta["plot"].value
    with duckdb.connect(str(built["tmp"] / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM main.discovered_patterns").fetchone()[0] >= 1


def test_drift_beyond_a_bound_fails_the_blocking_check(built, monkeypatch):
    monkeypatch.setenv("GAELP_DATA_DIR", str(built["tmp"] / "data"))
    assert _run(built).success  # a previous materialization to compare with
    result = _run(built, {"drift_bounds": {"*": -1.0}})  # any measure, even zero drift, is "too much"
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["artifact_validates"].passed
    assert not checks["drift_within_bounds"].passed
    assert "segments.k_change = 0 > -1" in checks["drift_within_bounds"].metadata["exceeded"].value
