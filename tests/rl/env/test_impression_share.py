"""Social platforms (Meta, TikTok) report no impression share: the observation must not leak it."""

from __future__ import annotations

import numpy as np
import pytest

from rl.env import BatchedBiddingVecEnv
from rl.env.observation import Reports, build_observation, reports_share


def test_social_campaigns_have_zero_impression_share(mid_params, schema, short_config):
    venv = BatchedBiddingVecEnv(mid_params, n_envs=2, config=short_config, schema=schema, seed=0)
    aligned = schema.align(mid_params)
    social = np.array([aligned.platform(c.platform).kind == "social" for c in aligned.campaigns])
    assert social.any() and (~social).any()
    obs = venv.reset()
    seen = [obs]
    for _ in range(3):
        obs, *_ = venv.step(np.zeros((2, schema.action_size)))
        seen.append(obs)
    for o in seen:
        for feature in ("impression_share_1d", "impression_share_7d"):
            share = o[:, schema.campaign_index(feature)]
            assert np.all(share[:, social] == 0.0), feature
            assert np.all(share[:, ~social] > 0.0), feature  # search platforms do report it


def test_reports_without_share_flags_are_an_error(mid_params, schema):
    rep = Reports.empty(
        1,
        3,
        schema.n_campaigns,
        2,
        warmup_days=1,
        episode_days=1,
        first_date=mid_params.history_start,
        budgets_now=np.ones((1, schema.n_campaigns)),
        bids_now=np.ones((1, schema.n_campaigns)),
        ref_bids=np.ones(schema.n_campaigns),
        bid_range=4.0,
        daily_budget=500.0,
        target_cpa=100.0,
    )
    rep.today = 2
    with pytest.raises(ValueError, match="share_reported"):
        build_observation(schema, rep)
    rep.share_reported = reports_share(schema.align(mid_params))
    assert build_observation(schema, rep).shape == (1, schema.obs_size)
