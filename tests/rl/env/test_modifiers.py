"""Device and hour-block modifiers in the environment: the action's layout, the guardrails for arbitrary actions,
social campaigns never carrying one, and the versioned schema."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rl.env import BatchedBiddingVecEnv, EnvConfig, GuardrailLimits, ObservationSchema, Settings, apply_action
from rl.env.guardrails import ActionCodec
from rl.env.settings import MODIFIER_FLOOR
from rl.market.modifiers import cell_multipliers
from rl.market.params import MarketParams, MarketParamsError, parse_market_params


@pytest.fixture(scope="module")
def limits(reference_params) -> GuardrailLimits:
    return GuardrailLimits.from_params(reference_params)


wild = st.one_of(st.floats(-5, 5), st.just(np.nan), st.just(np.inf), st.just(-np.inf))


def _now(limits: GuardrailLimits, rng: np.random.Generator) -> Settings:
    c, b = limits.n_campaigns, limits.n_blocks
    budgets = rng.dirichlet(np.ones(c)) * limits.daily_budget * rng.uniform(0.2, 1.0)
    bids = limits.ref_bids * rng.uniform(0.3, 1.5, c)
    device = np.where(limits.modifier_mask[:, None], rng.uniform(0.0, 3.0, (c, 3)), 1.0)
    hours = np.where(limits.modifier_mask[:, None], rng.uniform(0.1, 3.0, (c, b)), 1.0)
    return Settings(budgets, np.minimum(bids, limits.max_bids / (device.max(1) * hours.max(1))), device, hours)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_the_guardrails_hold_for_arbitrary_modifier_actions(limits, data, seed):
    """Whatever the action (NaN, ±inf, far out of range): modifiers stay in the platform's range and move at most
    the daily step from those in force, social campaigns keep 1 everywhere, no cell bids above the max bid, and the
    budgets fit the account budget."""
    size = ActionCodec(limits.n_campaigns, modifiers=tuple(limits.modifier_mask.tolist())).action_size
    action = data.draw(arrays(np.float64, size, elements=wild))
    now = _now(limits, np.random.default_rng(seed))
    new = apply_action(action, now, limits)
    ml, mask = limits.modifiers, limits.modifier_mask
    for got, cur, rng in ((new.device, now.device, ml.device_range), (new.hours, now.hours, ml.hour_range)):
        assert np.all(np.isfinite(got))
        assert np.all(got >= rng[:, :1] - 1e-12) and np.all(got <= rng[:, 1:] + 1e-12)
        step = limits.max_step * np.maximum(cur, MODIFIER_FLOOR)
        assert np.all(np.abs(got - cur)[mask] <= step[mask] + 1e-9)
        np.testing.assert_array_equal(got[~mask], 1.0)
    top = (new.bids[:, None, None] * cell_multipliers(new.device, new.hours)).max(axis=(1, 2))
    assert np.all(top <= limits.max_bids * (1 + 1e-9))
    assert new.budgets.sum() <= limits.daily_budget * (1 + 1e-9) and np.all(new.budgets >= 0)


def test_a_modifier_action_reaches_its_target_within_the_step_and_nan_keeps_it(limits):
    codec = ActionCodec(limits.n_campaigns, modifiers=tuple(limits.modifier_mask.tolist()))
    now = Settings.without_modifiers(np.full(limits.n_campaigns, 50.0), limits.ref_bids, limits.n_blocks)
    device = np.ones((limits.n_campaigns, 3))
    device[:, 1] = 2.0  # desktop +100%
    action = codec.encode(np.full(limits.n_campaigns, 0.1), np.ones(limits.n_campaigns), device, None)
    new = apply_action(action, now, limits)
    mask = limits.modifier_mask
    np.testing.assert_allclose(new.device[mask, 1], 1.0 + limits.max_step)  # clipped to today's step
    np.testing.assert_allclose(new.device[mask][:, [0, 2]], 1.0)
    action[2 * limits.n_campaigns :] = np.nan  # NaN: keep the modifiers in force
    kept = apply_action(action, new, limits)
    np.testing.assert_array_equal(kept.device, new.device)
    np.testing.assert_array_equal(kept.hours, new.hours)


def test_boosts_give_way_before_the_base_bid_when_a_cell_would_pass_the_max_bid(limits):
    """A policy that keeps its base bid and its boosts where the top cell would bid above the max bid keeps the base
    bid (the lever on every cell) and shrinks the boosts, inside today's step, until the top cell is at the max."""
    capped = replace(limits, max_bids=2.0 * limits.ref_bids)
    mask = capped.modifier_mask
    n, b = capped.n_campaigns, capped.n_blocks
    device, hours = np.ones((n, 3)), np.ones((n, b))
    device[mask, 1], hours[mask, 3] = 1.3, 1.2  # desktop and one hour block boosted
    now = Settings(np.full(n, 50.0), 1.8 * capped.ref_bids, device, hours)  # top cell 1.8 × 1.3 × 1.2 = 2.81 × ref
    codec = ActionCodec(n, modifiers=tuple(mask.tolist()))
    new = apply_action(codec.encode(np.full(n, 0.1), np.full(n, 1.8), device, hours), now, capped)
    np.testing.assert_allclose(new.bids[mask], 1.8 * capped.ref_bids[mask], rtol=1e-9)
    top = (new.bids[:, None, None] * cell_multipliers(new.device, new.hours)).max(axis=(1, 2))
    np.testing.assert_allclose(top[mask], capped.max_bids[mask], rtol=1e-9)
    assert np.all(new.device[mask, 1] < 1.3) and np.all(new.device[mask, 1] > 1.0)
    assert np.all(new.hours[mask, 3] < 1.2) and np.all(new.hours[mask, 3] > 1.0)
    np.testing.assert_array_equal(new.device[mask][:, [0, 2]], 1.0)  # cells at or below 1 are not boosts


def test_social_campaigns_never_carry_a_modifier(reference_params):
    """Random actions over an episode: every applied modifier of a Meta or TikTok campaign is 1, while the search
    campaigns' move; and a market file giving a social platform modifier ranges or a social campaign modifiers is
    refused, naming the field."""
    params = reference_params
    schema = ObservationSchema.from_params(params)
    venv = BatchedBiddingVecEnv(params, n_envs=2, config=EnvConfig(episode_days=3, warmup_days=2), schema=schema)
    social = np.array([params.platform(c.platform).kind == "social" for c in params.campaigns])
    assert social.any() and (~social).any()
    venv.seed(3)
    venv.reset()
    moved = False
    rng = np.random.default_rng(0)
    for _ in range(3):
        _, _, _, infos = venv.step(rng.uniform(-1, 1, (2, schema.action_size)))
        for info in infos:
            np.testing.assert_array_equal(info["device_modifiers"][social], 1.0)
            np.testing.assert_array_equal(info["hour_modifiers"][social], 1.0)
            moved |= bool(np.any(info["device_modifiers"][~social] != 1.0))
    assert moved
    data = params.model_dump(mode="json")
    meta = next(i for i, p in enumerate(data["platforms"]) if p["kind"] == "social")
    data["platforms"][meta]["device_modifier_range"] = [0.0, 10.0]
    data["platforms"][meta]["hour_modifier_range"] = [0.1, 10.0]
    with pytest.raises(MarketParamsError, match="social platform has no device or hour-block bid modifiers"):
        parse_market_params(data)
    data = params.model_dump(mode="json")
    c = next(i for i, c in enumerate(data["campaigns"]) if c["platform"] == "meta")
    data["campaigns"][c]["current_device_modifiers"] = [1.0, 1.2, 1.0]
    with pytest.raises(
        MarketParamsError, match=rf"campaigns\.{c}\.current_device_modifiers: meta has no bid modifiers"
    ):
        parse_market_params(data)


def test_the_schema_is_versioned_and_names_every_modifier(reference_params: MarketParams):
    schema = ObservationSchema.from_registry()
    assert schema.version == 2 and schema.modifiers == tuple(
        p in ("google_ads", "microsoft_ads") for p in schema.platforms
    )
    names = schema.action_names()
    assert len(names) == schema.action_size
    first = schema.campaign_ids[schema.modifiers.index(True)]
    assert names[2 * schema.n_campaigns : 2 * schema.n_campaigns + 4] == [
        f"{first}.modifier_mobile",
        f"{first}.modifier_desktop",
        f"{first}.modifier_tablet",
        f"{first}.modifier_h00_04",
    ]
    assert not any(n.endswith("modifier_mobile") and n.startswith(("201.", "202.", "301.")) for n in names)
    assert "mod_desktop" in schema.campaign_features and "conversions_h20_24_28d" in schema.campaign_features
    # a model saved with the version-1 layout (no modifiers) cannot read today's observations
    v1 = {
        "version": 1,
        "campaign_ids": list(schema.campaign_ids),
        "platforms": list(schema.platforms),
        "campaign_features": ["spend_1d"],
        "global_features": ["dow_sin"],
        "action_features": ["budget_share", "bid_multiplier"],
    }
    old = ObservationSchema.from_json(json.dumps(v1))
    with pytest.raises(ValueError, match="observation schema mismatch in version: 2 != 1"):
        schema.check_compatible(old)
    assert ObservationSchema.from_json(schema.to_json()) == schema
    # a market whose search platform has no modifiers does not fit a schema that expects them
    data = reference_params.model_dump(mode="json")
    for p in data["platforms"]:
        if p["name"] == "google_ads":
            p["device_modifier_range"] = p["hour_modifier_range"] = None
    with pytest.raises(ValueError, match="the schema says it has bid modifiers, its platform google_ads"):
        schema.align(MarketParams.model_validate(data))
