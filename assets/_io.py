"""Small DuckDB and file I/O helpers the assets share: keep what was received, replace a date window in one
transaction, store and read back a day's bid plan. No business logic lives here (the UI previews are
assets/_preview.py's)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from rl.bidding.checks import PlanLimits
from rl.reports.ingest import RAW_SCHEMAS

if TYPE_CHECKING:
    from rl.bidding import planner

RAW_SCHEMA = "raw"
PLAN_TABLE = "bid_plan"
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


PLAN_DDL = f"""
CREATE TABLE IF NOT EXISTS {PLAN_TABLE} (
    data_partition VARCHAR NOT NULL,
    plan_date DATE NOT NULL,
    platform VARCHAR NOT NULL,
    campaign_id BIGINT NOT NULL,
    campaign_name VARCHAR,
    bid_kind VARCHAR,
    daily_budget DOUBLE,
    bid DOUBLE,
    current_budget DOUBLE,
    current_bid DOUBLE,
    reference_budget DOUBLE,
    reference_bid DOUBLE,
    max_bid DOUBLE,
    hour_modifiers VARCHAR,  -- JSON: one multiplier per hour block (search campaigns), null: not set
    budget_target VARCHAR,
    bid_targets VARCHAR,
    policy_version VARCHAR NOT NULL,
    policy_source VARCHAR NOT NULL,
    fallback_reason VARCHAR,
    account_daily_budget DOUBLE NOT NULL,
    max_step DOUBLE NOT NULL,
    budget_floor DOUBLE NOT NULL,
    created_at_utc TIMESTAMP NOT NULL,
    device_modifiers VARCHAR,  -- JSON: mobile, desktop, tablet multipliers, null: not set
    current_device_modifiers VARCHAR,
    current_hour_modifiers VARCHAR
)
"""
# columns added after the table's first version (a warehouse made before them gets them, null, on the next write)
PLAN_ADDED_COLUMNS = ("device_modifiers", "current_device_modifiers", "current_hour_modifiers")


def _plan_table(conn) -> None:
    conn.execute(PLAN_DDL)
    for column in PLAN_ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE {PLAN_TABLE} ADD COLUMN IF NOT EXISTS {column} VARCHAR")


def _json(values) -> str | None:
    return None if values is None else json.dumps([float(v) for v in values])


def _tuple(text: str | None) -> tuple[float, ...] | None:
    return None if text is None else tuple(float(v) for v in json.loads(text))


def query_frame(conn, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's rows as a polars frame (types inferred from every row: early rows may be all null)."""
    cursor = conn.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None)


def write_plan(conn, partition: str, plan: planner.Plan) -> None:
    """Replace the partition's rows of the plan table with `plan`, in one transaction."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _plan_table(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM {PLAN_TABLE} WHERE data_partition = ?", [partition])
        for e in plan.entries:
            values = {
                "data_partition": e.data_partition,
                "plan_date": e.plan_date,
                "platform": e.platform,
                "campaign_id": e.campaign_id,
                "campaign_name": e.campaign_name,
                "bid_kind": e.bid_kind,
                "daily_budget": e.daily_budget,
                "bid": e.bid,
                "current_budget": e.current_budget,
                "current_bid": e.current_bid,
                "reference_budget": e.reference_budget,
                "reference_bid": e.reference_bid,
                "max_bid": e.max_bid,
                "device_modifiers": _json(e.device_modifiers),
                "hour_modifiers": _json(e.hour_modifiers),
                "current_device_modifiers": _json(e.current_device_modifiers),
                "current_hour_modifiers": _json(e.current_hour_modifiers),
                "budget_target": e.budget_target,
                "bid_targets": ";".join(e.bid_targets),
                "policy_version": e.policy_version,
                "policy_source": e.policy_source,
                "fallback_reason": e.fallback_reason,
                "account_daily_budget": plan.limits.daily_budget,
                "max_step": plan.limits.max_step,
                "budget_floor": plan.limits.budget_floor,
                "created_at_utc": now,
            }
            conn.execute(
                f"INSERT INTO {PLAN_TABLE} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_plan(conn, partition: str) -> tuple[list[planner.PlanEntry], PlanLimits | None]:
    """The stored plan of a partition and the limits it was made under (None if there is no plan)."""
    _plan_table(conn)
    from rl.bidding.planner import PlanEntry  # here: the planner imports the policies (and torch); ingestion needs none

    stored = query_frame(
        conn, f"SELECT * FROM {PLAN_TABLE} WHERE data_partition = ? ORDER BY platform, campaign_id", [partition]
    )
    if stored.is_empty():
        return [], None
    entries = []
    for r in stored.to_dicts():
        entries.append(
            PlanEntry(
                data_partition=r["data_partition"],
                plan_date=r["plan_date"].isoformat(),
                platform=r["platform"],
                campaign_id=int(r["campaign_id"]),
                campaign_name=r["campaign_name"],
                bid_kind=r["bid_kind"],
                daily_budget=r["daily_budget"],
                bid=r["bid"],
                current_budget=r["current_budget"],
                current_bid=r["current_bid"],
                reference_budget=r["reference_budget"],
                reference_bid=r["reference_bid"],
                max_bid=r["max_bid"],
                policy_version=r["policy_version"],
                policy_source=r["policy_source"],
                fallback_reason=r["fallback_reason"],
                budget_target=r["budget_target"],
                bid_targets=tuple(t for t in (r["bid_targets"] or "").split(";") if t),
                device_modifiers=_tuple(r["device_modifiers"]),
                hour_modifiers=_tuple(r["hour_modifiers"]),
                current_device_modifiers=_tuple(r["current_device_modifiers"]),
                current_hour_modifiers=_tuple(r["current_hour_modifiers"]),
            )
        )
    first = stored.row(0, named=True)
    limits = PlanLimits(
        daily_budget=first["account_daily_budget"],
        max_bids={(e.platform, e.campaign_id): e.max_bid for e in entries},
        max_step=first["max_step"],
        budget_floor=first["budget_floor"],
    )
    return entries, limits
