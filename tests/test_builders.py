"""The test builders' shortcut is the real thing: `ingest_directly` writes the same raw tables as the ingestion
assets' Dagster run over the same days of the same world (tests that need a year of marts rely on it)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import polars.testing

from assets._io import RAW_SCHEMA, query_frame
from assets.ingestion import INGESTION_ASSETS
from tests.builders import demo_resources, ingest_directly, partition_range

FIRST, LAST = dt.date(2024, 11, 26), dt.date(2024, 12, 4)  # the world's first days: little to simulate


def _raw_tables(database) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as con:
        listed = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [RAW_SCHEMA])
        tables = [t for (t,) in listed.fetchall()]
        return {t: query_frame(con, f"SELECT * FROM {RAW_SCHEMA}.{t}").sort(pl.all()) for t in tables}


def test_direct_ingestion_writes_what_the_ingestion_assets_write(tmp_path, small_params, monkeypatch):
    tables = {}
    for how in ("assets", "direct"):
        tmp = tmp_path / how
        tmp.mkdir()
        monkeypatch.setenv("GAELP_DATA_DIR", str(tmp / "data"))
        resources = demo_resources(tmp, small_params, scale=1.0, seed=3)
        if how == "assets":
            tags = partition_range(FIRST.isoformat(), LAST.isoformat())
            instance = dg.DagsterInstance.ephemeral()
            assert dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags, instance=instance).success
        else:
            ingest_directly(resources, FIRST, LAST)
        tables[how] = _raw_tables(tmp / "data" / "warehouse.duckdb")
    assert sorted(tables["direct"]) == sorted(a.key.path[-1] for a in INGESTION_ASSETS)
    assert sorted(tables["assets"]) == sorted(tables["direct"])
    for name, frame in tables["assets"].items():
        assert frame.height > 0, name
        pl.testing.assert_frame_equal(tables["direct"][name], frame, check_exact=True)
