"""Discovery: what the account's own data says about it (segments, hour and weekday patterns, devices, channels with
uncertainty, conversion lag), computed by `rl.discovery` from the published marts only.

Stored as a versioned JSON artifact and a row in the warehouse; checks fail when the artifact does not validate
against its schema or when the patterns drift beyond the configured bounds since the previous materialization.
"""

import base64
import datetime as dt
import json

import dagster as dg
import duckdb as duckdb_client
from dagster_duckdb import DuckDBResource

from assets.warehouse import published_warehouse
from orchestration.environment import data_dir
from rl.discovery.drift import DEFAULT_BOUNDS, drift, exceeds
from rl.discovery.engine import discover
from rl.discovery.plots import plot_patterns
from rl.discovery.schema import DiscoveredPatterns

VALID = "artifact_validates"
DRIFT = "drift_within_bounds"


class DiscoveryConfig(dg.Config):
    """Drift bounds per measure name or fnmatch pattern (see `rl.discovery.drift`); a measure no bound matches is
    reported, not checked."""

    drift_bounds: dict[str, float] = dict(DEFAULT_BOUNDS)


@dg.asset(
    deps=[published_warehouse],
    group_name="discovery",
    kinds={"python", "duckdb"},
    pool="duckdb_writer",  # it records its result in the warehouse
    check_specs=[
        dg.AssetCheckSpec(VALID, asset="discovered_patterns", blocking=True),
        dg.AssetCheckSpec(DRIFT, asset="discovered_patterns", blocking=True),
    ],
)
def discovered_patterns(
    context: dg.AssetExecutionContext, config: DiscoveryConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Patterns worth trusting, from the marts of the published read-only warehouse copy."""
    folder = data_dir() / "discovery"
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / "discovered_patterns.json"
    previous = DiscoveredPatterns.model_validate_json(latest.read_text()) if latest.exists() else None
    with duckdb_client.connect(str(data_dir() / "published" / "warehouse.duckdb"), read_only=True) as con:
        patterns = discover(con)
    text = patterns.model_dump_json(indent=2)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (folder / f"discovered_patterns-{stamp}.json").write_text(text)
    latest.write_text(text)
    with duckdb.get_connection() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS main.discovered_patterns (materialized_at TIMESTAMP, schema_version "
            "INTEGER, first_date DATE, last_date DATE, patterns JSON)"
        )
        conn.execute(
            "INSERT INTO main.discovered_patterns VALUES (now(), ?, ?, ?, ?)",
            [patterns.schema_version, patterns.first_date, patterns.last_date, text],
        )
    valid, problem = _validates(text)
    measures = drift(previous, patterns) if previous is not None else {}
    over = exceeds(measures, config.drift_bounds) if measures else []
    png = plot_patterns(patterns, folder / "discovered_patterns.png")
    image = base64.b64encode(png.read_bytes()).decode()
    return dg.MaterializeResult(
        metadata={
            "artifact": dg.MetadataValue.path(str(latest)),
            "window": f"{patterns.first_date} .. {patterns.last_date}",
            "plot": dg.MetadataValue.md(f"![discovered patterns](data:image/png;base64,{image})"),
            "drift": dg.MetadataValue.json(measures or {"note": "first materialization: nothing to compare"}),
        },
        check_results=[
            dg.AssetCheckResult(check_name=VALID, passed=valid, metadata={"problem": problem or "none"}),
            dg.AssetCheckResult(check_name=DRIFT, passed=not over, metadata={"exceeded": ", ".join(over) or "none"}),
        ],
    )


def _validates(text: str) -> tuple[bool, str | None]:
    """Re-read the artifact exactly as a consumer would."""
    try:
        DiscoveredPatterns.model_validate(json.loads(text))
    except Exception as err:  # noqa: BLE001 — any failure to read back is the check failing, with its reason
        return False, f"{type(err).__name__}: {err}"
    return True, None


DISCOVERY_ASSETS = [discovered_patterns]
