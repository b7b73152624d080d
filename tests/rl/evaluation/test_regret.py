"""The calibration's regret: one steady day planned on a calibrated market and resolved in the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rl.evaluation.regret import DayPlan, calibration_regret, reorder
from rl.market.params import MarketParams

DATE = dt.date(2026, 11, 9)


def with_campaigns(params: MarketParams, campaigns) -> MarketParams:
    return params.model_copy(update={"campaigns": list(campaigns)})


@pytest.fixture(scope="module")
def exact(reference_params):
    """The regret of a calibration that is the truth, its campaigns listed in another order (the plan must be
    mapped by campaign id, not by position)."""
    return calibration_regret(
        reference_params, with_campaigns(reference_params, reversed(reference_params.campaigns)), DATE
    )


def test_a_calibration_that_is_the_truth_plans_the_ceiling_in_any_campaign_order(exact, reference_params):
    r = exact
    assert r.share_of_ceiling == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(r.spend["calibrated"], r.spend["ceiling"], rtol=1e-9)
    assert r.believed == pytest.approx(r.total("ceiling"), rel=1e-9)
    # the ceiling fills the account budget and converts more than the settings in force
    assert r.spend["ceiling"].sum() <= reference_params.daily_budget + 1e-6
    assert r.spend["ceiling"].sum() > 0.8 * reference_params.daily_budget
    assert r.total("ceiling") > 1.2 * r.total("static")


def test_a_calibration_that_sees_too_little_volume_underfunds_that_campaign_and_loses(exact, reference_params):
    # the campaign the truth funds most after the best one, seen at a quarter of its volume (as a budget that
    # bound every day of the history leaves it: the reports only bound it from below)
    cid = exact.campaign_ids[int(np.argsort(-exact.spend["ceiling"])[1])]
    calibrated = with_campaigns(
        reference_params,
        [
            c.model_copy(update={"opportunities_per_day": c.opportunities_per_day / 4}) if c.id == cid else c
            for c in reference_params.campaigns
        ],
    )
    r = calibration_regret(reference_params, calibrated, DATE)
    i = r.campaign_ids.index(cid)
    np.testing.assert_allclose(r.conversions["ceiling"], exact.conversions["ceiling"])  # the truth's plan is the same
    assert r.spend["calibrated"][i] < 0.6 * r.spend["ceiling"][i]
    assert 0.5 < r.share_of_ceiling < 0.99
    assert r.believed < r.total("ceiling")  # it expects less, and its plan earns less than the truth's


def test_plans_of_another_account_are_refused_by_name(reference_params):
    other = with_campaigns(reference_params, reference_params.campaigns[1:])
    n, b = len(other.campaigns), other.hour_blocks
    plan = DayPlan(np.ones(n), np.ones(n), np.ones((n, 3)), np.ones((n, b)))
    missing = reference_params.campaigns[0].id
    with pytest.raises(ValueError, match=rf"campaigns \[{missing}\]"):
        reorder(plan, other, reference_params)
