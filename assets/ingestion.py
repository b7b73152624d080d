"""Ingestion: what GA4 and the ad platforms report, one day per partition, into DuckDB's `raw` schema.

Every run re-pulls a lookback before its first partition (3 days; 30 for the click-date conversion reports) over the
days already loaded (GA4 and the platforms keep revising recent days; a backfill's first partition is where its
table starts; the lag report counts the delivery report's days, so both click-date reports re-pull one window),
keeps every response page under the data directory as it arrives — also when the fetch fails part way — checks the
window (only dates asked for, keys unique, no negative count, no empty day, only registered campaigns) and then
replaces the window in one transaction. A backfill of any length is one run.

Recovery (`recover_window_job`, `IngestionConfig.recover`): the partitions asked for are re-pulled without
lookback, and rows dated outside the partitions altogether (a phantom day no report can have) are deleted in the
same transaction; the warehouse is then rebuilt. No one edits DuckDB by hand.
"""

import datetime as dt
import warnings
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets import _preview
from assets._io import keep_raw, loaded_days, replace_window
from assets.partitions import CONVERSION_LOOKBACK_DAYS, DAILY_PARTITIONS, LOOKBACK_DAYS
from orchestration.environment import data_dir
from orchestration.resources.ads import AdsReport, AdsReportingResource, batches_to_json_lines
from orchestration.resources.ga4 import GA4Resource, pages_to_json_lines
from rl.campaign_registry import CampaignRegistry
from rl.sources import ingest

# BackfillPolicy is marked beta in Dagster 1.13; we rely on single-run backfills deliberately, so the warning, raised
# once per decorated asset at import, only adds noise to every process that loads the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

INGESTION = dict(
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",  # DuckDB has one writer: every asset that writes shares this pool (limit 1)
    group_name="ingestion",
)


class IngestionConfig(dg.Config):
    """`recover`: re-pull exactly the partitions asked for (no lookback) and delete the table's rows dated outside
    the daily partitions (days no report can have). Set by `recover_window_job`."""

    recover: bool = False


def _window(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    table: str,
    lookback: int,
    recover: bool,
    loaded_from: str | None = None,
) -> tuple[dt.date, dt.date, dt.date]:
    """(window start incl. the lookback over days already loaded, first partition day, last partition day). The
    days loaded are `loaded_from`'s when given: the table whose days say what this report already covers."""
    keys = context.partition_key_range
    for key in (keys.start, keys.end):
        # A run launched with a hand-written partition tag is not checked by Dagster: refuse it here, by name.
        if not DAILY_PARTITIONS.has_partition_key(key):
            first_key = DAILY_PARTITIONS.get_first_partition_key()
            last_key = DAILY_PARTITIONS.get_last_partition_key()
            raise ValueError(f"partition {key!r} is not one of the daily partitions ({first_key} .. {last_key})")
    first, last = dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end)
    earliest = max(first - dt.timedelta(days=lookback), DAILY_PARTITIONS.start.date())
    if recover or earliest >= first or not _warehouse_exists(duckdb):
        return first, first, last
    with duckdb.get_connection() as conn:
        loaded = loaded_days(conn, loaded_from or table, earliest, first - dt.timedelta(days=1))
    return ingest.lookback_start(first, earliest, loaded), first, last


def _warehouse_exists(duckdb: DuckDBResource) -> bool:
    """False when the warehouse is a local file not created yet (nothing is loaded; its directory may not exist)."""
    database = str(duckdb.database)
    return database == ":memory:" or database.startswith("md:") or Path(database).exists()


def _partition_span() -> tuple[dt.date, dt.date]:
    """The first and last day of the daily partitions: no report has a day outside them."""
    return (
        dt.date.fromisoformat(DAILY_PARTITIONS.get_first_partition_key()),
        dt.date.fromisoformat(DAILY_PARTITIONS.get_last_partition_key()),
    )


def _write(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    table: str,
    frame: pl.DataFrame,
    window: tuple[dt.date, dt.date, dt.date],
    raw_paths: list[Path],
    registry: CampaignRegistry | None = None,
    extra: dict | None = None,
    recover: bool = False,
) -> dg.MaterializeResult:
    start, first, last = window
    # Every day of the window is replaced, lookback included: an empty re-pull must not wipe a day already loaded.
    ingest.check(table, frame, ingest.days(start, last), registry, window=(start, last))
    with duckdb.get_connection() as conn:
        rows, purged = replace_window(conn, table, frame, start, last, _partition_span() if recover else None)
    context.log.info(f"{table}: {rows} rows for {start}..{last}" + (f"; {purged} stray rows deleted" if purged else ""))
    by_day = frame.group_by("date").len().sort("date")
    absent = f"no rows in window {start}..{last}"
    preview = {
        "raw_responses": _preview.bullets([f"`{p}`" for p in raw_paths], "no response kept"),
        "preview": _preview.markdown(frame.sort("date", descending=True, maintain_order=True), absent),
        "per_day": _preview.markdown(_day_totals(frame), absent),
    }
    recovery = {"stray_rows_deleted": dg.MetadataValue.int(purged)} if recover else {}
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "window": f"{start}..{last} (partitions {first}..{last}, {(first - start).days}-day lookback)",
            "days": dg.MetadataValue.int(by_day.height),
            "min_rows_per_day": dg.MetadataValue.int(int(by_day["len"].min() or 0)),
            **recovery,
            **_preview.on_last_partition(context, preview),
            **(extra or {}),
        }
    )


def _day_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows and the sum of each additive figure per day, latest day first (identifiers, hours, shares and bids are
    not additive and left out)."""
    skip = ("campaign_id", "hour", "ad_group_id")
    additive = [
        c for c, t in frame.schema.items() if t.is_numeric() and c not in skip and "share" not in c and "bid" not in c
    ]
    return (
        frame.group_by("date")
        .agg(pl.len().alias("rows"), *[pl.col(c).sum() for c in additive])
        .sort("date", descending=True)
    )


def _ga4_asset(table: str, dimensions: dict[str, str], metrics: dict[str, str], description: str):
    @dg.asset(name=table, description=description, kinds={"ga4", "duckdb"}, **INGESTION)
    def _asset(
        context: dg.AssetExecutionContext, config: IngestionConfig, ga4: GA4Resource, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        window = _window(context, duckdb, table, LOOKBACK_DAYS, config.recover)
        received: list = []
        try:
            report = ga4.fetch_report(list(dimensions), list(metrics), window[0], window[2], context.log, received)
        except BaseException:  # keep the pages that did arrive (named "partial"), then fail as the fetch did
            if received:
                keep_raw(
                    data_dir(),
                    table,
                    window[0],
                    window[2],
                    context.run_id,
                    "ga4-partial",
                    pages_to_json_lines(received),
                )
            raise
        raw = keep_raw(data_dir(), table, window[0], window[2], context.run_id, "ga4", report.to_json_lines())
        frame = ingest.from_ga4(report.frame(list(dimensions), list(metrics)), dimensions, metrics, table)
        quota = report.quota or {}
        extra = {"api_calls": dg.MetadataValue.int(report.attempts)}
        for name, figures in quota.items():
            extra[f"quota_{name}_remaining"] = dg.MetadataValue.int(int(figures["remaining"]))
        return _write(context, duckdb, table, frame, window, [raw], extra=extra, recover=config.recover)

    return _asset


ga4_sessions = _ga4_asset(
    "ga4_sessions",
    ingest.GA4_SESSIONS_DIMENSIONS,
    ingest.GA4_SESSIONS_METRICS,
    "GA4 sessions, users and new users by session date × hour × channel group × source/medium × campaign × device.",
)
ga4_conversions = _ga4_asset(
    "ga4_conversions",
    ingest.GA4_CONVERSIONS_DIMENSIONS,
    ingest.GA4_CONVERSIONS_METRICS,
    "GA4 key events and revenue by conversion date × channel group × source/medium × campaign × device "
    "(last-click attribution, as GA4 reports it).",
)


def _ads_asset(table: str, fetch: str, description: str, lookback: int = LOOKBACK_DAYS, loaded_from: str | None = None):
    @dg.asset(name=table, description=description, kinds={"googleads", "duckdb"}, **INGESTION)
    def _asset(
        context: dg.AssetExecutionContext,
        config: IngestionConfig,
        ads: AdsReportingResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        window = _window(context, duckdb, table, lookback, config.recover, loaded_from)
        frames, raws, request_ids = [], [], []
        for platform in sorted(ads.accounts()):
            received: list = []
            try:
                report: AdsReport = getattr(ads, fetch)(platform, window[0], window[2], received)
            except BaseException:  # keep the batches that did arrive, then fail as the fetch did
                if received:
                    text = batches_to_json_lines(received)
                    keep_raw(data_dir(), table, window[0], window[2], context.run_id, f"{platform}-partial", text)
                raise
            raws.append(
                keep_raw(data_dir(), table, window[0], window[2], context.run_id, platform, report.to_json_lines())
            )
            frames.append(ingest.from_ads(report.frame(), platform, table))
            request_ids.extend(report.request_ids)
        frame = pl.concat(frames)
        extra = {
            "platforms": ", ".join(sorted(ads.accounts())),
            "request_ids": ", ".join(sorted(set(request_ids))) or "the platforms returned no request id",
        }
        return _write(
            context, duckdb, table, frame, window, raws, CampaignRegistry.load(), extra, recover=config.recover
        )

    return _asset


ad_performance = _ads_asset(
    "ad_performance",
    "performance",
    "Ad platform delivery per campaign × date × hour × device: impressions, clicks, cost, conversions by click date "
    "(still maturing for recent days: re-pulled for 30 days), impression share.",
    lookback=CONVERSION_LOOKBACK_DAYS,
)
ad_conversion_lag = _ads_asset(
    "ad_conversion_lag",
    "conversion_lag",
    "Conversions by click date × conversion lag bucket per campaign, as the ad platforms report them: summed over "
    "the buckets, the delivery report's click-date conversions. Re-pulled over the same window as the delivery "
    "report (30 days over the days it has loaded), so the two always describe the same moment.",
    lookback=CONVERSION_LOOKBACK_DAYS,
    # A click day has lag rows only once it has conversions: the newest click days (conversions come a day or more
    # after the click) and quiet days have none, yet are loaded. Counted on its own rows, the lookback stopped at the
    # first such day (every loop day: the day before), and the older click days kept conversions the delivery
    # report had since revised; counted on the delivery report's days, both reports re-pull the same window.
    loaded_from="ad_performance",
)

ad_impression_share = _ads_asset(
    "ad_impression_share",
    "impression_share",
    "Search impression share per campaign × date, as the platforms compute it for the whole day (impression share "
    "is not additive over hours, and hours without impressions are not reported at all); null for social.",
)
ad_settings = _ads_asset(
    "ad_settings",
    "settings",
    "The daily budget and bid (max CPC for search, CPM bid cap for social) in force per campaign × date: what the "
    "simulator is calibrated and backtested under. Pulled for the partition days only (no lookback): the platforms "
    "report a setting's current value.",
    lookback=0,
)

ad_modifiers = _ads_asset(
    "ad_modifiers",
    "modifiers",
    "The device and ad-schedule (hour-of-day) bid modifiers in force per campaign × date, as the search platforms "
    "report their campaign criteria (DEVICE: one per device; AD_SCHEDULE: one per hour block and weekday). Social "
    "platforms have none. Pulled for the partition days only, like the settings.",
    lookback=0,
)

INGESTION_ASSETS = [
    ga4_sessions,
    ga4_conversions,
    ad_performance,
    ad_conversion_lag,
    ad_impression_share,
    ad_settings,
    ad_modifiers,
]
