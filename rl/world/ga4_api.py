"""The demo market's Google Analytics 4 property, answering the GA4 Data API (v1beta) ``runReport``.

The demo world records website sessions (by the day and hour they started) and key events with
their revenue (by the day and hour the visitor converted, credited last-click to the campaign of the
click). This module turns those two tables into a real ``RunReportResponse``, shaped the way the
live API shapes it, so the pipeline's ingestion code cannot tell demo data from real data.

Behaviour copied from the live API (documented in the Data API reference and api-schema pages):
  * dimension and metric values are strings: ``date`` is ``YYYYMMDD``, ``dateHour`` ``YYYYMMDDHH``,
    ``hour`` the two-digit hour ``00``..``23``, ``dayOfWeek`` ``0`` (Sunday)..``6`` (Saturday);
  * ``keyEvents`` is reported as ``TYPE_FLOAT`` (as the live API does), counts of sessions and users
    as ``TYPE_INTEGER``, revenue as ``TYPE_CURRENCY``; integral values are written without decimals;
  * rows whose metrics are all zero are left out unless ``keep_empty_rows`` is set;
  * ``row_count`` is the report size before ``offset``/``limit``; the limit defaults to 10,000 and
    is capped at 250,000;
  * totals/maximums/minimums rows use ``RESERVED_TOTAL``/``RESERVED_MAX``/``RESERVED_MIN``.
Only what the world knows exists: days on or after ``today`` have no data yet. ``totalUsers`` and
``newUsers`` are summed over the world's rows (the world has no user identities to de-duplicate).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable

import polars as pl
from google.analytics.data_v1beta.types import (
    DimensionHeader,
    FilterExpression,
    MetricAggregation,
    MetricHeader,
    MetricType,
    OrderBy,
    PropertyQuota,
    QuotaStatus,
    ResponseMetaData,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core.exceptions import InvalidArgument, PermissionDenied

from rl.sources.ga4 import run_report_to_frame  # noqa: F401

SCHEMA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"
DEFAULT_LIMIT, MAX_LIMIT = 10_000, 250_000
EARLIEST_DATE = dt.date(2015, 8, 14)  # the API rejects dates before GA4 existed

_SPLIT = pl.col("source_medium").str.split_exact(" / ", 1)
DIMENSIONS: dict[str, Callable[[], pl.Expr]] = {
    "date": lambda: pl.col("date").dt.strftime("%Y%m%d"),
    "dateHour": lambda: pl.concat_str(pl.col("date").dt.strftime("%Y%m%d"), pl.col("hour").cast(pl.Utf8).str.zfill(2)),
    "hour": lambda: pl.col("hour").cast(pl.Utf8).str.zfill(2),
    "dayOfWeek": lambda: (pl.col("date").dt.weekday() % 7).cast(pl.Utf8),
    "sessionDefaultChannelGroup": lambda: pl.col("channel_group"),
    "sessionSourceMedium": lambda: pl.col("source_medium"),
    "sessionSource": lambda: _SPLIT.struct.field("field_0").fill_null("(not set)"),
    "sessionMedium": lambda: _SPLIT.struct.field("field_1").fill_null("(not set)"),
    "sessionCampaignName": lambda: pl.col("campaign_name").fill_null("(not set)"),
    "sessionCampaignId": lambda: pl.col("campaign_id").cast(pl.Utf8).fill_null("(not set)"),
    "deviceCategory": lambda: pl.col("device"),
}
# metric name -> (source table, column, type). Sessions count by session date, key events by conversion date.
METRICS: dict[str, tuple[str, str, MetricType]] = {
    "sessions": ("sessions", "sessions", MetricType.TYPE_INTEGER),
    "totalUsers": ("sessions", "total_users", MetricType.TYPE_INTEGER),
    "newUsers": ("sessions", "new_users", MetricType.TYPE_INTEGER),
    "keyEvents": ("key_events", "key_events", MetricType.TYPE_FLOAT),
    "totalRevenue": ("key_events", "revenue", MetricType.TYPE_CURRENCY),
}
# metric aggregation -> (dimension value the API writes, response field, polars reduction)
_AGGREGATIONS = {
    MetricAggregation.TOTAL: ("RESERVED_TOTAL", "totals", "sum"),
    MetricAggregation.MAXIMUM: ("RESERVED_MAX", "maximums", "max"),
    MetricAggregation.MINIMUM: ("RESERVED_MIN", "minimums", "min"),
}


def _invalid_field(name: str, kind: str) -> InvalidArgument:
    return InvalidArgument(
        f"Field {name} is not a valid {kind}. For a list of valid dimensions and metrics, see {SCHEMA_URL}"
    )


def resolve_date(value: str, today: dt.date, field: str) -> dt.date:
    """One end of a report's date range: ``YYYY-MM-DD``, ``today``, ``yesterday`` or ``NdaysAgo``."""
    if value == "today":
        return today
    if value == "yesterday":
        return today - dt.timedelta(days=1)
    if m := re.fullmatch(r"(\d+)daysAgo", value):
        return today - dt.timedelta(days=int(m.group(1)))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidArgument(
        f"Invalid {field} '{value}'. The date must be in the format YYYY-MM-DD, NdaysAgo, yesterday, or today."
    )


def _date_range(request: RunReportRequest, today: dt.date) -> tuple[dt.date, dt.date]:
    if len(request.date_ranges) != 1:
        raise InvalidArgument(
            f"The demo GA4 property answers exactly one entry in dateRanges; got {len(request.date_ranges)}."
        )
    dr = request.date_ranges[0]
    start = resolve_date(dr.start_date, today, "dateRanges[0].startDate")
    end = resolve_date(dr.end_date, today, "dateRanges[0].endDate")
    if end < start:
        raise InvalidArgument(
            f"Invalid dateRanges[0]: endDate {end.isoformat()} is before startDate {start.isoformat()}."
        )
    if start < EARLIEST_DATE:
        raise InvalidArgument(
            f"Invalid dateRanges[0].startDate {start.isoformat()}: dates before 2015-08-14 are not supported."
        )
    return start, end


def _filter_fields(pb) -> set[str]:
    """The dimensions a (protobuf) FilterExpression refers to."""
    kind = pb.WhichOneof("expr")
    if kind in ("and_group", "or_group"):
        return set().union(*(_filter_fields(e) for e in getattr(pb, kind).expressions))
    if kind == "not_expression":
        return _filter_fields(pb.not_expression)
    return {pb.filter.field_name} if kind == "filter" else set()


def _string_match(col: pl.Expr, match_type: str, value: str, case_sensitive: bool) -> pl.Expr:
    if match_type in ("FULL_REGEXP", "PARTIAL_REGEXP"):
        pattern = value if match_type == "PARTIAL_REGEXP" else f"^(?:{value})$"
        return col.str.contains(pattern if case_sensitive else f"(?i){pattern}")
    if not case_sensitive:
        col, value = col.str.to_lowercase(), value.lower()
    if match_type == "BEGINS_WITH":
        return col.str.starts_with(value)
    if match_type == "ENDS_WITH":
        return col.str.ends_with(value)
    if match_type == "CONTAINS":
        return col.str.contains(value, literal=True)
    return col == value  # EXACT (and MATCH_TYPE_UNSPECIFIED)


def _filter_expr(pb) -> pl.Expr:
    """A GA4 dimension FilterExpression as a polars predicate over the computed dimension columns."""
    kind = pb.WhichOneof("expr")
    if kind in ("and_group", "or_group"):
        parts = [_filter_expr(e) for e in getattr(pb, kind).expressions]
        if not parts:
            return pl.lit(True)
        return pl.all_horizontal(parts) if kind == "and_group" else pl.any_horizontal(parts)
    if kind == "not_expression":
        return ~_filter_expr(pb.not_expression)
    if kind is None:
        return pl.lit(True)
    f = pb.filter
    col = pl.col(f"d:{f.field_name}")
    which = f.WhichOneof("one_filter")
    if which == "string_filter":
        sf = f.string_filter
        match = type(sf).MatchType.Name(sf.match_type)
        return _string_match(col, match, sf.value, sf.case_sensitive)
    if which == "in_list_filter":
        values = list(f.in_list_filter.values)
        if f.in_list_filter.case_sensitive:
            return col.is_in(values)
        return col.str.to_lowercase().is_in([v.lower() for v in values])
    raise InvalidArgument(
        f"Filter on field {f.field_name}: {which or 'an empty filter'} is not supported by the demo GA4 "
        "property in dimensionFilter; use stringFilter or inListFilter."
    )


def _source_table(
    frame: pl.DataFrame,
    dims: list[str],
    cols: list[str],
    fields: set[str],
    flt,
    start: dt.date,
    end: dt.date,
    today: dt.date,
) -> pl.DataFrame:
    """One source table restricted to the range (and to days before ``today``), summed by dimensions."""
    f = frame.filter((pl.col("date") >= start) & (pl.col("date") <= end) & (pl.col("date") < today))
    f = f.with_columns([DIMENSIONS[d]().alias(f"d:{d}") for d in sorted(set(dims) | fields)])
    if flt is not None:
        f = f.filter(_filter_expr(flt))
    keys = [f"d:{d}" for d in dims]
    if not cols:
        return f.select(keys).unique()
    sums = [pl.col(c).sum().alias(c) for c in cols]
    return f.group_by(keys).agg(sums) if keys else f.select(sums)


def _fmt(value: float | int, mtype: MetricType) -> str:
    """A metric value as the API writes it: integers without decimals, money to the cent."""
    if mtype == MetricType.TYPE_INTEGER:
        return str(int(value))
    v = round(float(value), 2) if mtype == MetricType.TYPE_CURRENCY else float(value)
    return str(int(v)) if v.is_integer() else repr(v)


def _sort(report: pl.DataFrame, request: RunReportRequest, dims: list[str], metrics: list[str]) -> pl.DataFrame:
    by: list[pl.Expr] = []
    desc: list[bool] = []
    for ob in request.order_bys:
        pb = OrderBy.pb(ob)
        which = pb.WhichOneof("one_order_by")
        if which == "metric":
            name = pb.metric.metric_name
            if name not in metrics:
                raise InvalidArgument(f"orderBys: metric {name} is not one of the request's metrics.")
            by.append(pl.col(f"m:{name}"))
        elif which == "dimension":
            name, otype = pb.dimension.dimension_name, OrderBy.DimensionOrderBy.OrderType(pb.dimension.order_type)
            if name not in dims:
                raise InvalidArgument(f"orderBys: dimension {name} is not one of the request's dimensions.")
            col = pl.col(f"d:{name}")
            if otype == OrderBy.DimensionOrderBy.OrderType.CASE_INSENSITIVE_ALPHANUMERIC:
                col = col.str.to_lowercase()
            elif otype == OrderBy.DimensionOrderBy.OrderType.NUMERIC:
                col = col.cast(pl.Float64, strict=True)
            by.append(col)
        else:
            raise InvalidArgument(f"orderBys: {which or 'an empty orderBy'} is not supported by the demo GA4 property.")
        desc.append(pb.desc)
    by += [pl.col(f"d:{d}") for d in dims]  # deterministic tie-break: dimensions ascending
    desc += [False] * len(dims)
    return report.sort(by, descending=desc, nulls_last=True) if by else report


def _quota(rows: int) -> PropertyQuota:
    """Plausible standard-property quota: a few tokens per request, more for big reports."""
    used = 1 + math.ceil(rows / 1000)
    return PropertyQuota(
        tokens_per_day=QuotaStatus(consumed=used, remaining=200_000 - used),
        tokens_per_hour=QuotaStatus(consumed=used, remaining=40_000 - used),
        tokens_per_project_per_hour=QuotaStatus(consumed=used, remaining=14_000 - used),
        concurrent_requests=QuotaStatus(consumed=0, remaining=10),
        server_errors_per_project_per_hour=QuotaStatus(consumed=0, remaining=10),
        potentially_thresholded_requests_per_hour=QuotaStatus(consumed=0, remaining=120),
    )


def _check_request(request: RunReportRequest, property_id: str, currency_code: str) -> tuple[list[str], list[str]]:
    """The requested dimension and metric names, once the request is one the API (and the demo) accepts."""
    if not re.fullmatch(r"properties/\d+", request.property):
        raise InvalidArgument(f"Invalid property '{request.property}'; expected the form properties/1234.")
    if request.property != f"properties/{property_id}":
        raise PermissionDenied(
            "User does not have sufficient permissions for this property. To learn more about Property ID, "
            "see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id."
        )
    for d in request.dimensions:
        if d.name not in DIMENSIONS or "dimension_expression" in d:
            raise _invalid_field(d.name, "dimension")
    for m in request.metrics:
        if m.name not in METRICS or m.expression:
            raise _invalid_field(m.name, "metric")
    dims, metrics = [d.name for d in request.dimensions], [m.name for m in request.metrics]
    if not dims and not metrics:
        raise InvalidArgument("A report request must have at least one dimension or metric.")
    if len(dims) > 9 or len(metrics) > 10:
        raise InvalidArgument("Requests are limited to 9 dimensions and 10 metrics.")
    for unsupported in ("metric_filter", "cohort_spec"):
        if unsupported in request:
            raise InvalidArgument(f"{unsupported} is not supported by the demo GA4 property.")
    if len(request.comparisons):
        raise InvalidArgument("comparisons are not supported by the demo GA4 property.")
    if request.currency_code and request.currency_code != currency_code:
        raise InvalidArgument(f"currencyCode {request.currency_code}: the demo property only reports {currency_code}.")
    if request.limit < 0 or request.offset < 0:
        raise InvalidArgument(f"limit ({request.limit}) and offset ({request.offset}) must not be negative.")
    for agg in request.metric_aggregations:
        if agg not in _AGGREGATIONS:
            raise InvalidArgument(f"metricAggregations: {MetricAggregation(agg).name} is not supported.")
    return dims, metrics


def _report_table(
    request: RunReportRequest,
    dims: list[str],
    metrics: list[str],
    sessions: pl.DataFrame,
    key_events: pl.DataFrame,
    today: dt.date,
) -> pl.DataFrame:
    """The whole report, sorted, before paging: columns ``d:<dimension>`` (text) and ``m:<metric>``."""
    start, end = _date_range(request, today)
    flt = FilterExpression.pb(request.dimension_filter) if "dimension_filter" in request else None
    fields = _filter_fields(flt) if flt is not None else set()
    for name in fields:
        if name not in DIMENSIONS:
            raise _invalid_field(name, "dimension")
    sources = {"sessions": sessions, "key_events": key_events}
    wanted = {s: [METRICS[m][1] for m in metrics if METRICS[m][0] == s] for s in sources}
    keys = [f"d:{d}" for d in dims]
    # dimension combinations come from every source that holds a requested metric; with no metrics, or
    # when empty rows are kept, from both (a combination seen only in sessions still exists for keyEvents)
    used = [s for s in sources if wanted[s] or not metrics or (request.keep_empty_rows and keys)]
    parts = [_source_table(sources[s], dims, wanted[s], fields, flt, start, end, today) for s in used]
    if not metrics:
        report = pl.concat(parts).unique()
    elif keys:
        report = parts[0]
        for part in parts[1:]:
            report = report.join(part, on=keys, how="full", coalesce=True)
    else:
        report = pl.concat(parts, how="horizontal")
    report = report.with_columns([pl.col(METRICS[m][1]).fill_null(0).alias(f"m:{m}") for m in metrics]).select(
        keys + [f"m:{m}" for m in metrics]
    )
    if metrics and not request.keep_empty_rows:
        report = report.filter(pl.any_horizontal([pl.col(f"m:{m}") != 0 for m in metrics]))
    return _sort(report, request, dims, metrics)


def answer_run_report(
    request: RunReportRequest,
    sessions: pl.DataFrame,
    key_events: pl.DataFrame,
    today: dt.date,
    property_id: str,
    *,
    currency_code: str = "USD",
    time_zone: str = "America/New_York",
) -> RunReportResponse:
    """Answer a GA4 ``runReport`` request from the demo world's sessions and key events, as the API would.

    Raises ``InvalidArgument`` for requests the live API rejects (unknown fields, bad dates, paging
    values) and for the few features the demo does not model; ``PermissionDenied`` for another property.
    """
    dims, metrics = _check_request(request, property_id, currency_code)
    report = _report_table(request, dims, metrics, sessions, key_events, today)
    types = [METRICS[m][2] for m in metrics]
    response = RunReportResponse(
        dimension_headers=[DimensionHeader(name=d) for d in dims],
        metric_headers=[MetricHeader(name=m, type_=t) for m, t in zip(metrics, types, strict=True)],
        row_count=report.height,
        metadata=ResponseMetaData(currency_code=currency_code, time_zone=time_zone),
        kind="analyticsData#runReport",
    )
    pb = RunReportResponse.pb(response)  # filled in place: far faster than one proto-plus object per value
    for values in report.slice(request.offset, min(request.limit or DEFAULT_LIMIT, MAX_LIMIT)).iter_rows():
        row = pb.rows.add()
        for v in values[: len(dims)]:
            row.dimension_values.add(value=v)
        for v, t in zip(values[len(dims) :], types, strict=True):
            row.metric_values.add(value=_fmt(v, t))
    for agg in request.metric_aggregations:
        label, target, how = _AGGREGATIONS[agg]
        row = getattr(pb, target).add()
        for _ in dims:
            row.dimension_values.add(value=label)
        for m, t in zip(metrics, types, strict=True):
            row.metric_values.add(value=_fmt(getattr(report.get_column(f"m:{m}"), how)() or 0, t))
    if request.return_property_quota:
        pb.property_quota.CopyFrom(PropertyQuota.pb(_quota(report.height)))
    return response
