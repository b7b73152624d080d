"""Parameter recovery: calibrate on a year of a demo world's reports and compare with the world's hidden truth.

The test may read the truth (the asset never does). Fit and truth are compared through `rl.calibration.measures`,
which mean the same in both parameterisations: conversions per click and mean click-to-conversion lag (both over
the bids in force in the window, click-weighted) and the median threshold bid of the campaign's auctions. A
campaign is judged on a measure when the data could pin it down: the fit's own relative standard error is at most
7.5% (so 15% is two standard errors; at least four campaigns must qualify), and for the threshold bid when the
truth has one (a campaign with fewer rivals than ad slots is never outbid). A second world with other parameters
must pass the same test: nothing is tuned to one world.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from rl.calibration import data as calibration_data
from rl.calibration.fit import calibrate
from rl.calibration.measures import click_conversion_rate, mean_lag_days, threshold_bid_quantile
from rl.market.params import MarketParams
from tests.builders import build_long_warehouse, demo_resources

FIRST, LAST = "2024-11-26", "2025-11-25"
TOLERANCE = 0.15
ENOUGH = TOLERANCE / 2


def other_world(reference: MarketParams) -> MarketParams:
    """A different account: stronger search rivals, weaker social ones, lower conversion rates, longer lags,
    other volumes and device mix, and bids in force scaled to match."""
    d = reference.model_dump(mode="json")
    d["name"] = "other-account"
    d["device_shares"] = [0.5, 0.45, 0.05]
    d["device_cvr_mult"] = [0.7, 1.4, 1.1]
    for s in d["segments"]:
        s["cvr"] *= 0.9
        s["lag_days_min"] += 1
        s["lag_days_max"] += 2
        s["value_median"] *= 1.3
    for i, c in enumerate(d["campaigns"]):
        c["opportunities_per_day"] *= (1.0, 1.4)[i % 2]
        search = c["platform"] in ("google_ads", "microsoft_ads")
        c["current_bid"] = round(c["current_bid"] * (1.35 if search else 0.8), 2)
        c["max_bid"] = max(c["max_bid"], c["current_bid"] * 2)
    for k in d["competitors"]:
        search = k["platform"] in ("google_ads", "microsoft_ads")
        k["median_bid"] *= 1.4 if search else 0.8
        k["sigma"] = min(k["sigma"] * 1.2, 1.0)
    return MarketParams.model_validate(d)


@pytest.fixture(scope="module", params=["reference", "other"])
def calibrated(request, tmp_path_factory, reference_params):
    truth = reference_params if request.param == "reference" else other_world(reference_params)
    tmp = tmp_path_factory.mktemp(f"recovery-{request.param}")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    resources = demo_resources(tmp, truth, scale=1.0, seed=11)
    warehouse = build_long_warehouse(resources, FIRST, LAST, dg.DagsterInstance.ephemeral())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cal = calibrate(calibration_data.load(con, days=365))
    mp.undo()
    return truth, cal


def _at_bids_in_force(params: MarketParams, fit, measure) -> float:
    """The measure over the bids the campaign used in the window, weighted by the clicks bought at each: what the
    reports average over (in the truth, who a bid wins depends on the bid)."""
    levels = fit.rivals.levels
    weights = levels["clicks"].to_numpy()
    values = [measure(params, fit.campaign_id, bid) for bid in levels["bid"].to_list()]
    return float((weights * values).sum() / weights.sum())


def _judge(truth: MarketParams, cal, measure, enough) -> dict[int, tuple[float, float]]:
    return {
        cid: (_at_bids_in_force(truth, fit, measure), _at_bids_in_force(cal.params, fit, measure))
        for cid, fit in cal.campaigns.items()
        if enough(fit, cid)
    }


@pytest.mark.slow
def test_conversion_rate_per_click_is_recovered(calibrated):
    truth, cal = calibrated
    judged = _judge(truth, cal, click_conversion_rate, lambda f, _: f.uncertainty.get("cvr", 1) <= ENOUGH)
    assert len(judged) >= 4, judged
    for cid, (t, f) in judged.items():
        assert f == pytest.approx(t, rel=TOLERANCE), f"campaign {cid}: conversions per click {f:.4f} vs truth {t:.4f}"


@pytest.mark.slow
def test_mean_conversion_lag_is_recovered(calibrated):
    truth, cal = calibrated
    judged = _judge(truth, cal, mean_lag_days, lambda f, _: f.uncertainty.get("cvr", 1) <= ENOUGH)
    assert len(judged) >= 4, judged
    for cid, (t, f) in judged.items():
        assert f == pytest.approx(t, rel=TOLERANCE), f"campaign {cid}: mean lag {f:.2f} days vs truth {t:.2f}"


@pytest.mark.slow
def test_median_competitor_bid_is_recovered(calibrated):
    truth, cal = calibrated

    def enough(fit, cid):
        return fit.uncertainty.get("rival_median", 1) <= ENOUGH and threshold_bid_quantile(truth, cid) > 0

    judged = {
        cid: (threshold_bid_quantile(truth, cid), threshold_bid_quantile(cal.params, cid))
        for cid, fit in cal.campaigns.items()
        if enough(fit, cid)
    }
    assert len(judged) >= 5, judged
    for cid, (t, f) in judged.items():
        assert f == pytest.approx(t, rel=TOLERANCE), f"campaign {cid}: median threshold bid {f:.2f} vs truth {t:.2f}"
