"""Guardrails hold for any action, however wild: total ≤ account budget, bid ≤ max bid, per-day step, no NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.env.guardrails import ActionCodec, GuardrailLimits, apply_guardrails, encode_settings

C = 4
LIMITS = GuardrailLimits(
    daily_budget=500.0, ref_bids=np.array([2.0, 4.0, 18.0, 3.0]), max_bids=np.array([8.0, 10.0, 40.0, 3.5])
)
TOL = 1e-9

wild = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1.0, 1.0),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0, 1e300, -1e300]),
)


@st.composite
def current_settings(draw):
    shares = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=C, max_size=C)))
    total = draw(st.floats(0.0, 1.0))
    budgets = shares / max(shares.sum(), 1e-12) * total * LIMITS.daily_budget
    bids = np.array([draw(st.floats(0.05, 1.0)) for _ in range(C)]) * LIMITS.max_bids
    return budgets, bids


def check(action, budgets, bids, limits=LIMITS):
    new_b, new_p = apply_guardrails(action, budgets, bids, limits)
    assert new_b.shape == budgets.shape and new_p.shape == bids.shape
    assert np.all(np.isfinite(new_b)) and np.all(np.isfinite(new_p))
    assert np.all(new_b >= 0)
    assert new_b.sum(axis=-1).max() <= limits.daily_budget
    assert np.all(new_p <= limits.max_bids) and np.all(new_p > 0)
    if limits.max_step is not None:
        width = limits.max_step * np.maximum(budgets, limits.floor)
        assert np.all(np.abs(new_b - budgets) <= width * (1 + 1e-9) + TOL)
        assert np.all(np.abs(new_p - bids) <= limits.max_step * bids * (1 + 1e-9) + TOL)
    return new_b, new_p


@settings(max_examples=300, deadline=None)
@given(action=st.lists(wild, min_size=2 * C, max_size=2 * C), current=current_settings())
def test_any_action_respects_every_limit(action, current):
    budgets, bids = current
    check(np.array(action, dtype=float), budgets, bids)


@settings(max_examples=100, deadline=None)
@given(
    action=st.lists(wild, min_size=2 * C, max_size=2 * C),
    current=current_settings(),
    step=st.sampled_from([None, 0.0, 0.05, 0.2, 1.0]),
)
def test_limits_hold_for_any_step_setting(action, current, step):
    limits = GuardrailLimits(LIMITS.daily_budget, LIMITS.ref_bids, LIMITS.max_bids, max_step=step)
    check(np.array(action, dtype=float), *current, limits)


@settings(max_examples=50, deadline=None)
@given(current=current_settings())
def test_nan_action_keeps_the_settings_in_force(current):
    budgets, bids = current
    new_b, new_p = apply_guardrails(np.full(2 * C, np.nan), budgets, bids, LIMITS)
    np.testing.assert_allclose(new_b, budgets, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_p, bids, rtol=1e-12)


def test_total_holds_after_the_step_bands():
    """Every campaign wants its maximum: the step bands alone would let the total reach 1.2 × the budget."""
    budgets = np.full(C, LIMITS.daily_budget / C)  # the whole budget in force
    bids = LIMITS.ref_bids.copy()
    new_b, _ = check(np.ones(2 * C), budgets, bids)
    assert new_b.sum() == pytest.approx(LIMITS.daily_budget, rel=1e-9)
    # one campaign asks for everything, the others to stay: it may grow only what the others give up
    action = encode_settings(np.array([500.0, 125.0, 125.0, 125.0]), bids, LIMITS)
    new_b, _ = check(action, budgets, bids)
    assert new_b.sum() <= LIMITS.daily_budget
    # moving budget between campaigns: the growing ones may climb 20% while the shrinking ones may only fall 20%,
    # so the clipped targets add up to 520; the total rule must pull them back within the bands
    budgets = np.array([100.0, 100.0, 150.0, 150.0])
    action = encode_settings(np.array([0.0, 0.0, 250.0, 250.0]), bids, LIMITS)
    new_b, _ = check(action, budgets, bids)
    assert new_b.sum() == pytest.approx(LIMITS.daily_budget, rel=1e-9)
    np.testing.assert_allclose(new_b[:2], 80.0)  # already at the lower band edge


def test_zero_budget_can_restart_and_bids_are_capped():
    budgets, bids = np.zeros(C), LIMITS.max_bids.copy()
    new_b, new_p = check(np.ones(2 * C), budgets, bids)
    assert np.all(new_b > 0)  # the floor lets a paused campaign come back, by at most step × floor
    np.testing.assert_allclose(new_b, LIMITS.max_step * LIMITS.floor)
    np.testing.assert_array_equal(new_p, LIMITS.max_bids)


def test_batched_rows_are_independent():
    budgets = np.array([[100.0, 100.0, 100.0, 100.0], [0.0, 50.0, 200.0, 250.0]])
    bids = np.tile(LIMITS.ref_bids, (2, 1))
    actions = np.array([np.ones(2 * C), np.full(2 * C, np.nan)])
    new_b, new_p = apply_guardrails(actions, budgets, bids, LIMITS)
    np.testing.assert_allclose(new_b[1], budgets[1])
    row0, _ = apply_guardrails(actions[0], budgets[0], bids[0], LIMITS)
    np.testing.assert_allclose(new_b[0], row0)


def test_codec_round_trip():
    codec = ActionCodec(C, bid_range=4.0)
    shares, mults = np.array([0.1, 0.2, 0.0, 0.7]), np.array([0.25, 1.0, 2.0, 4.0])
    back_s, back_m = codec.decode(codec.encode(shares, mults))
    np.testing.assert_allclose(back_s, shares, atol=1e-12)
    np.testing.assert_allclose(back_m, mults, rtol=1e-12)
    with pytest.raises(ValueError, match="8 values"):
        apply_guardrails(np.zeros(3), np.zeros(C), LIMITS.ref_bids, LIMITS)
