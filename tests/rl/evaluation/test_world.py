"""The demo-world harness builds the same `Reports` the simulator does, from what the world reports."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from rl.env.guardrails import DEFAULT_BID_RANGE, DEFAULT_MAX_STEP, ActionCodec, GuardrailLimits
from rl.env.observation import build_observation, decode
from rl.env.schema import ObservationSchema
from rl.evaluation.world import fresh_world, world_episode, world_reports
from tests.conftest import scaled


def test_world_reports_carry_the_budgets_in_force_so_utilisation_is_observed(tmp_path, reference_params):
    params = scaled(reference_params, 0.1)
    world_file = tmp_path / "world.yaml"
    world_file.write_text(params.to_yaml())
    start = params.history_start + dt.timedelta(days=20)
    world = fresh_world(tmp_path / "world", world_file, seed=2, until=start)
    schema = ObservationSchema.from_params(params)
    p = schema.align(params)
    limits = GuardrailLimits.from_params(p, DEFAULT_MAX_STEP, DEFAULT_BID_RANGE)
    ids = list(schema.campaign_ids)
    now = np.array([[world.settings[i][0] for i in ids]])
    first = start - dt.timedelta(days=14)
    rep = world_reports(
        world,
        p,
        schema,
        first,
        20,
        warmup_days=14,
        episode_days=3,
        ref_bids=limits.ref_bids,
        bid_range=DEFAULT_BID_RANGE,
        daily_budget=float(p.daily_budget),
        target_cpa=float(p.target_cpa),
        budgets_now=now,
        bids_now=np.array([[world.settings[i][1] for i in ids]]),
    )
    settings = world.report_tables()["settings"]
    yesterday = settings.filter(pl.col("date") == start - dt.timedelta(days=1))
    expected = {cid: b for cid, b in zip(yesterday["campaign_id"], yesterday["daily_budget"], strict=True)}
    np.testing.assert_allclose(rep.budgets[0, 13], [expected[i] for i in ids])
    assert np.all(rep.budgets[0, :14] > 0) and np.all(rep.budgets[0, 14:] == 0)  # nothing from the future
    util = decode(schema, build_observation(schema, rep))["budget_utilisation_1d"][0]
    np.testing.assert_allclose(util, rep.spend[0, 13] / rep.budgets[0, 13], atol=0.01)
    assert np.all(util > 0)  # before the fix the world harness showed 0 here: every budget looked idle


def _reports(world, params, start, first, n_days):
    schema = ObservationSchema.from_params(params)
    p = schema.align(params)
    limits = GuardrailLimits.from_params(p, DEFAULT_MAX_STEP, DEFAULT_BID_RANGE)
    ids = list(schema.campaign_ids)
    rep = world_reports(
        world,
        p,
        schema,
        first,
        n_days,
        warmup_days=(start - first).days,
        episode_days=3,
        ref_bids=limits.ref_bids,
        bid_range=DEFAULT_BID_RANGE,
        daily_budget=float(p.daily_budget),
        target_cpa=float(p.target_cpa),
        budgets_now=np.array([[world.settings[i][0] for i in ids]]),
        bids_now=np.array([[world.settings[i][1] for i in ids]]),
    )
    return schema, ids, rep


def test_world_reports_break_delivery_down_by_device_and_hour_block(tmp_path, reference_params):
    params = scaled(reference_params, 0.1)
    world_file = tmp_path / "world.yaml"
    world_file.write_text(params.to_yaml())
    start = params.history_start + dt.timedelta(days=20)
    world = fresh_world(tmp_path / "world", world_file, seed=2, until=start - dt.timedelta(days=5))
    world.push(101, device_modifiers=[1.3, 0.9, 0.0], hour_modifiers=[0.5, 1, 1, 1, 1, 1.5], source="test")
    world.advance_to(start)
    world.push(102, device_modifiers=[1.1, 1.0, 1.0], source="test")
    first = start - dt.timedelta(days=14)
    schema, ids, rep = _reports(world, params, start, first, 20)
    # devices and hour blocks each split the whole: both sum to the daily figures
    for by, total in ((rep.spend_by, rep.spend), (rep.clicks_by, rep.clicks)):
        np.testing.assert_allclose(by[..., :3].sum(axis=-1), total, atol=1e-6)
        np.testing.assert_allclose(by[..., 3:].sum(axis=-1), total, atol=1e-6)
    np.testing.assert_allclose(rep.conv_by_lag_by[..., :3, :].sum(axis=-2), rep.conv_by_lag)
    np.testing.assert_allclose(rep.conv_by_lag_by[..., 3:, :].sum(axis=-2), rep.conv_by_lag)
    assert rep.conv_by_lag.sum() > 0
    # ... per device as the world's delivery facts have it; the excluded tablet buys nothing
    facts = world.frames()["ads"].filter(pl.col("date") == start - dt.timedelta(days=1))
    j = ids.index(101)
    desktop = facts.filter((pl.col("campaign_id") == 101) & (pl.col("device") == "desktop"))["clicks"].sum()
    assert rep.clicks_by[0, 13, j, 1] == desktop
    assert rep.spend_by[0, 10:14, j, 2].sum() == 0 and rep.spend_by[0, :5, j, 2].sum() > 0
    # the modifiers in force from today, per device then hour block; social campaigns at 1
    assert rep.modifiers_now[0, j].tolist() == [1.3, 0.9, 0.0, 0.5, 1, 1, 1, 1, 1.5]
    assert rep.modifiers_now[0, ids.index(102)].tolist() == [1.1, 1.0, 1.0] + [1.0] * 6
    assert np.all(rep.modifiers_now[0, ids.index(201)] == 1.0)
    obs = decode(schema, build_observation(schema, rep))
    assert obs["clicks_desktop_28d"][0, j] > 0 and obs["spend_tablet_28d"][0, j] > 0  # before the exclusion


class _ModifierPolicy:
    """Every campaign: budget share and bid unchanged targets aside, device and hour-block modifiers pushed up."""

    name = "modifiers-up"

    def __init__(self, schema):
        self.codec = ActionCodec.for_schema(schema, DEFAULT_BID_RANGE)

    def reset(self, n):
        pass

    def act(self, obs):
        action = np.zeros((1, self.codec.action_size))
        action[:, : self.codec.n_campaigns] = 0.5
        action[:, 2 * self.codec.n_campaigns :] = 1.0  # modifier targets ×4: the daily step allows +20%
        return action


def test_world_episode_pushes_the_policys_modifiers_through_the_guardrails(tmp_path, reference_params):
    params = scaled(reference_params, 0.05)
    world_file = tmp_path / "world.yaml"
    world_file.write_text(params.to_yaml())
    world = fresh_world(tmp_path / "world", world_file, seed=2, until=params.history_start + dt.timedelta(days=30))
    schema = ObservationSchema.from_params(params)
    out = world_episode(_ModifierPolicy(schema), world, params, schema, episode_days=2, settle_days=1)
    assert out["days_over_budget"] == 0 and out["spend"] > 0
    pushed = [p for p in world.pushes() if p.source == "evaluation"]
    first_day = {p.campaign_id: p for p in pushed[: len(schema.campaign_ids)]}
    for cid, platform in zip(schema.campaign_ids, schema.platforms, strict=True):
        p = first_day[cid]
        if platform in ("google_ads", "microsoft_ads"):
            assert p.device_modifiers == pytest.approx((1.2, 1.2, 1.2))  # +20%: the step band of a day
            assert p.hour_modifiers == pytest.approx((1.2,) * 6)
        else:
            assert p.device_modifiers is None and p.hour_modifiers is None  # social: never a modifier
    second = {p.campaign_id: p for p in pushed[len(schema.campaign_ids) :]}
    assert second[101].device_modifiers == pytest.approx((1.44, 1.44, 1.44))
    facts = world.frames()["modifiers"].filter(pl.col("campaign_id") == 101)
    assert facts["bid_modifier"].max() == pytest.approx(1.44)
