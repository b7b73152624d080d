"""The kill switch: fires on three consecutive days of CPA above 1.5 × target (GA4 key events by conversion date)."""

from __future__ import annotations

import datetime as dt

import pytest

from rl.bidding.kill_switch import DayFigures, evaluate

D = dt.date(2025, 3, 10)


def days(*pairs):
    return [DayFigures(D - dt.timedelta(days=len(pairs) - 1 - i), s, k) for i, (s, k) in enumerate(pairs)]


def test_fires_on_a_planted_three_day_breach():
    decision = evaluate(days((500, 6), (500, 3), (500, 2), (500, 0)), target_cpa=100)
    assert decision.fire and "1.5" in decision.reason
    assert [d.date for d in decision.days] == [D - dt.timedelta(days=2), D - dt.timedelta(days=1), D]
    assert "inf" in decision.table()


def test_does_not_fire_when_one_of_the_three_days_is_healthy_or_idle():
    assert not evaluate(days((500, 2), (500, 4), (500, 2)), 100).fire  # 125 on the middle day
    assert not evaluate(days((500, 2), (0, 0), (500, 2)), 100).fire  # no spend: no breach
    assert not evaluate(days((500, 2), (500, 2)), 100).fire  # a missing day counts as no spend
    assert not evaluate([], 100).fire


def test_the_threshold_is_strict_and_configurable():
    assert not evaluate(days((150, 1), (150, 1), (150, 1)), 100).fire  # exactly 1.5x: not above
    assert evaluate(days((151, 1), (151, 1), (151, 1)), 100).fire
    assert evaluate(days((130, 1), (130, 1)), 100, factor=1.2, days=2).fire


def test_bad_figures_are_refused_by_name():
    with pytest.raises(ValueError, match="two figures"):
        evaluate([DayFigures(D, 1, 1), DayFigures(D, 1, 1)], 100)
    with pytest.raises(ValueError, match="not finite"):
        evaluate([DayFigures(D, float("nan"), 1)], 100)
