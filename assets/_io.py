"""Small DuckDB and file I/O helpers the assets share: keep what was received, replace a date window in one
transaction (the bid plan's table is `rl.bidding.plan_store`'s). No business logic lives here (the UI previews are
assets/_preview.py's)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import duckdb
import polars as pl

from rl.sources.ingest import RAW_SCHEMAS

RAW_SCHEMA = "raw"
_DUCKDB_TYPES = {pl.Date: "DATE", pl.Int8: "TINYINT", pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Utf8: "VARCHAR"}


def keep_raw(root: Path, table: str, start: dt.date, end: dt.date, run_id: str, name: str, text: str) -> Path:
    """Write a received response under root/raw/<table>/<start>_<end>/<run>-<name>.jsonl.gz before it is parsed,
    so nothing received is lost even when parsing or checks fail."""
    folder = root / "raw" / table / f"{start.isoformat()}_{end.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id[:8]}-{name}.jsonl.gz"
    with gzip.open(path, "wt", compresslevel=6) as f:  # gzip's default 9: 5x the time for 10% less space
        f.write(text)
    return path


def ensure_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create the raw table if it is new; refuse one whose columns are not the report's any more (a report that
    changed grain, e.g. ad_performance gaining the device: the old rows cannot be mixed with the new ones)."""
    cols = ", ".join(f"{c} {_DUCKDB_TYPES[type(t)]}" for c, t in RAW_SCHEMAS[table].items())
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{table} ({cols})")
    have = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [RAW_SCHEMA, table],
        ).fetchall()
    ]
    if have != list(RAW_SCHEMAS[table]):
        raise ValueError(
            f"{RAW_SCHEMA}.{table} has columns {have}, but the report now has {list(RAW_SCHEMAS[table])}: its rows "
            f"cannot be mixed with the new ones. Drop the table (DROP TABLE {RAW_SCHEMA}.{table}) and re-ingest its "
            "history (the demo: gaelp demo --fresh)"
        )


def loaded_days(conn: duckdb.DuckDBPyConnection, table: str, start: dt.date, end: dt.date) -> set[dt.date]:
    """The days start..end that already have rows in the raw table (none when the table does not exist yet)."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [RAW_SCHEMA, table]
    ).fetchone()[0]
    if not exists:
        return set()
    rows = conn.execute(
        f"SELECT DISTINCT date FROM {RAW_SCHEMA}.{table} WHERE date BETWEEN ? AND ?", [start, end]
    ).fetchall()
    return {r[0] for r in rows}


def replace_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    start: dt.date,
    end: dt.date,
    keep_only: tuple[dt.date, dt.date] | None = None,
) -> tuple[int, int]:
    """Delete the table's rows dated start..end and insert `frame`, in one transaction: a failure leaves the table
    as it was. With `keep_only` (a recovery), rows dated outside that range — days no report can have — are deleted
    too. Returns (rows now in the window, rows deleted outside it)."""
    ensure_table(conn, table)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM {RAW_SCHEMA}.{table} WHERE date BETWEEN ? AND ?", [start, end])
        purged = 0
        if keep_only is not None:
            outside = f"FROM {RAW_SCHEMA}.{table} WHERE date NOT BETWEEN ? AND ?"
            (purged,) = conn.execute(f"SELECT count(*) {outside}", list(keep_only)).fetchone()
            conn.execute(f"DELETE {outside}", list(keep_only))
        arrow = frame.sort(frame.columns).to_arrow()  # sorted: identical re-runs give identical tables
        conn.register("incoming", arrow)
        conn.execute(f"INSERT INTO {RAW_SCHEMA}.{table} SELECT * FROM incoming")
        conn.unregister("incoming")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    (count,) = conn.execute(
        f"SELECT count(*) FROM {RAW_SCHEMA}.{table} WHERE date BETWEEN ? AND ?", [start, end]
    ).fetchone()
    return int(count), int(purged)


def query_frame(conn, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's rows as a polars frame (types inferred from every row: early rows may be all null)."""
    cursor = conn.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None)
