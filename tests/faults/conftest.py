"""Fault-injection tests: the real push resources and ingestion over fake platform servers, with faults injected
at the SDK's lowest network layer (`benchmarks.fakes`)."""

from __future__ import annotations

import duckdb
import pytest

from rl.bidding.audit import PushAudit


@pytest.fixture
def audit():
    connection = duckdb.connect()
    yield PushAudit(connection)
    connection.close()
