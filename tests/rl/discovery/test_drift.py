"""Drift between two discoveries: zero for identical patterns, large where something moved, and `exceeds` names it."""

from __future__ import annotations

import pytest

from rl.discovery.drift import DEFAULT_BOUNDS, drift, exceeds, kendall_distance, total_variation
from rl.discovery.engine import discover_marts
from tests.rl.discovery.synthetic import Planted, synthetic_marts


@pytest.fixture(scope="module")
def base():
    return discover_marts(synthetic_marts(120, seed=1), n_bootstrap=50)


def test_identical_patterns_have_zero_drift_and_exceed_nothing(base):
    d = drift(base, base)
    assert d and all(v == 0 for v in d.values())
    assert exceeds(d) == []
    assert {
        "hour_of_day.account.all.clicks.tv",
        "devices.ranking_distance",
        "channels.account.cpa_rel_change",
        "conversion_lag.order_distance",
        "segments.membership_change",
    } <= set(d)


def test_another_sample_of_the_same_market_stays_within_the_default_bounds(base):
    again = discover_marts(synthetic_marts(120, seed=2), n_bootstrap=50)
    d = drift(base, again)
    assert 0 < d["hour_of_day.account.all.clicks.tv"] < 0.05
    assert exceeds(d) == []


def test_a_shifted_hour_profile_is_large_drift_named_by_exceeds(base):
    shifted = discover_marts(synthetic_marts(120, planted=Planted(peak_hour=20), seed=1), n_bootstrap=50)
    d = drift(base, shifted)
    assert d["hour_of_day.account.all.clicks.tv"] > 0.2
    assert d["hour_of_day.account.all.clicks.peak_shift_hours"] == 6
    named = exceeds(d)
    assert any(line.startswith("hour_of_day.account.all.clicks.tv") for line in named)
    assert all(not line.startswith(("devices.", "channels.")) for line in named)


def test_a_flipped_device_ranking_and_dearer_campaigns_are_named(base):
    planted = Planted(
        device_cvr={"mobile": 0.04, "desktop": 0.01, "tablet": 0.02},
        campaigns=tuple((*c[:5], c[5] * 2, *c[6:]) for c in Planted().campaigns),  # every click costs twice as much
    )
    moved = discover_marts(synthetic_marts(120, planted=planted, seed=1), n_bootstrap=50)
    d = drift(base, moved)
    assert d["devices.ranking_distance"] == 1.0
    assert d["channels.account.cpa_rel_change"] == pytest.approx(1.0, abs=0.2)
    named = " ".join(exceeds(d))
    assert "devices.ranking_distance" in named and "channels.account.cpa_rel_change" in named
    # a pattern bound checks every campaign, and a loose bound lets it pass
    assert len(exceeds(d, {"channels.cpa_rel_change.*": 0.5})) == 3
    assert exceeds(d, {"channels.cpa_rel_change.*": 5.0}) == []


def test_helpers():
    assert total_variation([1, 0], [0, 1]) == 1.0 and total_variation([1, 1], [2, 2]) == 0.0
    assert kendall_distance(["a", "b", "c"], ["c", "b", "a"]) == 1.0
    assert kendall_distance(["a", "b", "c"], ["a", "c", "b"]) == pytest.approx(1 / 3)
    assert kendall_distance(["a", "b"], ["b", "x", "a"]) == 1.0  # only common items count
    assert all(v >= 0 for v in DEFAULT_BOUNDS.values())
