"""daily_performance_report on a copy of the session's demo warehouse and world (tests/assets/conftest.py): after
the day's plan and push, and on a day with neither."""

from __future__ import annotations

import dagster as dg

from assets.bidding import BIDDING_ASSETS
from assets.reporting import REPORT_FILE, REPORTING_ASSETS, report_dir
from tests.assets.conftest import LAST

PLACEHOLDERS = {"", "none", "nan", "n/a", "null"}


def _materialize(copy, selection: list[str]):
    return dg.materialize(
        [*BIDDING_ASSETS, *REPORTING_ASSETS],
        selection=selection,
        partition_key=LAST,
        resources=copy["resources"],
        run_config={"ops": {"daily_bid_plan": {"config": {"policy": "proportional"}}}}
        if "daily_bid_plan" in selection
        else {},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _report_metadata(result) -> dict:
    mats = result.asset_materializations_for_node("daily_performance_report")
    assert len(mats) == 1
    return mats[0].metadata


def _assert_no_placeholders(metadata: dict) -> None:
    for key, value in metadata.items():
        text = str(value.value).strip()
        assert text.lower() not in PLACEHOLDERS, f"metadata {key!r} is a placeholder: {text!r}"
        assert "| None |" not in text and "| nan |" not in text.lower(), f"metadata {key!r}: {text[:500]}"


def test_the_report_of_a_planned_and_pushed_day_is_written_linked_and_rewritten_identically(copy):
    assert _materialize(copy, ["daily_bid_plan", "bid_push"]).success
    result = _materialize(copy, ["daily_performance_report"])
    assert result.success
    meta = _report_metadata(result)
    path = report_dir(LAST) / REPORT_FILE
    assert path.is_relative_to(copy["tmp"] / "data" / "reports" / "daily")
    assert meta["report_path"].value == str(path) and path.exists()
    assert isinstance(meta["report_path"], dg.PathMetadataValue)
    assert "|---" in meta["summary"].value and "all platforms" in meta["summary"].value
    assert meta["chart"].value.startswith("![") and "data:image/png;base64," in meta["chart"].value
    assert "baseline:proportional" in meta["plan"].value
    assert "demo" in meta["push"].value
    _assert_no_placeholders(meta)

    html = path.read_text()
    for section in ('id="platforms"', 'id="pacing"', 'id="cpa"', 'id="campaigns"', 'id="plan"', 'id="push"'):
        assert section in html
    assert "baseline:proportional" in html and "No bid plan" not in html and "No push" not in html
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == sorted([REPORT_FILE, "spend_pacing.png", "campaigns.png", "cpa_vs_target.png"])
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}

    (path.parent / "old_chart.png").write_bytes(b"left by an earlier version")
    again = _materialize(copy, ["daily_performance_report"])
    assert again.success
    after = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    assert after == before  # same files, same bytes; nothing stale left behind
    assert _report_metadata(again)["summary"].value == meta["summary"].value


def test_a_day_without_plan_or_push_is_reported_as_such(copy):
    result = _materialize(copy, ["daily_performance_report"])
    assert result.success
    meta = _report_metadata(result)
    assert "No bid plan is stored" in meta["plan"].value
    assert "No push is recorded" in meta["push"].value
    _assert_no_placeholders(meta)
    html = (report_dir(LAST) / REPORT_FILE).read_text()
    assert "No bid plan is stored" in html and "No push is recorded" in html
