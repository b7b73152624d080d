"""The demo ad platforms' ``FROM campaign_criterion`` answer: each search campaign's device and ad-schedule bid
modifiers as Google Ads reports them (API v26 ``CampaignCriterion`` rows).

As the real API reports them:
  * a DEVICE criterion per device, with Google's fixed criterion ids (30000 desktop, 30001 mobile, 30002 tablet)
    and ``bid_modifier`` the multiplier (1.3 = +30%; 0 = the device is excluded, −100%);
  * an AD_SCHEDULE criterion per hour block and weekday — a block on every weekday is seven criteria — with
    ``day_of_week``, ``start_hour``/``end_hour`` (end exclusive, 24 allowed) and ``start_minute``/``end_minute``
    (ZERO: the demo's blocks are whole hours), and the block's ``bid_modifier``. A campaign whose hour-block
    modifiers are all 1 has no ad schedule at all, as an account that never adjusted by hour (it runs every hour
    at its bid);
  * ``resource_name`` = ``customers/{customer}/campaignCriteria/{campaign_id}~{criterion_id}``.
Only search platforms (google_ads, microsoft_ads) have these criteria; a social account answers no rows.

Without a date the answer is the current state (the modifiers in force from the world's `today` on). With a
``segments.date`` range — a demo extension, like ``FROM ad_group``'s settings by date; the real API reports only the
current criteria — the answer is the modifiers that were in force on each day of the range that has happened, one
set of rows per day.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from rl.market.modifiers import block_of_hour
from rl.market.params import DEVICES
from rl.world.gaql import GaqlError, GaqlQuery

DEVICE_CRITERION_IDS = {"desktop": 30000, "mobile": 30001, "tablet": 30002}  # Google Ads' platform criteria
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
AD_SCHEDULE_ID_BASE = 1_000_000


def ad_schedule_criterion_id(weekday: int, start_hour: int) -> int:
    """The demo's id of the ad-schedule criterion for ISO weekday index `weekday` (0 = Monday) from `start_hour`
    (the real platform assigns an id when a schedule is created; the demo derives a stable one from the slot)."""
    return AD_SCHEDULE_ID_BASE + 100 * (weekday + 1) + start_hour


def criterion_rows(modifiers: pl.DataFrame, n_blocks: int) -> pl.DataFrame:
    """Criterion rows from modifier facts (date, campaign_id, dimension, index, bid_modifier), one column per
    GAQL criterion field (enums as names), plus campaign_id and date."""
    block_of_hour(n_blocks)  # refuses a number of blocks that does not divide the day
    width = 24 // n_blocks
    device = modifiers.filter(pl.col("dimension") == "device").with_columns(
        pl.col("index").replace_strict(dict(enumerate(DEVICES)), return_dtype=pl.Utf8).alias("_device")
    )
    device = device.with_columns(
        pl.col("_device").replace_strict(DEVICE_CRITERION_IDS, return_dtype=pl.Int64).alias("criterion_id"),
        pl.lit("DEVICE").alias("type"),
        pl.col("_device").str.to_uppercase().alias("device"),
        *[pl.lit(None, dtype=t).alias(c) for c, t in _SCHEDULE_NULLS.items()],
    )
    # no ad schedule where every block is at 1 (the campaign runs every hour at its bid)
    adjusted = (
        modifiers.filter((pl.col("dimension") == "hour") & (pl.col("bid_modifier") != 1.0))
        .select("date", "campaign_id")
        .unique()
    )
    hours = modifiers.filter(pl.col("dimension") == "hour").join(adjusted, on=["date", "campaign_id"], how="semi")
    schedule = pl.concat(
        [
            hours.with_columns(
                (ad_schedule_criterion_id(w, 0) + pl.col("index").cast(pl.Int64) * width).alias("criterion_id"),
                pl.lit("AD_SCHEDULE").alias("type"),
                pl.lit(None, dtype=pl.Utf8).alias("device"),
                pl.lit(day).alias("day_of_week"),
                (pl.col("index").cast(pl.Int64) * width).alias("start_hour"),
                ((pl.col("index").cast(pl.Int64) + 1) * width).alias("end_hour"),
                pl.lit("ZERO").alias("start_minute"),
                pl.lit("ZERO").alias("end_minute"),
            )
            for w, day in enumerate(WEEKDAYS)
        ]
    )
    cols = ["date", "campaign_id", "criterion_id", "type", "device", *_SCHEDULE_NULLS, "bid_modifier"]
    return pl.concat([device.select(cols), schedule.select(cols)])


_SCHEDULE_NULLS = {
    "day_of_week": pl.Utf8,
    "start_hour": pl.Int64,
    "end_hour": pl.Int64,
    "start_minute": pl.Utf8,
    "end_minute": pl.Utf8,
}
_FIELD_OF = {
    "criterion_id": "campaign_criterion.criterion_id",
    "type": "campaign_criterion.type",
    "device": "campaign_criterion.device.type",
    "day_of_week": "campaign_criterion.ad_schedule.day_of_week",
    "start_hour": "campaign_criterion.ad_schedule.start_hour",
    "end_hour": "campaign_criterion.ad_schedule.end_hour",
    "start_minute": "campaign_criterion.ad_schedule.start_minute",
    "end_minute": "campaign_criterion.ad_schedule.end_minute",
    "bid_modifier": "campaign_criterion.bid_modifier",
}


def criteria_report(
    q: GaqlQuery,
    query: str,
    bounds: tuple[dt.date | None, dt.date | None],
    history: pl.DataFrame,
    current: pl.DataFrame,
    today: dt.date,
    campaigns: dict[int, str],
    customer_id: str,
    n_blocks: int,
    condition_expr,
) -> pl.DataFrame:
    """The query's table, one column per GAQL field. `history`: the modifier facts of every simulated day;
    `current`: the modifiers in force from `today` on (same columns, any date); `campaigns`: the account's
    campaigns that have modifiers (search platforms; empty for a social account)."""
    lo, hi = bounds
    dated = lo is not None or hi is not None
    if dated and (lo is None or hi is None):
        raise GaqlError(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "the demo serves criteria by date for a finite segments.date range",
            "segments.date",
            max(query.find("segments.date"), 0),
        )
    if dated != ("segments.date" in q.fields):
        raise GaqlError(
            "EXPECTED_REFERENCED_FIELD_IN_SELECT_CLAUSE" if dated else "EXPECTED_FILTERS_ON_DATE_RANGE",
            "select segments.date together with a segments.date range (the modifiers in force per day), or neither "
            "(the current criteria)",
            "segments.date",
            max(query.find("segments.date"), 0),
        )
    ids = list(campaigns)
    if dated:
        source = history.filter(
            pl.col("campaign_id").is_in(ids) & pl.col("date").is_between(lo, min(hi, today - dt.timedelta(days=1)))
        )
    else:
        source = current.filter(pl.col("campaign_id").is_in(ids))
    rows = criterion_rows(source, n_blocks).rename({k: v for k, v in _FIELD_OF.items()})
    out = rows.rename({"campaign_id": "campaign.id", "date": "segments.date"}).with_columns(
        pl.col("campaign.id").replace_strict(campaigns, return_dtype=pl.Utf8, default=None).alias("campaign.name"),
        pl.lit("ENABLED").alias("campaign_criterion.status"),
        pl.format("customers/{}/campaigns/{}", pl.lit(customer_id), pl.col("campaign.id")).alias(
            "campaign.resource_name"
        ),
        pl.format(
            "customers/{}/campaignCriteria/{}~{}",
            pl.lit(customer_id),
            pl.col("campaign.id"),
            pl.col("campaign_criterion.criterion_id"),
        ).alias("campaign_criterion.resource_name"),
    )
    for cond in q.conditions:
        if cond.field != "segments.date":
            out = out.filter(condition_expr(cond).fill_null(False))
    order = [(f, d) for f, d in q.order_by]
    order += [(f, False) for f in ("campaign.id", "segments.date", "campaign_criterion.criterion_id")]
    out = out.sort([f for f, _ in order], descending=[d for _, d in order], nulls_last=True)
    return out.head(q.limit) if q.limit is not None else out
