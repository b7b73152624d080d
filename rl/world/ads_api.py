"""The demo market's ad platforms, answering Google Ads Query Language (GAQL) ``campaign`` reports (and the settings
in force: ``FROM ad_group`` here, ``FROM campaign_criterion`` in `rl.world.criteria`).

The demo world logs each platform's delivery (impressions, clicks, spend, auctions the campaign
could have entered) by day, hour and device, and each ad-attributed conversion by the day of the
CLICK that led to it. This module answers a GAQL query over those logs with the Google Ads SDK's own
``GoogleAdsRow`` / ``SearchGoogleAdsStreamResponse`` messages (API v26), so reporting code written
for Google Ads runs unchanged on the demo. Every platform (Meta, TikTok, Microsoft Ads too) is served
in Google Ads' shape.

Reporting rules copied from Google Ads:
  * conversions are credited to the click date and only count once they have happened (before
    ``today``), so recent days keep maturing; ``metrics.conversions`` is a float;
  * ``segments.conversion_lag_bucket`` may only be combined with conversion metrics
    (PROHIBITED_SEGMENT_WITH_METRIC_IN_SELECT_OR_WHERE_CLAUSE otherwise);
  * selecting ``segments.date`` requires a finite date range in WHERE (EXPECTED_FILTERS_ON_DATE_RANGE);
  * ``DURING LAST_N_DAYS`` ranges exclude today; rows without any activity are not returned;
  * ``metrics.search_impression_share`` exists only for search campaigns and values below 10% are
    reported as 0.0999; ``campaign.resource_name`` is always filled.
Demo choices: data for ``today`` does not exist yet (the world's today has not happened); search
platforms (google_ads, microsoft_ads) are SEARCH campaigns, social platforms (meta, tiktok) are
DEMAND_GEN, Google's closest equivalent to audience-targeted feed ads; conversions lagging 60 days
or more fall in SIXTY_TO_NINETY_DAYS.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import re

import polars as pl
from google.ads.googleads.v26.enums import (
    ConversionLagBucketEnum,
)
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsStreamResponse,
)
from google.protobuf.field_mask_pb2 import FieldMask

from rl.world.criteria import criteria_report

# GaqlError and parse_gaql are re-exported: callers catch and parse through this module.
from rl.world.gaql import (  # noqa: F401
    DELIVERY_METRICS,
    ENUMS,
    METRICS,
    SEGMENTS,
    Condition,
    GaqlError,
    GaqlQuery,
    parse_gaql,
)

SEARCH_PLATFORMS = frozenset({"google_ads", "microsoft_ads"})
CHANNEL_TYPE_BY_PLATFORM = {
    "google_ads": "SEARCH",
    "microsoft_ads": "SEARCH",
    "meta": "DEMAND_GEN",
    "tiktok": "DEMAND_GEN",
}
STREAM_BATCH = 10_000
_LAG_NAMES = [b.name for b in ConversionLagBucketEnum.ConversionLagBucket][2:]  # skip UNSPECIFIED, UNKNOWN
_LAG_UPPER = [*range(1, 15), 21, 30, 45, 60]
_LAG_BUCKET = {d: _LAG_NAMES[bisect.bisect_right(_LAG_UPPER, d)] for d in range(61)}


def _during(token: tuple[str, str, int], today: dt.date) -> tuple[dt.date, dt.date]:
    """A predefined GAQL date range; all of them but TODAY and THIS_MONTH end yesterday."""
    name, yesterday, first = token[1].upper(), today - dt.timedelta(days=1), today.replace(day=1)
    if m := re.fullmatch(r"LAST_(7|14|30)_DAYS", name):
        return today - dt.timedelta(days=int(m.group(1))), yesterday
    ranges = {
        "TODAY": (today, today),
        "YESTERDAY": (yesterday, yesterday),
        "THIS_MONTH": (first, today),
        "LAST_MONTH": ((first - dt.timedelta(days=1)).replace(day=1), first - dt.timedelta(days=1)),
    }
    if name not in ranges:
        raise GaqlError("INVALID_VALUE_WITH_DURING_OPERATOR", f"unknown date range {name}", token[1], token[2])
    return ranges[name]


def _date_bounds(q: GaqlQuery, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    lo = hi = None
    conds = [c for c in q.conditions if c.field == "segments.date"]
    for c in conds:
        a, b = _during(c.values[0], today) if c.op == "DURING" else (c.values[0], c.values[-1])
        a = None if c.op in ("<", "<=") else a + dt.timedelta(days=c.op == ">")
        b = None if c.op in (">", ">=") else b - dt.timedelta(days=c.op == "<")
        lo = a if lo is None or (a is not None and a > lo) else lo
        hi = b if hi is None or (b is not None and b < hi) else hi
    if lo is not None and hi is not None and lo > hi:
        raise GaqlError(
            "DATE_RANGE_TOO_NARROW", f"start date {lo} is after end date {hi}", "segments.date", conds[0].position
        )
    return lo, hi


def _validate(q: GaqlQuery, query: str) -> None:
    if "segments.conversion_lag_bucket" in q.fields:
        for name in q.fields + [c.field for c in q.conditions]:
            if name in DELIVERY_METRICS:
                raise GaqlError(
                    "PROHIBITED_SEGMENT_WITH_METRIC_IN_SELECT_OR_WHERE_CLAUSE",
                    f"segment 'segments.conversion_lag_bucket' cannot be selected with metric '{name}'",
                    name,
                    query.find(name),
                )
    for name, pos in [(c.field, c.position) for c in q.conditions] + [(f, query.find(f)) for f, _ in q.order_by]:
        if name in SEGMENTS and name != "segments.date" and name not in q.fields:
            raise GaqlError("EXPECTED_REFERENCED_FIELD_IN_SELECT_CLAUSE", f"{name} must also be selected", name, pos)


def _condition_expr(c: Condition) -> pl.Expr:
    col = pl.col(c.field)
    if c.op in ("IN", "NOT IN"):
        return col.is_in(list(c.values)) if c.op == "IN" else ~col.is_in(list(c.values))
    v = c.values[0]
    return {"=": col == v, "!=": col != v, "<": col < v, "<=": col <= v, ">": col > v, ">=": col >= v}[c.op]


_SUMS = {
    "metrics.impressions": "impressions",
    "metrics.clicks": "clicks",
    "metrics.cost_micros": "cost_micros",
    "eligible": "eligible_impressions",
}


def _activity(
    ads: pl.DataFrame,
    conv: pl.DataFrame,
    segs: list[str],
    ids: pl.Series,
    window: pl.Expr,
    today: dt.date,
    platform: str,
) -> pl.DataFrame:
    """Delivery summed and matured conversions counted per campaign and selected segment, by click date."""
    seen = (
        (pl.col("platform") == platform)
        & pl.col("campaign_id").is_in(ids.implode())
        & (pl.col("segments.date") < today)
    )
    renames = {"hour": "segments.hour", "device": "segments.device"}
    a = ads.rename({"date": "segments.date", **renames}).filter(seen & window)
    c = conv.rename({"click_date": "segments.date", "click_hour": "segments.hour", "device": "segments.device"})
    c = c.filter(seen & window & (pl.col("conv_date") < today)).with_columns(
        pl.col("lag_days")
        .clip(0, 60)
        .replace_strict(_LAG_BUCKET, return_dtype=pl.Utf8)
        .alias("segments.conversion_lag_bucket")
    )
    keys = ["campaign_id"] + segs
    cv = c.group_by(keys).agg(
        pl.len().cast(pl.Float64).alias("metrics.conversions"),
        pl.col("value").sum().cast(pl.Float64).alias("metrics.conversions_value"),
    )
    if "segments.conversion_lag_bucket" in segs:
        out = cv.with_columns([pl.lit(0, pl.Int64).alias(k) for k in _SUMS])
    else:
        av = a.group_by(keys).agg([pl.col(v).sum().cast(pl.Int64).alias(k) for k, v in _SUMS.items()])
        out = av.join(cv, on=keys, how="full", coalesce=True)
    metric_cols = [*_SUMS, "metrics.conversions", "metrics.conversions_value"]
    out = out.with_columns(pl.col(metric_cols).fill_null(0)).rename({"campaign_id": "campaign.id"})
    if "segments.device" in out.columns:
        out = out.with_columns(pl.col("segments.device").str.to_uppercase())
    # auctions entered without being shown are not activity: such rows are not reported
    return out.filter(pl.any_horizontal([pl.col(m) != 0 for m in metric_cols if m != "eligible"]))


def _report(
    q: GaqlQuery,
    query: str,
    ads: pl.DataFrame,
    conv: pl.DataFrame,
    today: dt.date,
    platform: str,
    campaigns: dict[int, str],
    customer_id: str,
) -> pl.DataFrame:
    """The query's result table, one column per GAQL field (segments and enums as names)."""
    if platform not in CHANNEL_TYPE_BY_PLATFORM:
        raise ValueError(f"unknown platform {platform!r}; expected one of {sorted(CHANNEL_TYPE_BY_PLATFORM)}")
    _validate(q, query)
    lo, hi = _date_bounds(q, today)
    if "segments.date" in q.fields and (lo is None or hi is None):
        raise GaqlError(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "selecting segments.date requires a finite date range in WHERE",
            "segments.date",
            query.find("segments.date"),
        )
    segs = [s for s in SEGMENTS if s in q.fields]
    ids = pl.Series(list(campaigns), dtype=pl.Int64)
    if not any(f in METRICS for f in q.fields) and not segs and lo is None and hi is None:
        # an attributes-only query lists every visible campaign, active or not
        out = pl.DataFrame({"campaign.id": ids}).with_columns(
            [pl.lit(0, pl.Int64).alias(k) for k in _SUMS]
            + [pl.lit(0.0).alias("metrics.conversions"), pl.lit(0.0).alias("metrics.conversions_value")]
        )
    else:
        window = pl.lit(True)
        if lo is not None:
            window &= pl.col("segments.date") >= lo
        if hi is not None:
            window &= pl.col("segments.date") <= hi
        out = _activity(ads, conv, segs, ids, window, today, platform)
    imp, clk, cost = (pl.col(f"metrics.{n}") for n in ("impressions", "clicks", "cost_micros"))
    share = (imp / pl.col("eligible")).clip(0.0, 1.0)
    out = out.with_columns(
        pl.when(imp > 0).then(clk / imp).alias("metrics.ctr"),
        pl.when(clk > 0).then(cost / clk).alias("metrics.average_cpc"),
        pl.when(pl.lit(platform in SEARCH_PLATFORMS) & (pl.col("eligible") > 0))
        .then(pl.when(share < 0.1).then(0.0999).otherwise(share))
        .cast(pl.Float64)
        .alias("metrics.search_impression_share"),
        pl.col("campaign.id").replace_strict(campaigns, return_dtype=pl.Utf8, default=None).alias("campaign.name"),
        pl.lit("ENABLED").alias("campaign.status"),
        pl.lit(CHANNEL_TYPE_BY_PLATFORM[platform]).alias("campaign.advertising_channel_type"),
        pl.format("customers/{}/campaigns/{}", pl.lit(customer_id), pl.col("campaign.id")).alias(
            "campaign.resource_name"
        ),
    )
    for cond in q.conditions:
        if cond.field != "segments.date":
            out = out.filter(_condition_expr(cond).fill_null(False))
    order = [(f, d) for f, d in q.order_by] + [(f, False) for f in ["campaign.id"] + segs]
    out = out.sort([f for f, _ in order], descending=[d for _, d in order], nulls_last=True)
    return out.head(q.limit) if q.limit is not None else out


def ad_group_id(campaign_id: int) -> int:
    """The demo's one ad group per campaign."""
    return campaign_id * 1000 + 1


def _settings_report(
    q: GaqlQuery, query: str, settings: pl.DataFrame, today: dt.date, platform: str, campaigns: dict[int, str], cid: str
) -> pl.DataFrame:
    """FROM ad_group: the daily budget and the ad group bid in force per campaign and date (max CPC for search,
    CPM bid cap for social), one row per campaign and day of the range that has happened."""
    lo, hi = _date_bounds(q, today)
    if lo is None or hi is None:
        raise GaqlError(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "the demo serves settings by date: give a finite segments.date range",
            "segments.date",
            max(query.find("segments.date"), 0),
        )
    search = platform in SEARCH_PLATFORMS
    out = (
        settings.filter(
            pl.col("campaign_id").is_in(list(campaigns))
            & pl.col("date").is_between(lo, min(hi, today - dt.timedelta(days=1)))
        )
        .rename({"campaign_id": "campaign.id", "date": "segments.date"})
        .with_columns(
            (pl.col("daily_budget") * 1e6).round().cast(pl.Int64).alias("campaign_budget.amount_micros"),
            (pl.col("campaign.id") * 1000 + 1).alias("ad_group.id"),
            pl.when(pl.lit(search)).then((pl.col("bid") * 1e6).round().cast(pl.Int64)).alias("ad_group.cpc_bid_micros"),
            pl.when(pl.lit(not search))
            .then((pl.col("bid") * 1e6).round().cast(pl.Int64))
            .alias("ad_group.cpm_bid_micros"),
            pl.col("campaign.id").replace_strict(campaigns, return_dtype=pl.Utf8, default=None).alias("campaign.name"),
            pl.format("customers/{}/campaigns/{}", pl.lit(cid), pl.col("campaign.id")).alias("campaign.resource_name"),
        )
    )
    for cond in q.conditions:
        if cond.field != "segments.date":
            out = out.filter(_condition_expr(cond).fill_null(False))
    order = [(f, d) for f, d in q.order_by] + [("campaign.id", False), ("segments.date", False)]
    out = out.sort([f for f, _ in order], descending=[d for _, d in order], nulls_last=True)
    return out.head(q.limit) if q.limit is not None else out


_PB_NAMES = {"type": "type_"}  # GAQL names the protobuf messages rename (a Python keyword)


class _RowWriter:
    """Sets the selected fields of raw `GoogleAdsRow` messages from report rows (tuples in `columns` order). The
    path of every field in the message, its enum values and its conversion are worked out once per query: a
    year of hourly rows per device is hundreds of thousands of rows. The resource names of the row's resources
    are always filled, as the API does."""

    def __init__(self, columns: list[str], fields: list[str]):
        pos = {c: i for i, c in enumerate(columns)}
        self.resource = pos["campaign.resource_name"]
        self.criterion = pos.get("campaign_criterion.resource_name")
        groups: dict[str, list] = {}
        for name in fields:
            top, *path, attr = (_PB_NAMES.get(part, part) for part in name.split("."))
            enum = {m.name: m.value for m in ENUMS[name]} if name in ENUMS else None
            groups.setdefault(top, []).append((pos[name], tuple(path), attr, enum, name == "segments.date"))
        self.groups = list(groups.items())

    def fill(self, row, rec: tuple) -> None:
        row.campaign.resource_name = rec[self.resource]
        if self.criterion is not None:
            row.campaign_criterion.resource_name = rec[self.criterion]
            row.campaign_criterion.campaign = rec[self.resource]
        for top, setters in self.groups:
            message = getattr(row, top)
            for i, path, attr, enum, is_date in setters:
                value = rec[i]
                if value is None:  # optional metric without a value (e.g. no impressions, not a search campaign)
                    continue
                if enum is not None:
                    value = enum[value]
                elif is_date:
                    value = value.isoformat()
                target = message
                for part in path:
                    target = getattr(target, part)
                setattr(target, attr, value)


def answer_gaql(
    query: str,
    ads: pl.DataFrame,
    ad_conversions: pl.DataFrame,
    today: dt.date,
    platform: str,
    campaigns: dict[int, str],
    *,
    customer_id: str = "1234567890",
) -> list[GoogleAdsRow]:
    """Answer a GAQL ``campaign`` report over one platform's delivery and conversion logs, as
    ``GoogleAdsService.Search`` would. Raises ``GaqlError`` for queries the API would reject."""
    return [
        row
        for batch in answer_search_stream(
            query, ads, ad_conversions, today, platform, campaigns, customer_id=customer_id
        )
        for row in batch.results
    ]


def answer_search_stream(
    query: str,
    ads: pl.DataFrame,
    ad_conversions: pl.DataFrame,
    today: dt.date,
    platform: str,
    campaigns: dict[int, str],
    *,
    customer_id: str = "1234567890",
    batch_size: int = STREAM_BATCH,
    settings: pl.DataFrame | None = None,
    criteria: dict | None = None,
) -> list[SearchGoogleAdsStreamResponse]:
    """The same report as ``GoogleAdsService.SearchStream`` delivers it: batches of up to 10,000 rows,
    each naming the selected fields in its ``field_mask``. The query is validated and the report computed before
    anything is returned (a bad query raises at once, like the API); each batch's rows are built inside its own
    response message, which keeps a two-year hourly report to a few hundred bytes a row. `criteria` (FROM
    campaign_criterion): the modifier facts ``history``, the modifiers in force ``current`` and ``hour_blocks``."""
    q = parse_gaql(query)
    if q.resource == "ad_group":
        if settings is None:
            raise ValueError("FROM ad_group needs the settings table")
        table = _settings_report(q, query, settings, today, platform, campaigns, customer_id)
    elif q.resource == "campaign_criterion":
        if criteria is None:
            raise ValueError("FROM campaign_criterion needs the modifier facts (criteria=)")
        table = criteria_report(
            q,
            query,
            _date_bounds(q, today),
            criteria["history"],
            criteria["current"],
            today,
            campaigns,  # the facts hold rows only for campaigns whose platform has modifiers (search)
            customer_id,
            criteria["hour_blocks"],
            _condition_expr,
        )
    else:
        table = _report(q, query, ads, ad_conversions, today, platform, campaigns, customer_id)
    mask = FieldMask(paths=q.fields)
    writer = _RowWriter(table.columns, q.fields)
    request_id = "demo-" + hashlib.sha1(f"{query}|{today}|{platform}".encode()).hexdigest()[:16]
    batches = []
    for start in range(0, max(table.height, 1), batch_size):
        pb = SearchGoogleAdsStreamResponse.pb()(request_id=request_id)
        pb.field_mask.CopyFrom(mask)
        for rec in table.slice(start, batch_size).iter_rows():
            writer.fill(pb.results.add(), rec)
        batches.append(SearchGoogleAdsStreamResponse.wrap(pb))
    return batches
