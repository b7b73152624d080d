"""Plan rows: validation, intended changes, cents."""

from __future__ import annotations

import math

import pytest

from rl.bidding.plan import PlanError, PlanRow, demo_targets, to_cents


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
        ({"hour_modifiers": (1.0,) * 23}, "24 positive multipliers"),
        ({"data_partition": ""}, "non-empty"),
    ],
)
def test_malformed_rows_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(PlanError, match=message):
        row(**kwargs)


def test_hour_modifiers_and_cents():
    assert row(hour_modifiers=[1.0] * 24).has_hour_modifiers is False
    assert row(hour_modifiers=[1.0] * 23 + [1.3]).has_hour_modifiers is True
    assert row(bid_targets=["1"]).bid_targets == ("1",)
    assert [to_cents(v) for v in (1.555, 2.345, 0.005, 12.34, -1.5)] == [156, 235, 1, 1234, -150]
    assert demo_targets(101) == ("10100", ("10101",)) and demo_targets(201, "meta") == ("20100", ("20101",))
    assert demo_targets(401, "microsoft_ads") == ("401", ("40101",))  # Microsoft: the campaign holds the budget
