"""Small I/O helpers the ingestion assets share: keep what was received, replace a date window in DuckDB in one
transaction, and render a preview for the UI. No business logic lives here."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import duckdb
import polars as pl

from rl.reports.ingest import RAW_SCHEMAS

RAW_SCHEMA = "raw"
_DUCKDB_TYPES = {pl.Date: "DATE", pl.Int8: "TINYINT", pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Utf8: "VARCHAR"}


def keep_raw(root: Path, table: str, start: dt.date, end: dt.date, run_id: str, name: str, text: str) -> Path:
    """Write a received response under root/raw/<table>/<start>_<end>/<run>-<name>.jsonl.gz before it is parsed,
    so nothing received is lost even when parsing or checks fail."""
    folder = root / "raw" / table / f"{start.isoformat()}_{end.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id[:8]}-{name}.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


def ensure_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    cols = ", ".join(f"{c} {_DUCKDB_TYPES[type(t)]}" for c, t in RAW_SCHEMAS[table].items())
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{table} ({cols})")


def replace_window(
    conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, start: dt.date, end: dt.date
) -> int:
    """Delete the table's rows dated start..end and insert `frame`, in one transaction: a failure leaves the table
    as it was. Returns the rows now in the window."""
    ensure_table(conn, table)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM {RAW_SCHEMA}.{table} WHERE date BETWEEN ? AND ?", [start, end])
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
    return int(count)


def markdown_preview(frame: pl.DataFrame, rows: int = 10) -> str:
    """The first rows of a table as Markdown, for asset metadata."""
    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for rec in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in rec) + " |")
    return "\n".join(lines)
