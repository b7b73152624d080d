"""The calibration record (`market_calibrations`, DuckDB): one row per fit of the market simulator, with its params
hash, data window, whether the backtest met its goal and the whole calibration summary (JSON)."""

from __future__ import annotations

import datetime as dt

TABLE = "market_calibrations"
DDL = (
    f"CREATE TABLE IF NOT EXISTS main.{TABLE} (materialized_at TIMESTAMP, params_hash VARCHAR, first_date DATE, "
    "last_date DATE, backtest_passed BOOLEAN, calibration JSON)"
)


class CalibrationRecords:
    """The calibration record over one DuckDB connection."""

    def __init__(self, conn) -> None:
        self.conn = conn
        conn.execute(DDL)

    def record(self, params_hash: str, first: dt.date, last: dt.date, backtest_passed: bool, summary: str) -> None:
        self.conn.execute(
            f"INSERT INTO main.{TABLE} VALUES (now(), ?, ?, ?, ?, ?)",
            [params_hash, first, last, backtest_passed, summary],
        )
