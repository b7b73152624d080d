"""The checks a report window passes before it is written, and which days a run's lookback re-pulls."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from rl.sources.ingest import IngestionError, check, conform, lookback_start

D = dt.date(2025, 3, 2)


def conversions(key_events: float, day: dt.date = D) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "date": [day],
            "channel_group": ["Paid Search"],
            "source_medium": ["google / cpc"],
            "campaign_name": ["Brand"],
            "device": ["mobile"],
            "key_events": [key_events],
            "revenue": [-12.0],  # refunds make revenue negative: allowed
        }
    )
    return conform(frame, "ga4_conversions")


def test_negative_key_events_are_refused_naming_the_row():
    check("ga4_conversions", conversions(3.0), [D])
    with pytest.raises(IngestionError, match=r"1 row\(s\) with a negative key_events, e\.g\. row 0 \(date 2025-03-02"):
        check("ga4_conversions", conversions(-1.0), [D])


def test_a_row_outside_the_window_is_refused_naming_report_row_and_date():
    with pytest.raises(IngestionError) as info:
        check("ga4_conversions", conversions(1.0, D + dt.timedelta(days=3)), [D], window=(D, D))
    assert str(info.value).startswith(
        "ga4_conversions: 1 row(s) dated outside the requested window 2025-03-02..2025-03-02"
    )
    assert "row 0 (channel_group Paid Search" in str(info.value) and "dated 2025-03-05" in str(info.value)


def test_the_lookback_revisits_only_days_already_loaded():
    loaded = {D - dt.timedelta(days=i) for i in (1, 2, 5)}  # day -3 is missing
    assert lookback_start(D, D - dt.timedelta(days=30), loaded) == D - dt.timedelta(days=2)
    assert lookback_start(D, D - dt.timedelta(days=1), loaded) == D - dt.timedelta(days=1)  # the lookback's limit
    assert lookback_start(D, D - dt.timedelta(days=30), set()) == D  # a first backfill starts where it was asked
