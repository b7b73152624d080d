"""Google Ads report rows (GAQL ``GoogleAdsRow`` messages, API v26) turned into one typed table.

Every ad platform the pipeline reads (Google Ads, and in the demo Microsoft Ads, Meta and TikTok too) answers in
Google Ads' row shape, so this is the one place where ad-platform report rows become data: one column per selected
GAQL field, named without the resource prefix where that is unambiguous (``segments.date`` -> ``date``,
``metrics.clicks`` -> ``clicks``; ``campaign.id`` keeps its resource: ``campaign_id``).

A metric the platform did not report for a row (proto3 ``optional`` fields that are not set, e.g. search impression
share on a social campaign, or a ratio without a denominator) is null, never zero: "not reported" and "nothing
happened" mean different things to the learner. A row without its campaign id or date cannot be attributed to
anything and is an error, as is a field this module does not know how to type.

Rows are read through their raw protobuf messages; proto-plus attribute access costs about ten times more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import polars as pl
from google.ads.googleads.v26.enums import (
    ConversionLagBucketEnum,
    CriterionTypeEnum,
    DayOfWeekEnum,
    DeviceEnum,
    MinuteOfHourEnum,
)
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow
from google.protobuf.message import Message as RawMessage


class AdsReportFormatError(ValueError):
    """Report rows that cannot become the typed table (unknown field, a row without a required field...)."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Column:
    """How one selected GAQL field becomes a column: its name, type, where it sits in the row message, and
    whether every row must have it (`required`) or may leave it unset (null)."""

    field: str
    name: str
    dtype: pl.DataType
    required: bool = False
    enum: type[IntEnum] | None = None
    lower: bool = False  # enum names in lower case (devices: mobile/desktop/tablet)

    @property
    def group(self) -> str:
        return self.field.split(".", 1)[0]

    @property
    def path(self) -> tuple[str, ...]:
        """Attribute names from the row's resource message to the value (protobuf names: `type` is `type_`)."""
        return tuple(_PB_NAMES.get(p, p) for p in self.field.split(".")[1:])

    @property
    def attr(self) -> str:
        return self.path[-1]


_PB_NAMES = {"type": "type_"}  # GAQL names the v26 protobuf messages spell differently (a Python keyword)


COLUMNS: dict[str, Column] = {
    c.field: c
    for c in (
        Column("campaign.id", "campaign_id", pl.Int64(), required=True),
        Column("campaign.name", "campaign_name", pl.Utf8()),
        Column("segments.date", "date", pl.Date(), required=True),
        Column("segments.hour", "hour", pl.Int8()),
        Column("segments.device", "device", pl.Utf8(), enum=DeviceEnum.Device, lower=True),
        Column(
            "segments.conversion_lag_bucket",
            "conversion_lag_bucket",
            pl.Utf8(),
            enum=ConversionLagBucketEnum.ConversionLagBucket,
        ),
        Column("metrics.impressions", "impressions", pl.Int64()),
        Column("metrics.clicks", "clicks", pl.Int64()),
        Column("metrics.cost_micros", "cost_micros", pl.Int64()),
        Column("metrics.conversions", "conversions", pl.Float64()),
        Column("metrics.conversions_value", "conversions_value", pl.Float64()),
        Column("metrics.ctr", "ctr", pl.Float64()),
        Column("metrics.average_cpc", "average_cpc", pl.Float64()),
        Column("metrics.search_impression_share", "search_impression_share", pl.Float64()),
        Column("ad_group.id", "ad_group_id", pl.Int64()),
        Column("ad_group.cpc_bid_micros", "cpc_bid_micros", pl.Int64()),
        Column("ad_group.cpm_bid_micros", "cpm_bid_micros", pl.Int64()),
        Column("campaign_budget.amount_micros", "budget_micros", pl.Int64()),
        # FROM campaign_criterion: the device and ad-schedule bid modifiers in force
        Column("campaign_criterion.criterion_id", "criterion_id", pl.Int64()),
        Column("campaign_criterion.type", "criterion_type", pl.Utf8(), enum=CriterionTypeEnum.CriterionType),
        Column("campaign_criterion.device.type", "criterion_device", pl.Utf8(), enum=DeviceEnum.Device, lower=True),
        Column("campaign_criterion.ad_schedule.day_of_week", "day_of_week", pl.Utf8(), enum=DayOfWeekEnum.DayOfWeek),
        Column("campaign_criterion.ad_schedule.start_hour", "start_hour", pl.Int8()),
        Column("campaign_criterion.ad_schedule.end_hour", "end_hour", pl.Int8()),
        Column(
            "campaign_criterion.ad_schedule.start_minute",
            "start_minute",
            pl.Utf8(),
            enum=MinuteOfHourEnum.MinuteOfHour,
        ),
        Column(
            "campaign_criterion.ad_schedule.end_minute", "end_minute", pl.Utf8(), enum=MinuteOfHourEnum.MinuteOfHour
        ),
        Column("campaign_criterion.bid_modifier", "bid_modifier", pl.Float64()),
    )
}


def columns_for(fields: list[str]) -> list[Column]:
    """The columns for the selected GAQL fields, in selection order (a field selected twice counts once)."""
    unknown = [f for f in fields if f not in COLUMNS]
    if unknown:
        raise AdsReportFormatError(unknown[0], f"no typed column is defined for this field (known: {sorted(COLUMNS)})")
    if not fields:
        raise AdsReportFormatError("<fields>", "no field selected")
    columns = [COLUMNS[f] for f in dict.fromkeys(fields)]
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        twice = sorted({c.field for c in columns if names.count(c.name) > 1})
        raise AdsReportFormatError(twice[0], f"fields {twice} would share one column name; select one of them")
    return columns


def schema_for(fields: list[str]) -> dict[str, pl.DataType]:
    """The table's column names and types for the selected GAQL fields (what an empty report looks like)."""
    return {c.name: c.dtype for c in columns_for(fields)}


def _raw(row: object) -> RawMessage:
    if isinstance(row, RawMessage):
        return row
    if isinstance(row, GoogleAdsRow):
        return GoogleAdsRow.pb(row)
    raise AdsReportFormatError("<row>", f"expected GoogleAdsRow messages, got {type(row).__name__}")


def _has_presence(column: Column, sample: RawMessage) -> bool:
    message = getattr(sample, column.group)
    for part in column.path[:-1]:
        message = getattr(message, part, None)
        if not isinstance(message, RawMessage):
            raise AdsReportFormatError(column.field, "not a field of the Google Ads API v26 GoogleAdsRow")
    descriptor = message.DESCRIPTOR.fields_by_name.get(column.attr)
    if descriptor is None:  # a COLUMNS entry that does not exist in the v26 protos: a bug in this module
        raise AdsReportFormatError(column.field, "not a field of the Google Ads API v26 GoogleAdsRow")
    return descriptor.has_presence


def _messages(column: Column, groups: dict[tuple[str, ...], list[RawMessage]]) -> list[RawMessage]:
    """The messages holding the column's value, one per row: nested fields (campaign_criterion.device.type) walk
    down from the row's resource message; each level is fetched once for all the columns that share it."""
    key = (column.group,)
    for part in column.path[:-1]:
        parent, key = groups[key], (*key, part)
        if key not in groups:
            groups[key] = [getattr(m, part) for m in parent]
    return groups[key]


def _values(column: Column, messages: list[RawMessage], presence: bool) -> list:
    attr = column.attr
    if presence:
        return [getattr(m, attr) if m.HasField(attr) else None for m in messages]
    values = [getattr(m, attr) for m in messages]
    if column.enum is not None:  # enums have no presence: UNSPECIFIED (0) means not set
        return [v or None for v in values]
    return values


def _enum_names(column: Column, codes: list[int | None]) -> pl.Series:
    names = {e.value: (e.name.lower() if column.lower else e.name) for e in column.enum}
    bad = next((c for c in codes if c is not None and c not in names), None)
    if bad is not None:
        raise AdsReportFormatError(column.field, f"value {bad} is not a {column.enum.__name__} of API v26")
    return pl.Series(column.name, [None if c is None else names[c] for c in codes], dtype=pl.Utf8)


def _series(column: Column, values: list) -> pl.Series:
    if column.required and (missing := next((i for i, v in enumerate(values) if v is None), None)) is not None:
        raise AdsReportFormatError(column.field, f"row {missing} does not have this required field")
    if column.enum is not None:
        return _enum_names(column, values)
    if column.dtype == pl.Date:
        text = pl.Series(column.name, values, dtype=pl.Utf8)
        dates = text.str.to_date("%Y-%m-%d", strict=False)
        bad = text.filter(dates.is_null() & text.is_not_null())
        if bad.len():
            raise AdsReportFormatError(column.field, f"{bad[0]!r} is not a YYYY-MM-DD date")
        return dates
    try:
        return pl.Series(column.name, values, dtype=column.dtype, strict=True)
    except (TypeError, OverflowError, pl.exceptions.PolarsError) as e:
        raise AdsReportFormatError(column.field, f"values do not fit {column.dtype}: {e}") from None


def rows_to_frame(rows: Iterable[GoogleAdsRow | RawMessage], fields: list[str]) -> pl.DataFrame:
    """One typed column per selected GAQL field, one row per report row (see `COLUMNS` for names and types).

    `rows` may be proto-plus `GoogleAdsRow`s or their raw protobuf messages (faster: iterate
    `SearchGoogleAdsStreamResponse.pb(batch).results`). Raises `AdsReportFormatError` naming the field for a field
    without a typed column, a row without its campaign id or date, or a value that does not fit its type."""
    columns = columns_for(fields)
    raws = [_raw(r) for r in rows]
    if not raws:
        return pl.DataFrame(schema={c.name: c.dtype for c in columns})
    groups = {(g,): [getattr(r, g) for r in raws] for g in dict.fromkeys(c.group for c in columns)}
    series = [_series(c, _values(c, _messages(c, groups), _has_presence(c, raws[0]))) for c in columns]
    return pl.DataFrame(series)
