"""Shared pieces of the push adapter tests: an audit table in a DuckDB file, and plan rows."""

from __future__ import annotations

import duckdb
import pytest

from rl.bidding.audit import PushAudit
from rl.bidding.plan import PlanRow

PARTITION = "2025-03-02"


@pytest.fixture
def audit(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield PushAudit(connection)
    connection.close()


def plan_row(platform: str, campaign_id: int, **kwargs) -> PlanRow:
    defaults = dict(
        daily_budget=None,
        bid=None,
        current_budget=50.0,
        current_bid=2.0,
        policy_version="policy-7",
        data_partition=PARTITION,
    )
    return PlanRow(platform=platform, campaign_id=campaign_id, **{**defaults, **kwargs})


def audit_text(audit: PushAudit) -> str:
    """Everything in the audit table, as one string (to search for secrets)."""
    return "\n".join(repr(row) for row in audit.rows())
