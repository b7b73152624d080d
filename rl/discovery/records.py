"""The discovery record (`discovered_patterns`, DuckDB): one row per run of the pattern discovery, with the schema
version, the data window and the patterns themselves (JSON, `rl.discovery.schema.DiscoveredPatterns`)."""

from __future__ import annotations

from rl.discovery.schema import DiscoveredPatterns

TABLE = "discovered_patterns"
DDL = (
    f"CREATE TABLE IF NOT EXISTS main.{TABLE} (materialized_at TIMESTAMP, schema_version INTEGER, first_date DATE, "
    "last_date DATE, patterns JSON)"
)


class DiscoveryRecords:
    """The discovery record over one DuckDB connection."""

    def __init__(self, conn) -> None:
        self.conn = conn
        conn.execute(DDL)

    def record(self, patterns: DiscoveredPatterns, text: str) -> None:
        """Append one run's `patterns` (`text`: their JSON, as written to the artifact)."""
        self.conn.execute(
            f"INSERT INTO main.{TABLE} VALUES (now(), ?, ?, ?, ?)",
            [patterns.schema_version, patterns.first_date, patterns.last_date, text],
        )
