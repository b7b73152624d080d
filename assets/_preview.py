"""How every asset shows what it made in the Dagster UI: a few rows as a table and plots embedded as PNG, in the
materialization metadata (the UI renders Markdown tables, `data:` images and table metadata inline).

Formatting only: the figures are computed by the asset (SQL) or by `rl` (plots, summaries) before they get here.
`has_preview` and `placeholders` say whether a materialization's metadata meets the bar the UI relies on: at least
one table or plot, and no value that is missing or stands in for one (None, NaN, "", "TODO", "n/a", ...).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

PNG_PREFIX = "data:image/png;base64,"
MARKDOWN_RULE = "|---"
MAX_ROWS = 10
MAX_CELL = 60  # characters of a text cell; longer texts (JSON, responses) are cut with an ellipsis
PLACEHOLDER_TEXTS = frozenset({"", "todo", "tbd", "n/a", "na", "placeholder", "nan", "null", "-", "?"})
# Python's None / NaN leaking into text through an f-string; lower-case "none" is a real answer ("failures: none")
_LEAKED = re.compile(r"(?<![\w.])(None|nan|NaN)(?![\w.])")
_PAYLOAD = re.compile(re.escape(PNG_PREFIX) + r"[A-Za-z0-9+/=]*")


def cell(value: Any) -> str:
    """One value as table text: SQL nulls say `null`, floats are rounded for reading, a `|` is escaped (it would end
    the cell)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "null"
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).replace("\n", " ")
    text = text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
    return text.replace("|", "\\|")


def _frame(rows: pl.DataFrame | Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        return rows
    return pl.DataFrame(list(rows), infer_schema_length=None) if rows else pl.DataFrame()


def md_table(
    rows: pl.DataFrame | Sequence[Mapping[str, Any]], empty: str, max_rows: int = MAX_ROWS, total: int | None = None
) -> str:
    """The first `max_rows` rows as a Markdown table (a footer counts the rest: `total` rows in all when the caller
    only fetched a head); `empty` — what is absent, and where — when there are no rows."""
    frame = _frame(rows)
    if frame.is_empty():
        return empty
    head = frame.head(max_rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(cell(v) for v in rec) + " |" for rec in head.iter_rows()]
    total = frame.height if total is None else total
    if total > head.height:
        lines.append(f"\n… {head.height} of {total:,} rows shown")
    return "\n".join(lines)


def markdown(
    rows: pl.DataFrame | Sequence[Mapping[str, Any]], empty: str, max_rows: int = MAX_ROWS
) -> dg.MetadataValue:
    """`md_table` as a metadata value."""
    return dg.MetadataValue.md(md_table(rows, empty, max_rows))


_TABLE_TYPES = {pl.Boolean: "bool", pl.Date: "date", pl.Datetime: "timestamp", pl.Utf8: "string"}


def table(rows: pl.DataFrame | Sequence[Mapping[str, Any]], empty: str, max_rows: int = 50) -> dg.MetadataValue:
    """Rows as Dagster table metadata (sortable in the UI), or the `empty` text when there are none."""
    frame = _frame(rows).head(max_rows)
    if frame.is_empty():
        return dg.MetadataValue.md(empty)
    schema = dg.TableSchema(
        [
            dg.TableColumn(
                name,
                "int" if dtype.is_integer() else "float" if dtype.is_float() else _TABLE_TYPES.get(dtype, "string"),
            )
            for name, dtype in frame.schema.items()
        ]
    )

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 4)
        if isinstance(v, dt.date):  # dates and timestamps as text: the table metadata takes scalars only
            return cell(v)
        return v

    records = [dg.TableRecord({k: value(v) for k, v in rec.items()}) for rec in frame.iter_rows(named=True)]
    return dg.MetadataValue.table(records, schema)


def png(image: bytes | Path, title: str) -> dg.MetadataValue:
    """A PNG (bytes or a file) embedded in Markdown, so the UI shows it without access to the data directory."""
    data = image.read_bytes() if isinstance(image, Path) else image
    return dg.MetadataValue.md(f"![{title}]({PNG_PREFIX}{base64.b64encode(data).decode()})")


def bullets(items: Sequence[str], empty: str) -> dg.MetadataValue:
    """A Markdown list, or the `empty` text when there is nothing to list."""
    return dg.MetadataValue.md("\n".join(f"- {i}" for i in items) if items else empty)


def on_last_partition(
    context: dg.AssetExecutionContext, metadata: Mapping[str, Any], asset_key: dg.AssetKey | None = None
) -> dict[str, Any]:
    """Attach `metadata` (the tables and plots) to the materialization of the run's last partition and return what
    the materialization of every partition carries. A run over a range records one materialization per day, each
    with the metadata given to the output: copying the plots into hundreds of them would grow the event log by
    megabytes for nothing, so the other days say where the preview is. Unpartitioned or one partition: `metadata`
    itself (also for an unpartitioned asset in a run over a range: the dbt models, run once after the ingestion)."""
    if context.assets_def.partitions_def is None or not context.has_partition_key_range:
        return dict(metadata)
    keys = context.partition_key_range
    if keys.start == keys.end:
        return dict(metadata)
    context.add_asset_metadata(dict(metadata), asset_key=asset_key, partition_key=keys.end)
    return {"preview_on": f"partition {keys.end}, the last of this run's range {keys.start}..{keys.end}"}


# -- what the UI relies on (the preview test and the assets' own guard) ---------------------------------------------


def _value(entry: Any) -> Any:
    return entry.value if isinstance(entry, dg.MetadataValue) else entry


def is_preview(entry: Any) -> bool:
    """A table: table metadata, or Markdown holding a Markdown table or an embedded PNG."""
    if isinstance(entry, dg.TableMetadataValue):
        return bool(entry.records)
    if isinstance(entry, dg.MarkdownMetadataValue):
        text = entry.value or ""
        return MARKDOWN_RULE in text or PNG_PREFIX in text
    return False


def has_preview(metadata: Mapping[str, Any]) -> bool:
    return any(is_preview(v) for v in metadata.values())


def is_placeholder(entry: Any) -> bool:
    """A value that is missing or stands in for one: None, NaN, an empty or placeholder text, Python's None/NaN
    printed into a text, an empty table or JSON."""
    if isinstance(entry, dg.TableMetadataValue):
        return not entry.records or any(
            isinstance(v, float) and math.isnan(v) for r in entry.records for v in r.data.values()
        )
    value = _value(entry)
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        text = _PAYLOAD.sub("", value)  # the base64 of an image is no text to judge
        return text.strip().lower() in PLACEHOLDER_TEXTS or bool(_LEAKED.search(text))
    if isinstance(value, (dict, list)):
        return not value
    return False


def placeholders(metadata: Mapping[str, Any]) -> list[str]:
    """The keys whose values are placeholders."""
    return sorted(k for k, v in metadata.items() if is_placeholder(v))
