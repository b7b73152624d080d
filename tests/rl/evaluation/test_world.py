"""The demo-world harness builds the same `Reports` the simulator does, from what the world reports."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from rl.env.guardrails import DEFAULT_BID_RANGE, DEFAULT_MAX_STEP, GuardrailLimits
from rl.env.observation import build_observation, decode
from rl.env.schema import ObservationSchema
from rl.evaluation.world import fresh_world, world_reports
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
