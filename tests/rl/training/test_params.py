"""Domain randomisation: pure, seeded, perturbs only the uncertain fields, by the calibration's uncertainty."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rl.env import EnvConfig
from rl.env.core import EpisodeSetup
from rl.training.params import (
    FALLBACK_SIGMA,
    LOWER_BOUND_REACH,
    TrainingMarket,
    lower_bound_ranges,
    make_params_sampler,
    parse_uncertainty,
    perturb,
    scale_market,
    training_market,
)
from rl.world.paths import DEFAULT_WORLD_FILE


def _unc(params, sigma):
    return {c.id: dict.fromkeys(("volume", "rival_median", "cvr", "ctr"), sigma) for c in params.campaigns}


def test_sampler_is_pure_and_seeded(reference_params):
    sampler = make_params_sampler(reference_params, _unc(reference_params, 0.2))
    a = sampler(np.random.default_rng(3))
    b = sampler(np.random.default_rng(3))
    c = sampler(np.random.default_rng(4))
    assert a == b and a != c
    assert a.params_hash() != reference_params.params_hash()


def test_sampler_changes_only_the_uncertain_fields(reference_params):
    p = perturb(reference_params, _unc(reference_params, 0.3), np.random.default_rng(0))
    for old, new in zip(reference_params.campaigns, p.campaigns, strict=True):
        assert new.opportunities_per_day != old.opportunities_per_day
        assert new.cvr_mult != old.cvr_mult and new.ctr_mult != old.ctr_mult
        assert (new.current_bid, new.current_daily_budget, new.max_bid, new.quality) == (
            old.current_bid,
            old.current_daily_budget,
            old.max_bid,
            old.quality,
        )
    assert all(n.median_bid != o.median_bid for o, n in zip(reference_params.competitors, p.competitors, strict=True))
    assert p.segments == reference_params.segments and p.daily_budget == reference_params.daily_budget


def test_zero_uncertainty_is_the_base_and_spread_follows_sigma(reference_params):
    assert perturb(reference_params, _unc(reference_params, 0.0), np.random.default_rng(0)) == reference_params
    unc = _unc(reference_params, 0.0)
    unc[101]["volume"] = 0.25
    rng = np.random.default_rng(1)
    base = reference_params.campaign(101).opportunities_per_day
    logs = [np.log(perturb(reference_params, unc, rng).campaign(101).opportunities_per_day / base) for _ in range(300)]
    assert abs(np.std(logs) - 0.25) < 0.04


def test_the_lower_bound_volumes_are_drawn_per_market_on_the_same_simulator(reference_params):
    """A volume the reports only bound from below becomes a (campaign, 1, `LOWER_BOUND_REACH`) range of the
    environment: every market of a reset cycle draws its own multiple of that campaign's volume, never under the
    bound and log-uniform up to the reach, while every other campaign keeps its volume and the params stay the same
    object (the simulator is not rebuilt)."""
    unc = _unc(reference_params, 0.3)
    market = TrainingMarket(reference_params, unc, "calibration", "h", lower_bounds=frozenset({202}))
    ranges = lower_bound_ranges(market)
    assert ranges == ((202, 1.0, LOWER_BOUND_REACH),)
    config = EnvConfig(campaign_volume_ranges=ranges)
    rng = np.random.default_rng(5)
    setups = [EpisodeSetup.sample(rng, reference_params, config, 4) for _ in range(100)]
    col = reference_params.campaign_ids.index(202)
    scales = np.stack([s.volume_scale for s in setups])  # [cycles, M, C]
    assert all(s.params is reference_params for s in setups)
    assert np.all(np.delete(scales, col, axis=2) == 1.0)
    u = np.log(scales[:, :, col]).ravel() / np.log(LOWER_BOUND_REACH)
    assert u.min() >= 0.0 and u.max() <= 1.0
    assert np.histogram(u, bins=4, range=(0, 1))[0] == pytest.approx([100] * 4, abs=30)  # uniform in the log
    assert np.ptp(scales[:, :, col], axis=1).min() > 0  # the markets of a cycle differ
    bad = TrainingMarket(reference_params, market.uncertainty, "calibration", "h", lower_bounds=frozenset({999}))
    with pytest.raises(ValueError, match="999"):
        lower_bound_ranges(bad)
    with pytest.raises(ValueError, match="999"):
        EpisodeSetup.sample(rng, reference_params, EnvConfig(campaign_volume_ranges=((999, 1.0, 2.0),)), 2)
    with pytest.raises(ValueError, match="low <= high"):
        EnvConfig(campaign_volume_ranges=((202, 2.0, 1.0),))


def test_missing_uncertainty_is_an_error(reference_params):
    unc = _unc(reference_params, 0.1)
    del unc[101]
    with pytest.raises(ValueError, match="101"):
        make_params_sampler(reference_params, unc)


def test_fallback_is_flagged_and_not_the_truth(tmp_path, reference_params):
    m = training_market(tmp_path / "missing.json", DEFAULT_WORLD_FILE)
    assert m.is_fallback and m.source == "fallback_world_file_with_noise"
    assert m.params != reference_params and m.params.campaign_ids == reference_params.campaign_ids
    assert all(v == FALLBACK_SIGMA for u in m.uncertainty.values() for v in u.values())


def test_calibration_file_is_read(tmp_path, reference_params):
    path = tmp_path / "market_calibration.json"
    path.write_text(
        json.dumps(
            {
                "params": reference_params.model_dump(mode="json"),
                "params_hash": "abc",
                "window": {"first": "2025-01-01", "last": "2025-06-30"},
                "campaigns": {
                    "101": {"uncertainty": {"volume": 0.05, "rival_median": 0.1, "cvr": 0.3}, "flags": []},
                    "202": {"uncertainty": {"volume": 0.5}, "volume_is_lower_bound": True},
                },
            }
        )
    )
    m = training_market(path, DEFAULT_WORLD_FILE)
    assert not m.is_fallback and m.params == reference_params and m.params_hash == "abc"
    assert m.window == {"first": "2025-01-01", "last": "2025-06-30"}
    assert m.uncertainty[101] == {"volume": 0.05, "rival_median": 0.1, "cvr": 0.3, "ctr": FALLBACK_SIGMA}
    assert m.lower_bounds == {202}
    with pytest.raises(ValueError, match="999"):
        parse_uncertainty({"999": {"uncertainty": {}}}, reference_params)


def test_scale_market_scales_volume_and_budgets(reference_params):
    s = scale_market(reference_params, 0.5)
    assert s.daily_budget == reference_params.daily_budget * 0.5
    for a, b in zip(reference_params.campaigns, s.campaigns, strict=True):
        assert b.opportunities_per_day == a.opportunities_per_day * 0.5
        assert b.current_daily_budget == a.current_daily_budget * 0.5
        assert b.current_bid == a.current_bid
