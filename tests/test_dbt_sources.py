"""Every table GAELP's Python code writes into the warehouse is a dbt source with every column documented, so that
`dbt docs generate` lists every warehouse table. Reads the manifest `make dbt-manifest` prepares."""

from __future__ import annotations

import json

import duckdb

from assets.dbt_project import DBT_PROJECT
from rl.bidding import audit, plan_store, reference_store
from rl.calibration import records as calibration_records
from rl.discovery import records as discovery_records
from rl.training import model_registry


def _python_tables() -> dict[str, list[str]]:
    """table -> columns, as the stores create them."""
    con = duckdb.connect(":memory:")
    plan_store._plan_table(con)
    con.execute(reference_store.REFERENCE_DDL)
    for column in reference_store.REFERENCE_MODIFIER_COLUMNS:
        con.execute(f"ALTER TABLE {reference_store.REFERENCE_TABLE} ADD COLUMN {column} VARCHAR")
    con.execute(audit.DDL)
    con.execute(model_registry._DDL)
    con.execute(calibration_records.DDL)
    con.execute(discovery_records.DDL)
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns ORDER BY table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def test_every_python_written_table_is_a_documented_dbt_source():
    manifest = json.loads(DBT_PROJECT.manifest_path.read_text())
    sources = {s["name"]: s for s in manifest["sources"].values() if s["source_name"] == "gaelp"}
    tables = _python_tables()
    assert set(tables) == {
        "bid_plan",
        "bid_reference",
        "bid_push_audit",
        "policy_registry",
        "market_calibrations",
        "discovered_patterns",
    }
    assert set(tables) <= set(sources), f"not declared as dbt sources: {sorted(set(tables) - set(sources))}"
    for table, columns in tables.items():
        source = sources[table]
        assert source["description"].strip(), table
        documented = {name: c["description"].strip() for name, c in source["columns"].items()}
        assert set(documented) == set(columns), (table, sorted(set(columns) ^ set(documented)))
        assert all(documented.values()), (table, [n for n, d in documented.items() if not d])


def test_the_prepared_parse_names_the_project_by_its_absolute_path():
    """A warehouse build reuses the parse `make dbt-manifest` saved (when the data directory is the one it was made
    for) and runs from the project dir: a relative root path there ("dbt_project") made every seed path
    "dbt_project/seeds/…" from inside dbt_project, and `make demo` failed on a fresh clone."""
    manifest = json.loads(DBT_PROJECT.manifest_path.read_text())
    seeds = [n for n in manifest["nodes"].values() if n["resource_type"] == "seed"]
    assert seeds and {n["root_path"] for n in seeds} == {str(DBT_PROJECT.project_dir)}, {n["root_path"] for n in seeds}
