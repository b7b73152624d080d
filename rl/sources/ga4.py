"""GA4 Data API reports (``RunReportResponse`` pages) as one typed polars table, checked strictly.

A report is what GA4 says happened on the website: sessions and key events per day, hour, channel, campaign,
device. Ingestion reads it page by page; this module joins the pages and types the values the API sends as text:
``date`` (``YYYYMMDD``) becomes a Date, ``dateHour`` (``YYYYMMDDHH``) a Datetime, ``hour`` (``00``..``23``) an
Int8, other dimensions stay text; integer metrics become Int64 and every other metric type (float, currency,
durations, ...) Float64.

Anything that does not look like the report that was asked for is a `ReportFormatError` naming what is wrong and
where (header, page, row, value): a silently mis-parsed report would feed wrong numbers into calibration and
bidding. Values are typed with vectorised polars casts; the offending value is located only once a cast fails.
"""

from __future__ import annotations

import bisect
import operator
from dataclasses import dataclass

import polars as pl
from google.analytics.data_v1beta.types import MetricType, RunReportResponse

# time dimension -> (pattern its text must match, what the API promises); strptime alone accepts e.g. "2024031"
_TIME_DIMENSIONS: dict[str, tuple[str, str]] = {
    "date": (r"^\d{8}$", "a date in the form YYYYMMDD"),
    "dateHour": (r"^\d{10}$", "an hour in the form YYYYMMDDHH"),
    "hour": (r"^([01]\d|2[0-3])$", "an hour of the day 00..23"),  # GA4 may say "(other)" when it buckets rows
}


class ReportFormatError(ValueError):
    """A GA4 report does not have the headers, shape or values it should: the API changed or the request was
    not the one we think it was. Never retried; the message names the header, page, row and value at fault."""


@dataclass(frozen=True)
class _Headers:
    """The column names of a report page, and each metric's declared type (a `MetricType` number)."""

    dimensions: tuple[str, ...]
    metrics: tuple[tuple[str, int], ...]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.metrics)

    def describe(self) -> str:
        metrics = [f"{name}:{_type_name(t)}" for name, t in self.metrics]
        return f"dimensions {list(self.dimensions)}, metrics {metrics}"


def _type_name(metric_type: int) -> str:
    try:
        return MetricType(metric_type).name
    except ValueError:
        return f"unknown metric type {metric_type}"


def _headers(pb) -> _Headers:
    return _Headers(
        dimensions=tuple(h.name for h in pb.dimension_headers),
        metrics=tuple((h.name, int(h.type_)) for h in pb.metric_headers),
    )


def _check_expected(kind: str, expected: list[str] | None, got: tuple[str, ...]) -> None:
    """The report's `kind` ("dimension"/"metric") headers are exactly `expected`, in order."""
    if expected is None or list(expected) == list(got):
        return
    missing = [n for n in expected if n not in got]
    unexpected = [n for n in got if n not in expected]
    if missing or unexpected:
        parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else ""]
        detail = "; ".join(p for p in parts if p)
    else:
        detail = "same names in a different order"
    raise ReportFormatError(f"{kind} headers: expected {list(expected)}, got {list(got)} ({detail})")


def _check_unique(headers: _Headers) -> None:
    seen: set[str] = set()
    for name in headers.dimensions + headers.metric_names:
        if name in seen:
            raise ReportFormatError(f"header {name!r} appears more than once in {headers.describe()}")
        seen.add(name)


def _values(rows, field: str, width: int, page: int, headers: _Headers) -> list[list[str]]:
    """The page's `field` ("dimension_values"/"metric_values") as columns, after checking every row's width."""
    get = operator.attrgetter(field)
    lengths = [len(get(r)) for r in rows]
    if lengths.count(width) != len(lengths):
        k = next(k for k, n in enumerate(lengths) if n != width)
        values = [v.value for v in get(rows[k])]
        kind = field.split("_")[0]
        names = headers.dimensions if kind == "dimension" else headers.metric_names
        raise ReportFormatError(
            f"page {page}, row {k} (0-based): {len(values)} {kind} values {values} for {width} {kind} "
            f"headers {list(names)}"
        )
    flat = [v.value for r in rows for v in get(r)]  # far faster than one list per row
    return [flat[i::width] for i in range(width)]


def _page_frame(pb, page: int, headers: _Headers) -> pl.DataFrame:
    """One page as text columns, named by the headers."""
    dims = _values(pb.rows, "dimension_values", len(headers.dimensions), page, headers)
    metrics = _values(pb.rows, "metric_values", len(headers.metrics), page, headers)
    names = headers.dimensions + headers.metric_names
    columns = dims + metrics
    return pl.DataFrame(
        {n: pl.Series(n, c, dtype=pl.Utf8) for n, c in zip(names, columns, strict=True)},
        schema={n: pl.Utf8 for n in names},
    )


def _typed_exprs(headers: _Headers) -> dict[str, tuple[pl.Expr, str]]:
    """Per column to type: the lenient cast (null where the text does not parse) and what the value should be."""
    out: dict[str, tuple[pl.Expr, str]] = {}
    for name in headers.dimensions:
        col = pl.col(name)
        if name == "date":
            parsed = col.str.strptime(pl.Date, "%Y%m%d", strict=False)
        elif name == "dateHour":
            parsed = (col + "00").str.strptime(pl.Datetime("us"), "%Y%m%d%H%M", strict=False)
        elif name == "hour":
            parsed = col.cast(pl.Int8, strict=False)
        else:
            continue
        pattern, meaning = _TIME_DIMENSIONS[name]
        out[name] = (pl.when(col.str.contains(pattern)).then(parsed), meaning)
    for name, mtype in headers.metrics:
        col = pl.col(name)
        if mtype == MetricType.TYPE_INTEGER:
            out[name] = (col.cast(pl.Int64, strict=False), "an integer")
        else:
            number = col.cast(pl.Float64, strict=False)
            out[name] = (pl.when(number.is_finite()).then(number), "a finite number")
    return out


def _locate(index: int, page_starts: list[int]) -> tuple[int, int]:
    """(page, row within the page) of the report's `index`-th row."""
    page = bisect.bisect_right(page_starts, index) - 1
    return page, index - page_starts[page]


def _cast(frame: pl.DataFrame, headers: _Headers, page_starts: list[int]) -> pl.DataFrame:
    """Type the text columns in one vectorised pass; on failure name the first bad value of the first bad column."""
    exprs = _typed_exprs(headers)
    if not exprs:
        return frame
    typed = frame.with_columns([e.alias(n) for n, (e, _) in exprs.items()])
    failures = typed.select([pl.col(n).null_count() for n in exprs]).row(0)  # the text columns hold no nulls
    for (name, (_, meaning)), count in zip(exprs.items(), failures, strict=True):
        if not count:
            continue
        index = int(typed.get_column(name).is_null().arg_true()[0])
        page, row = _locate(index, page_starts)
        value = frame.get_column(name)[index]
        metric_types = dict(headers.metrics)
        if name in metric_types:
            what = f"metric {name!r} (declared {_type_name(metric_types[name])})"
        else:
            what = f"dimension {name!r}"
        more = f" ({count - 1} more bad values in this column)" if count > 1 else ""
        raise ReportFormatError(
            f"{what} at page {page}, row {row} (0-based; row {index} of the report): value {value!r} is not "
            f"{meaning}{more}"
        )
    return typed


def pages_to_frame(
    pages: list[RunReportResponse],
    expected_dimensions: list[str] | None = None,
    expected_metrics: list[str] | None = None,
) -> pl.DataFrame:
    """The pages of one report (in offset order) as one typed table, columns in header order.

    `expected_dimensions` / `expected_metrics`, when given, are the header names the report must have, in order
    (normally the request's). Raises `ReportFormatError` for missing, renamed or duplicated headers, pages whose
    headers differ, rows with the wrong number of values and values that do not parse as their declared type."""
    if not pages:
        raise ReportFormatError("a report has at least one page; got none")
    pbs = [RunReportResponse.pb(p) for p in pages]
    headers = _headers(pbs[0])
    _check_expected("dimension", expected_dimensions, headers.dimensions)
    _check_expected("metric", expected_metrics, headers.metric_names)
    _check_unique(headers)
    frames: list[pl.DataFrame] = []
    page_starts: list[int] = []
    start = 0
    for k, pb in enumerate(pbs):
        if k and (other := _headers(pb)) != headers:
            raise ReportFormatError(
                f"page {k} has headers {other.describe()}, but page 0 has {headers.describe()}: "
                "the pages are not from the same report"
            )
        frames.append(_page_frame(pb, k, headers))
        page_starts.append(start)
        start += frames[-1].height
    frame = pl.concat(frames, how="vertical", rechunk=True) if len(frames) > 1 else frames[0]
    return _cast(frame, headers, page_starts)


def run_report_to_frame(response: RunReportResponse) -> pl.DataFrame:
    """A one-page report (demo or live) as a typed table: ``date`` → Date, ``dateHour`` → Datetime, other
    dimensions text; integer metrics → Int64, every other metric type (float, currency, ...) → Float64."""
    return pages_to_frame([response])
