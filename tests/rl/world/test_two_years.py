"""The default world holds two years of history that GA4 and the ad platforms can report on."""

from __future__ import annotations

import datetime as dt

import pytest
from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest

from rl.world.ga4_api import run_report_to_frame
from rl.world.paths import DEFAULT_WORLD_FILE
from rl.world.world import DEFAULT_HISTORY_DAYS, GA4_PROPERTY_ID, DemoWorld


@pytest.mark.slow
def test_two_years_of_the_default_world_are_reportable(tmp_path):
    world = DemoWorld.open(tmp_path / "w", DEFAULT_WORLD_FILE, seed=0)
    world.advance(DEFAULT_HISTORY_DAYS)
    assert world.today == world.params.history_start + dt.timedelta(days=730)
    request = RunReportRequest(
        property=f"properties/{GA4_PROPERTY_ID}",
        dimensions=[Dimension(name="date"), Dimension(name="sessionDefaultChannelGroup")],
        metrics=[Metric(name="sessions"), Metric(name="keyEvents")],
        date_ranges=[DateRange(start_date="730daysAgo", end_date="yesterday")],
    )
    frame = run_report_to_frame(world.run_report(request))
    assert frame["date"].n_unique() == 730
    assert set(frame["sessionDefaultChannelGroup"]) == {"Paid Search", "Paid Social", "Organic Search", "Direct"}
    query = (
        "SELECT campaign.id, segments.date, metrics.cost_micros FROM campaign "
        f"WHERE segments.date BETWEEN '{world.params.history_start}' AND '{world.today - dt.timedelta(days=1)}'"
    )
    days = {r.segments.date for b in world.search_stream("1234567890", query) for r in b.results}
    assert len(days) == 730
