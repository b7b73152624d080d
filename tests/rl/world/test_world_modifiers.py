"""The demo world's device and hour-block bid modifiers: pushed and checked against the platform, persisted, applied
in `advance` and `replay`, recorded daily, and reported as Google Ads `campaign_criterion` rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from google.ads.googleads.v26.enums import CriterionTypeEnum, DayOfWeekEnum, DeviceEnum, MinuteOfHourEnum
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsStreamResponse

from rl.market.params import MarketParams
from rl.world.gaql import GaqlError
from rl.world.world import PLATFORM_CUSTOMER_IDS, DemoWorld, WorldError
from tests.conftest import scaled

GOOGLE = PLATFORM_CUSTOMER_IDS["google_ads"]
CRITERIA_FIELDS = (
    "campaign.id, campaign_criterion.criterion_id, campaign_criterion.type, campaign_criterion.device.type, "
    "campaign_criterion.ad_schedule.day_of_week, campaign_criterion.ad_schedule.start_hour, "
    "campaign_criterion.ad_schedule.end_hour, campaign_criterion.ad_schedule.start_minute, "
    "campaign_criterion.ad_schedule.end_minute, campaign_criterion.bid_modifier, campaign_criterion.resource_name"
)
DEVICE = (1.5, 0.5, 0.0)  # mobile +50%, desktop −50%, tablet excluded
HOURS = (0.2, 1.0, 1.0, 1.0, 1.0, 3.0)


@pytest.fixture(scope="module")
def world_file(tmp_path_factory, reference_params: MarketParams) -> Path:
    path = tmp_path_factory.mktemp("worlds") / "small.yaml"
    path.write_text(scaled(reference_params, 0.1).to_yaml())
    return path


def _rows(world: DemoWorld, query: str, customer: str = GOOGLE) -> list:
    return [row for batch in world.search_stream(customer, query) for row in batch.results]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"campaign_id": 201, "device_modifiers": [1, 1, 1]}, "201 is on meta, which has no device or hour-block"),
        ({"campaign_id": 301, "hour_modifiers": [1] * 6}, "301 is on tiktok, which has no"),
        ({"campaign_id": 101, "device_modifiers": [1, 1]}, "device_modifiers needs 3 values, got 2"),
        ({"campaign_id": 101, "hour_modifiers": [1] * 4}, "hour_modifiers needs 6 values, got 4"),
        ({"campaign_id": 101, "device_modifiers": [11, 1, 1]}, r"outside google_ads's range \[0.0, 10.0\]"),
        ({"campaign_id": 401, "hour_modifiers": [0.05] + [1] * 5}, r"outside microsoft_ads's range \[0.1, 10.0\]"),
        ({"campaign_id": 101, "device_modifiers": [float("nan"), 1, 1]}, "outside google_ads's range"),
    ],
)
def test_bad_modifier_pushes_are_refused_and_change_nothing(tmp_path, world_file, kwargs, message):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=1)
    before = dict(w.modifiers)
    with pytest.raises(WorldError, match=message):
        w.push(source="test", **kwargs)
    assert w.modifiers == before and w.pushes() == []


def test_modifiers_are_persisted_applied_recorded_and_replayed(tmp_path, world_file):
    base = DemoWorld.open(tmp_path / "base", world_file, seed=4)
    base.advance(6)
    w = DemoWorld.open(tmp_path / "w", world_file, seed=4)
    w.advance(3)
    day = w.today
    w.push(101, device_modifiers=DEVICE, hour_modifiers=HOURS, source="test")
    w.push(102, bid=2.0, source="test")  # a budget/bid push keeps the modifiers in force
    assert DemoWorld.open(tmp_path / "w", world_file, seed=4).modifiers[101] == (DEVICE, HOURS)
    w.advance(3)

    ads = w.frames()["ads"].filter(pl.col("campaign_id") == 101)
    before, after = ads.filter(pl.col("date") < day), ads.filter(pl.col("date") >= day)
    assert_frame = base.frames()["ads"].filter((pl.col("campaign_id") == 101) & (pl.col("date") < day))
    assert before.sort(before.columns).equals(assert_frame.sort(assert_frame.columns))  # nothing changes the past
    assert after.filter(pl.col("device") == "tablet")["impressions"].sum() == 0  # the excluded device
    assert before.filter(pl.col("device") == "tablet")["impressions"].sum() > 0
    share = lambda f, dev: f.filter(pl.col("device") == dev)["impressions"].sum() / f["impressions"].sum()  # noqa: E731
    assert share(after, "mobile") > share(before, "mobile")  # +50% on mobile wins more of its auctions

    facts = w.frames()["modifiers"].filter(pl.col("campaign_id") == 101).sort("date", "dimension", "index")
    in_force = lambda d, dim: facts.filter((pl.col("date") == d) & (pl.col("dimension") == dim))["bid_modifier"]  # noqa: E731
    assert in_force(day - dt.timedelta(days=1), "device").to_list() == [1.0, 1.0, 1.0]
    assert tuple(in_force(day, "device")) == DEVICE and tuple(in_force(day, "hour")) == HOURS
    assert w.frames()["modifiers"].filter(pl.col("campaign_id") == 201).height == 0  # social: none

    costs: list[float] = []
    w.replay(lambda draws, state, result: costs.append(float(result.cost.sum())))
    recorded = w.frames()["ads"].group_by("date").agg(pl.col("cost_micros").sum()).sort("date")["cost_micros"]
    np.testing.assert_allclose(np.array(costs) * 1e6, recorded.to_numpy(), atol=8 * 24 * 3)


def test_a_format_2_state_directory_is_upgraded_with_its_modifier_history(tmp_path, world_file):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=2)
    w.advance(4)
    w.push(101, bid=2.5, source="test")
    # what a format-2 directory looks like: no modifiers in world.json, pushes without modifier keys, no fact table
    meta_path = tmp_path / "w" / "world.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = 2
    del meta["modifiers"]
    meta_path.write_text(json.dumps(meta))
    pushes = tmp_path / "w" / "pushes.jsonl"
    old = [json.loads(line) for line in pushes.read_text().splitlines()]
    pushes.write_text("".join(json.dumps({k: v for k, v in p.items() if "modifiers" not in k}) + "\n" for p in old))
    for f in (tmp_path / "w" / "tables" / "modifiers").glob("*.parquet"):
        f.unlink()

    reopened = DemoWorld.open(tmp_path / "w", world_file, seed=2)
    assert json.loads(meta_path.read_text())["format"] == 3
    assert reopened.pushes()[0].bid == 2.5 and reopened.pushes()[0].device_modifiers is None
    facts = reopened.frames()["modifiers"]
    assert sorted(facts["date"].unique()) == [w.params.history_start + dt.timedelta(days=i) for i in range(4)]
    assert set(facts["bid_modifier"]) == {1.0}
    reopened.advance(1)
    assert facts.height * 5 // 4 == reopened.frames()["modifiers"].height


def test_an_unknown_format_is_refused_by_name(tmp_path, world_file):
    DemoWorld.open(tmp_path / "w", world_file, seed=2)
    meta_path = tmp_path / "w" / "world.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "format": 1}))
    with pytest.raises(WorldError, match="unsupported world format 1 .* delete the state directory"):
        DemoWorld.open(tmp_path / "w", world_file, seed=2)


def test_campaign_criteria_are_reported_as_google_ads_rows(tmp_path, world_file):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=3)
    w.advance(2)
    w.push(101, device_modifiers=DEVICE, hour_modifiers=HOURS, source="test")
    rows = _rows(w, f"SELECT {CRITERIA_FIELDS} FROM campaign_criterion WHERE campaign.id = 101")
    assert all(isinstance(r, GoogleAdsRow) for r in rows)
    device = {
        r.campaign_criterion.criterion_id: r.campaign_criterion for r in rows if r.campaign_criterion.device.type_
    }
    assert {k: (v.device.type_, round(v.bid_modifier, 6)) for k, v in device.items()} == {
        30000: (DeviceEnum.Device.DESKTOP, 0.5),
        30001: (DeviceEnum.Device.MOBILE, 1.5),
        30002: (DeviceEnum.Device.TABLET, 0.0),
    }
    assert device[30001].resource_name == f"customers/{GOOGLE}/campaignCriteria/101~30001"
    assert device[30001].type_ == CriterionTypeEnum.CriterionType.DEVICE
    schedule = [r.campaign_criterion for r in rows if r.campaign_criterion.type_.name == "AD_SCHEDULE"]
    assert len(schedule) == 6 * 7  # a block on every weekday is seven criteria
    last_block = [c for c in schedule if c.ad_schedule.start_hour == 20]
    assert {c.ad_schedule.day_of_week for c in last_block} == {d for d in DayOfWeekEnum.DayOfWeek if d.value >= 2}
    assert {(c.ad_schedule.end_hour, c.ad_schedule.start_minute, c.ad_schedule.end_minute) for c in last_block} == {
        (24, MinuteOfHourEnum.MinuteOfHour.ZERO, MinuteOfHourEnum.MinuteOfHour.ZERO)
    }
    assert {round(c.bid_modifier, 6) for c in last_block} == {3.0}
    assert len({c.criterion_id for c in schedule}) == 42
    # a campaign never adjusted by hour has no ad schedule (it runs every hour at its bid): devices only
    others = _rows(w, f"SELECT {CRITERIA_FIELDS} FROM campaign_criterion WHERE campaign.id = 102")
    assert {r.campaign_criterion.type_.name for r in others} == {"DEVICE"} and len(others) == 3
    # the current state is what is in force from today; by date, what was in force each day
    by_date = _rows(
        w,
        "SELECT campaign.id, segments.date, campaign_criterion.criterion_id, campaign_criterion.bid_modifier "
        f"FROM campaign_criterion WHERE segments.date BETWEEN '{w.params.history_start}' AND '{w.today}' "
        "AND campaign_criterion.type = DEVICE AND campaign.id = 101",
    )
    assert len(by_date) == 3 * 2 and {round(r.campaign_criterion.bid_modifier, 6) for r in by_date} == {1.0}
    w.advance(1)
    latest = [r for r in _rows(w, by_date_query(w)) if r.segments.date == str(w.today - dt.timedelta(days=1))]
    assert sorted(round(r.campaign_criterion.bid_modifier, 6) for r in latest) == [0.0, 0.5, 1.5]
    # only search accounts have criteria
    assert _rows(w, f"SELECT {CRITERIA_FIELDS} FROM campaign_criterion", PLATFORM_CUSTOMER_IDS["meta"]) == []
    stream = w.search_stream(GOOGLE, f"SELECT {CRITERIA_FIELDS} FROM campaign_criterion")
    assert isinstance(stream[0], SearchGoogleAdsStreamResponse)
    assert list(SearchGoogleAdsStreamResponse.pb(stream[0]).field_mask.paths)[:2] == [
        "campaign.id",
        "campaign_criterion.criterion_id",
    ]


def by_date_query(w: DemoWorld) -> str:
    return (
        "SELECT campaign.id, segments.date, campaign_criterion.bid_modifier FROM campaign_criterion "
        f"WHERE segments.date BETWEEN '{w.params.history_start}' AND '{w.today}' AND campaign.id = 101 "
        "AND campaign_criterion.type = DEVICE"
    )


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SELECT campaign.id, metrics.clicks FROM campaign_criterion", "PROHIBITED_FIELD_IN_SELECT_CLAUSE"),
        ("SELECT campaign_criterion.bid_modifier FROM campaign", "PROHIBITED_FIELD_IN_SELECT_CLAUSE"),
        ("SELECT campaign.id, segments.date FROM campaign_criterion", "EXPECTED_FILTERS_ON_DATE_RANGE"),
        (
            "SELECT campaign.id FROM campaign_criterion WHERE segments.date BETWEEN '2024-11-26' AND '2024-11-27'",
            "EXPECTED_REFERENCED_FIELD_IN_SELECT_CLAUSE",
        ),
        (
            "SELECT campaign.id, segments.date FROM campaign_criterion WHERE segments.date >= '2024-11-26'",
            "EXPECTED_FILTERS_ON_DATE_RANGE",
        ),
        ("SELECT campaign_criterion.type FROM campaign_criterion WHERE campaign_criterion.type = FOO", "BAD_ENUM"),
    ],
)
def test_bad_criteria_queries_are_refused_like_the_api(tmp_path, world_file, query, code):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=3)
    w.advance(2)
    with pytest.raises(GaqlError, match=code):
        w.search_stream(GOOGLE, query)
