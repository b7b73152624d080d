"""The bid plan table (`bid_plan`, DuckDB): one row per campaign and data partition, with the limits the plan was
made under. `daily_bid_plan` writes a partition's rows (replacing them) and the checks and `bid_push` read them back:
the checks judge what was stored, not what was computed."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from rl.bidding.checks import PlanLimits
from rl.bidding.planner import Plan, PlanEntry

PLAN_TABLE = "bid_plan"


def query_frame(conn, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's rows as a polars frame (types inferred from every row: early rows may be all null)."""
    cursor = conn.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None)


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


def write_plan(conn, partition: str, plan: Plan) -> None:
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


def read_plan(conn, partition: str) -> tuple[list[PlanEntry], PlanLimits | None]:
    """The stored plan of a partition and the limits it was made under (None if there is no plan)."""
    _plan_table(conn)
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


class PlanStore:
    """The plan table over one DuckDB connection (as `rl.bidding.audit.PushAudit` is the audit's)."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def write(self, partition: str, plan: Plan) -> None:
        write_plan(self.conn, partition, plan)

    def read(self, partition: str) -> tuple[list[PlanEntry], PlanLimits | None]:
        return read_plan(self.conn, partition)
