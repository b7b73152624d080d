"""The pattern-rules variants: modifiers from relative conversions per click, shrunk by their uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from rl.env import ObservationSchema
from rl.env.guardrails import ActionCodec
from rl.env.schema import breakdown_keys
from rl.policies.baselines import BASELINES, OnlineLPPolicy
from rl.policies.patterns import pattern_modifiers


@pytest.fixture(scope="module")
def schema():
    return ObservationSchema.from_registry()


def features(schema, clicks_by: dict[str, float], conv_by: dict[str, float]) -> dict[str, np.ndarray]:
    """Decoded features of one observation: every campaign with the same breakdown (clicks per day over 28 days,
    conversions in the window)."""
    f = {}
    for k in breakdown_keys(schema.hour_blocks):
        f[f"clicks_{k}_28d"] = np.full((1, schema.n_campaigns), clicks_by.get(k, 0.0) / 28.0)
        f[f"conversions_{k}_28d"] = np.full((1, schema.n_campaigns), conv_by.get(k, 0.0))
    return f


def test_modifiers_follow_relative_conversions_per_click_and_shrink_with_little_data(schema):
    keys = breakdown_keys(schema.hour_blocks)
    blocks = keys[3:]
    clicks = {"mobile": 600.0, "desktop": 400.0, "tablet": 10.0} | {b: 1010.0 / len(blocks) for b in blocks}
    conv = {"mobile": 12.0, "desktop": 16.0, "tablet": 0.0} | {b: 28.0 / len(blocks) for b in blocks}
    device, hours = pattern_modifiers(schema, features(schema, clicks, conv), strength=0.0, power=1.0, modifier_range=4)
    search = np.asarray(schema.modifiers)
    d = device[0, search][0]
    # without shrinkage: desktop converts 2x mobile per click (4% vs 2%), tablet never (clipped to the range)
    assert d[1] / d[0] == pytest.approx(2.0) and d[2] == pytest.approx(0.25)
    # click-weighted mean 1 before clipping: mobile and desktop straddle 1
    assert d[0] < 1.0 < d[1]
    np.testing.assert_allclose(hours[0, search], 1.0)  # hours convert alike
    np.testing.assert_array_equal(device[0, ~search], 1.0)  # social campaigns have no modifiers
    np.testing.assert_array_equal(hours[0, ~search], 1.0)
    shrunk, _ = pattern_modifiers(schema, features(schema, clicks, conv), strength=400.0, power=1.0, modifier_range=4)
    s = shrunk[0, search][0]
    assert 1.0 < s[1] / s[0] < 2.0  # shrunk towards the campaign's rate
    assert s[2] > d[2]  # 10 clicks without a conversion are not evidence of a dead device
    half, _ = pattern_modifiers(schema, features(schema, clicks, conv), strength=0.0, power=0.5, modifier_range=4)
    assert half[0, search][0][1] / half[0, search][0][0] == pytest.approx(np.sqrt(2.0))
    none, _ = pattern_modifiers(schema, features(schema, clicks, {}), strength=0.0, power=1.0, modifier_range=4)
    np.testing.assert_array_equal(none, 1.0)  # no conversion reported: no pattern to act on


def test_every_baseline_has_a_pattern_variant_with_its_budgets_and_bids(schema):
    codec = ActionCodec.for_schema(schema)
    plain = [n for n in BASELINES if not n.endswith("_patterns")]
    assert sorted(f"{n}_patterns" for n in plain) == sorted(n for n in BASELINES if n.endswith("_patterns"))
    variant = BASELINES["online_lp_patterns"](schema, codec, slack=1.0, decay=0.5, strength=100.0, power=1.0)
    base = OnlineLPPolicy(schema, codec, slack=1.0, decay=0.5)
    rng = np.random.default_rng(1)
    obs = rng.uniform(0.0, 1.0, (3, schema.obs_size)).astype(np.float32)
    a, b = variant.act(obs), base.act(obs)
    np.testing.assert_allclose(a[:, : 2 * schema.n_campaigns], b[:, : 2 * schema.n_campaigns])
    assert not np.allclose(a[:, 2 * schema.n_campaigns :], b[:, 2 * schema.n_campaigns :])
    assert set(BASELINES["online_lp_patterns"].GRID) == {"slack", "decay", "strength", "power"}
