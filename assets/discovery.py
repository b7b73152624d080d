"""Discovery: what the account's own data says about it (segments, hour and weekday patterns, devices, channels with
uncertainty, conversion lag), computed by `rl.discovery` from the published marts only.

Stored as a versioned JSON artifact and a row in the warehouse; checks fail when the artifact does not validate
against its schema or when the patterns drift beyond the configured bounds since the previous materialization.
"""

import datetime as dt
import json

import dagster as dg
import duckdb as duckdb_client
from dagster_duckdb import DuckDBResource

from assets import _preview
from assets.warehouse import published_warehouse
from orchestration.environment import data_dir, published_warehouse_path
from rl.discovery.drift import DEFAULT_BOUNDS, drift, exceeds
from rl.discovery.engine import discover
from rl.discovery.plots import plot_patterns
from rl.discovery.records import DiscoveryRecords
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
    with duckdb_client.connect(str(published_warehouse_path()), read_only=True) as con:
        patterns = discover(con)
    text = patterns.model_dump_json(indent=2)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (folder / f"discovered_patterns-{stamp}.json").write_text(text)
    latest.write_text(text)
    with duckdb.get_connection() as conn:
        DiscoveryRecords(conn).record(patterns, text)
    valid, problem = _validates(text)
    measures = drift(previous, patterns) if previous is not None else {}
    over = exceeds(measures, config.drift_bounds) if measures else []
    png = plot_patterns(patterns, folder / "discovered_patterns.png")
    window = f"{patterns.first_date} .. {patterns.last_date}"
    return dg.MaterializeResult(
        metadata={
            "artifact": dg.MetadataValue.path(str(latest)),
            "window": window,
            "plot": _preview.png(png, "discovered patterns"),
            "campaigns": _preview.markdown(_campaign_rows(patterns), f"no campaign in the marts over {window}"),
            "segments": _preview.markdown(_segment_rows(patterns), f"no segment found over {window}"),
            "drift": dg.MetadataValue.json(measures or {"note": "first materialization: nothing to compare"}),
        },
        check_results=[
            dg.AssetCheckResult(check_name=VALID, passed=valid, metadata={"problem": problem or "none"}),
            dg.AssetCheckResult(check_name=DRIFT, passed=not over, metadata={"exceeded": ", ".join(over) or "none"}),
        ],
    )


def _interval(i) -> str:
    return f"{i.lo:.2f} – {i.hi:.2f}" if i is not None else "no conversions"


def _campaign_rows(p: DiscoveredPatterns) -> list[dict]:
    """Per campaign: what it cost per conversion (with its 90% interval) and how late its conversions arrive."""
    lags = {(c.platform, c.campaign_id): c for c in p.conversion_lag.campaigns}
    rows = []
    for c in p.channels.campaigns:
        lag = lags.get((c.platform, c.campaign_id))
        mean_lag = lag.mean_lag_days if lag is not None else None
        within = lag.share_within_7_days if lag is not None else None
        rows.append(
            {
                "campaign": f"{c.campaign_id} {c.campaign_name or ''}".strip(),
                "platform": c.platform,
                "spend": c.spend,
                "conversions": c.conversions,
                "cpa": f"{c.cpa:.2f}" if c.cpa is not None else "no conversions",
                "cpa_90%": _interval(c.cpa_interval),
                "mean_lag_days": f"{mean_lag:.1f}" if mean_lag is not None else "no mature conversions",
                "lag_under_7d": f"{within:.0%}" if within is not None else "no mature conversions",
            }
        )
    return rows


def _segment_rows(p: DiscoveredPatterns) -> list[dict]:
    return [
        {
            "segment": s.label,
            "units": s.size,
            "session_share": f"{s.session_share:.0%}",
            "conversion_rate": f"{s.conversion_rate:.2%}" if s.conversion_rate is not None else "no sessions",
            "description": s.description,
        }
        for s in p.segments.segments
    ]


def _validates(text: str) -> tuple[bool, str | None]:
    """Re-read the artifact exactly as a consumer would."""
    try:
        DiscoveredPatterns.model_validate(json.loads(text))
    except Exception as err:  # noqa: BLE001 — any failure to read back is the check failing, with its reason
        return False, f"{type(err).__name__}: {err}"
    return True, None


DISCOVERY_ASSETS = [discovered_patterns]
