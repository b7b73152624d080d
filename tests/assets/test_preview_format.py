"""assets/_preview.py: rows become Markdown or table metadata, PNGs are embedded, and the bar the preview test holds
every materialization to (a table or a plot, no placeholder value) says what it should."""

import base64
import datetime as dt
import math

import dagster as dg
import polars as pl

from assets import _preview

PNG = b"\x89PNG\r\n\x1a\nfake"


def test_markdown_table_renders_rows_nulls_pipes_and_a_footer():
    frame = pl.DataFrame(
        {
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 1)],
            "campaign_name": ["Search | Brand", "x" * 100],
            "spend": [1234.5, 0.01234],
            "share": [None, 0.5],
        }
    )
    text = _preview.md_table(frame, "nothing", max_rows=1)
    lines = text.splitlines()
    assert lines[0] == "| date | campaign_name | spend | share |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| 2025-01-02 | Search \\| Brand | 1,234.50 | null |"  # a pipe cannot end the cell
    assert lines[-1] == "… 1 of 2 rows shown"
    assert _preview.is_preview(dg.MetadataValue.md(text)) and not _preview.is_placeholder(dg.MetadataValue.md(text))
    long = _preview.md_table(frame.tail(1), "nothing")
    assert "x" * (_preview.MAX_CELL - 1) + "…" in long and "x" * _preview.MAX_CELL not in long


def test_no_rows_says_what_is_absent():
    value = _preview.markdown(pl.DataFrame(), "no rows in window 2025-01-01..2025-01-03")
    assert value.value == "no rows in window 2025-01-01..2025-01-03"
    assert not _preview.is_preview(value) and not _preview.is_placeholder(value)
    assert _preview.table([], "no change to push").value == "no change to push"
    assert _preview.bullets([], "none").value == "none"
    assert _preview.bullets(["a", "b"], "none").value == "- a\n- b"


def test_table_metadata_from_dicts():
    value = _preview.table(
        [{"campaign": 101, "old": "not read", "new": 2.345678, "when": dt.date(2025, 1, 1), "validate_only": True}],
        "no rows",
    )
    assert isinstance(value, dg.TableMetadataValue)
    assert [c.type for c in value.schema.columns] == ["int", "string", "float", "date", "bool"]
    assert value.records[0].data == {
        "campaign": 101,
        "old": "not read",
        "new": 2.3457,
        "when": "2025-01-01",
        "validate_only": True,
    }
    assert _preview.is_preview(value) and not _preview.is_placeholder(value)


def test_png_is_embedded_and_its_payload_is_never_judged_as_text(tmp_path):
    (tmp_path / "p.png").write_bytes(PNG)
    for image in (PNG, tmp_path / "p.png"):
        value = _preview.png(image, "plot")
        assert value.value == f"![plot](data:image/png;base64,{base64.b64encode(PNG).decode()})"
        assert _preview.is_preview(value) and not _preview.is_placeholder(value)
    # a payload that happens to spell "None" is data, not a leaked None
    assert not _preview.is_placeholder(dg.MetadataValue.md("![p](data:image/png;base64,abcNone+NaN/nan=)"))


def test_placeholders_are_named():
    metadata = {
        "none": None,
        "nan": dg.MetadataValue.float(math.nan),
        "empty": "",
        "todo": dg.MetadataValue.text("TODO"),
        "na": "n/a",
        "placeholder": dg.MetadataValue.md(" Placeholder "),
        "leaked": dg.MetadataValue.text("None .. None"),
        "leaked_nan": "final score nan",
        "empty_json": dg.MetadataValue.json({}),
        "empty_table": dg.MetadataValue.table([], dg.TableSchema([dg.TableColumn("a")])),
        "fine_none": "none (the promoted model)",
        "fine_text": "2025-01-01 .. 2025-01-29",
        "fine_int": dg.MetadataValue.int(0),
        "fine_bool": dg.MetadataValue.bool(False),
        "fine_json": dg.MetadataValue.json({"note": "first materialization: nothing to compare", "x": None}),
        "fine_inf_in_table": dg.MetadataValue.md("| cpa |\n|---|\n| inf |"),
    }
    assert _preview.placeholders(metadata) == sorted(k for k in metadata if not k.startswith("fine"))
    assert not _preview.has_preview({k: v for k, v in metadata.items() if k != "fine_inf_in_table"})
    assert _preview.has_preview(metadata)


def test_one_partition_keeps_the_preview_on_its_own_materialization():
    partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-01-10")

    @dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def sample(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        preview = {"preview": dg.MetadataValue.md("| a |\n|---|\n| 1 |")}
        return dg.MaterializeResult(metadata={"rows": 1, **_preview.on_last_partition(context, preview)})

    instance = dg.DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": "2025-01-02", "dagster/asset_partition_range_end": "2025-01-04"}
    result = dg.materialize([sample], instance=instance, tags=tags)
    by_partition = {
        e.event_specific_data.materialization.partition: e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert _preview.has_preview(by_partition["2025-01-04"])  # the last day of a range carries the tables
    assert not _preview.has_preview(by_partition["2025-01-02"])
    assert "2025-01-04" in by_partition["2025-01-02"]["preview_on"].value
    latest = instance.get_latest_materialization_event(dg.AssetKey("sample")).asset_materialization
    assert latest.partition == "2025-01-04" and _preview.has_preview(latest.metadata)
    one = dg.materialize([sample], instance=instance, partition_key="2025-01-07")
    assert _preview.has_preview(one.asset_materializations_for_node("sample")[0].metadata)
