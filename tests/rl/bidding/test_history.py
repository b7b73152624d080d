"""MartHistory's breakdowns and modifiers from the device, hourly and modifier marts: keyed as the observation keys
them, carried forward like the settings, and refused with a message when what is in force cannot be known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from rl.bidding import history as mart_history
from rl.bidding.plan import PlanError
from rl.env.schema import breakdown_keys
from tests.rl.bidding.test_planner import DIM, LAST, SCHEMA, marts

CAMPAIGNS = mart_history.campaigns_in_schema_order(SCHEMA, DIM)
DAYS = 60
SEARCH = [c for c in CAMPAIGNS if c.platform in ("google_ads", "microsoft_ads")]


def device_rows(day: dt.date, campaign, device: str, spend: float, clicks: float, conversions: float) -> dict:
    return {
        "date": day,
        "platform": campaign.platform,
        "campaign_id": campaign.campaign_id,
        "device": device,
        "spend": spend,
        "clicks": clicks,
        "conversions": conversions,
    }


def modifier_rows(day: dt.date, campaign, values: list[float]) -> list[dict]:
    return [
        {
            "date": day,
            "platform": campaign.platform,
            "campaign_id": campaign.campaign_id,
            "modifier_key": k,
            "bid_modifier": v,
        }
        for k, v in zip(breakdown_keys(6), values, strict=True)
    ]


def frames(modifiers: list[dict] | None = None):
    c = CAMPAIGNS[0]
    devices = pl.DataFrame(
        [
            device_rows(LAST, c, "mobile", 10.0, 4, 1),
            device_rows(LAST, c, "desktop", 6.0, 2, 0.5),
            device_rows(LAST, c, "connected_tv", 99.0, 9, 9),  # not a device the simulator models: left out
            device_rows(LAST - dt.timedelta(days=DAYS), c, "mobile", 50.0, 5, 5),  # before the window
        ]
    )
    hourly = pl.DataFrame(
        [
            {k: v for k, v in device_rows(LAST, c, "", s, k_, v_).items() if k != "device"} | {"hour": h}
            for h, s, k_, v_ in ((1, 3.0, 1, 0.0), (3, 2.0, 1, 1.0), (22, 11.0, 4, 0.5))
        ]
    )
    if modifiers is None:
        modifiers = [r for c in SEARCH for r in modifier_rows(LAST - dt.timedelta(days=10), c, [1.0] * 9)]
    return {"devices": devices, "hourly": hourly, "modifiers": pl.DataFrame(modifiers)}


def test_breakdowns_per_device_then_hour_block_and_modifiers_carried_forward():
    mods = [r for c in SEARCH for r in modifier_rows(LAST - dt.timedelta(days=20), c, [1.0] * 9)]
    mods += modifier_rows(LAST - dt.timedelta(days=3), SEARCH[0], [1.2, 0.8, 0.0, 0.5, 1, 1, 1, 1, 2.0])
    h = mart_history.history_from_marts(marts(), CAMPAIGNS, LAST, DAYS, **frames(mods))
    assert h.breakdowns.shape == (3, DAYS, len(CAMPAIGNS), 9) and h.modifiers.shape == (DAYS, len(CAMPAIGNS), 9)
    spend, clicks, conv = h.breakdowns[:, -1, 0]
    assert spend.tolist() == [10.0, 6.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 11.0]  # hours 1 and 3 are block 00-04
    assert clicks.tolist() == [4, 2, 0, 2, 0, 0, 0, 0, 4] and conv.tolist() == [1, 0.5, 0, 1, 0, 0, 0, 0, 0.5]
    assert h.breakdowns[:, :-1].sum() == 0
    j = CAMPAIGNS.index(SEARCH[0])
    assert h.modifiers[-1, j].tolist() == [1.2, 0.8, 0.0, 0.5, 1, 1, 1, 1, 2.0]  # carried forward to the last day
    assert np.all(h.modifiers[: DAYS - 4, j] == 1.0)  # before: 1, and back-filled before the first row
    assert np.all(h.modifiers[DAYS - 4 :, j, 0] == 1.2)
    social = [i for i, c in enumerate(CAMPAIGNS) if c not in SEARCH]
    assert np.all(h.modifiers[:, social] == 1.0)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no rows for a search campaign", r"no modifiers for google_ads/101 .* \(ingest ad_modifiers\)"),
        ("unfolded schedule", "has no single h08_12 modifier .* disagree across weekdays"),
        ("other hour blocks", r"modifier keys \['h00_08'\], not those of 6 hour blocks"),
        ("unknown campaign", r"fct_campaign_modifiers_daily has campaigns \[\('google_ads', 999\)\] unknown"),
    ],
)
def test_modifiers_that_cannot_be_known_are_refused(case, message):
    day = LAST - dt.timedelta(days=1)
    rows = [r for c in SEARCH for r in modifier_rows(day, c, [1.0] * 9)]
    if case == "no rows for a search campaign":
        rows = [r for r in rows if r["campaign_id"] != 101]
    elif case == "unfolded schedule":
        rows[5]["bid_modifier"] = None
    elif case == "other hour blocks":
        rows[3]["modifier_key"] = "h00_08"
    else:
        rows[0]["campaign_id"] = 999
    with pytest.raises(PlanError, match=message):
        mart_history.history_from_marts(marts(), CAMPAIGNS, LAST, DAYS, **frames(rows))


def test_the_three_marts_come_together():
    with pytest.raises(PlanError, match="give all three or none"):
        mart_history.history_from_marts(marts(), CAMPAIGNS, LAST, DAYS, devices=frames()["devices"])
