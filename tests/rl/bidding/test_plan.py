"""Plan rows: validation, intended changes, cents."""

from __future__ import annotations

import math

import pytest

from rl.bidding.plan import PlanError, PlanRow, demo_targets, parse_modifier_target, to_cents


def row(**kwargs) -> PlanRow:
    base = dict(
        platform="google_ads",
        campaign_id=101,
        daily_budget=40.0,
        bid=2.5,
        current_budget=35.0,
        current_bid=2.5,
        policy_version="p1",
        data_partition="2025-03-02",
        budget_target="9001",
        bid_targets=("7001", "7002"),
    )
    return PlanRow(**{**base, **kwargs})


def test_changes_name_every_target_and_know_when_nothing_changes():
    changes = row().changes()
    assert [(c.field, c.target, c.old_value, c.new_value) for c in changes] == [
        ("budget", "9001", 35.0, 40.0),
        ("bid", "7001", 2.5, 2.5),
        ("bid", "7002", 2.5, 2.5),
    ]
    assert [c.unchanged for c in changes] == [False, True, True]
    assert row(daily_budget=None).changes()[0].field == "bid"
    assert row(current_bid=None).changes()[1].unchanged is False  # unknown value in force: push it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": "bing"}, "platform 'bing'"),
        ({"campaign_id": 0}, "positive integer"),
        ({"daily_budget": math.nan}, "daily_budget must be a finite number"),
        ({"bid": -1.0}, "bid must be"),
        ({"bid": 0.004}, "rounds to 0.00"),
        ({"budget_target": None}, "needs a budget_target"),
        ({"bid_targets": ()}, "needs bid_targets"),
        ({"bid_targets": ("1", "1")}, "distinct"),
        ({"hour_modifiers": (1.0,) * 5}, "one positive multiplier per hour block"),
        ({"hour_modifiers": (1.0, 0.0)}, "one positive multiplier per hour block"),
        ({"device_modifiers": (1.0, 1.0)}, r"3 multipliers >= 0 \('mobile', 'desktop', 'tablet'\)"),
        ({"device_modifiers": (1.0, 1.0, 1.0), "current_hour_modifiers": (1.0,) * 6}, None),
        ({"hour_modifiers": (1.0,) * 6, "current_hour_modifiers": (1.0,) * 4}, "hour_modifiers has 6 values"),
        ({"platform": "meta", "device_modifiers": (1.0, 1.0, 1.0)}, "meta has no device or hour-of-day bid"),
        ({"data_partition": ""}, "non-empty"),
    ],
)
def test_malformed_rows_are_refused_with_the_field_named(kwargs, message):
    if message is None:
        row(**kwargs)  # well formed
        return
    with pytest.raises(PlanError, match=message):
        row(**kwargs)


def test_modifier_changes_one_per_device_and_hour_block():
    r = row(
        device_modifiers=(1.2, 1.0, 0.0),
        current_device_modifiers=(1.0, 1.0, 0.0),
        hour_modifiers=(0.5, 1, 1, 1, 1, 1.5),
    )
    mods = [(c.field, c.target, c.old_value, c.new_value, c.unchanged) for c in r.changes()[3:]]
    assert mods[:3] == [
        ("device_modifier", "101:mobile", 1.0, 1.2, False),
        ("device_modifier", "101:desktop", 1.0, 1.0, True),
        ("device_modifier", "101:tablet", 0.0, 0.0, True),
    ]
    assert [m[1] for m in mods[3:]] == [
        "101:h00_04",
        "101:h04_08",
        "101:h08_12",
        "101:h12_16",
        "101:h16_20",
        "101:h20_24",
    ]
    assert all(m[2] is None and m[4] is False for m in mods[3:])  # modifiers in force unknown: all sent
    assert parse_modifier_target("101:h08_12") == (101, "h08_12", 2)
    assert parse_modifier_target("7:tablet") == (7, "tablet", None)
    for bad in ("101", "x:mobile", "101:h03_07", "101:phone"):
        with pytest.raises(PlanError, match="modifier target"):
            parse_modifier_target(bad)


def test_targets_and_cents():
    assert row(bid_targets=["1"]).bid_targets == ("1",)
    assert [to_cents(v) for v in (1.555, 2.345, 0.005, 12.34, -1.5)] == [156, 235, 1, 1234, -150]
    assert demo_targets(101) == ("10100", ("10101",)) and demo_targets(201, "meta") == ("20100", ("20101",))
    assert demo_targets(401, "microsoft_ads") == ("401", ("40101",))  # Microsoft: the campaign holds the budget
