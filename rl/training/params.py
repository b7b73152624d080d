"""The market the policy trains on, and domain randomisation around it.

`training_market(calibration_file, world_file)` returns the calibrated `MarketParams` (from the `market_calibration`
artifact) with their per-campaign relative uncertainties, or — when no calibration exists yet — the default world
file's parameters *with noise* (so training never runs on the demo world's hidden truth itself), clearly flagged
as a fallback in `TrainingMarket.source`.

`make_params_sampler(base, uncertainty)` gives a pure `params_sampler(rng) -> MarketParams` for the environments:
every call multiplies, per campaign, the opportunity volume, the median bids of the rivals in its auctions, the
conversion multiplier and the click-through multiplier by lognormal factors whose sigmas are the calibration's
relative standard errors (clipped to `MAX_SIGMA`). A rival entering several campaigns' auctions gets the mean of
those campaigns' sigmas. The same generator state gives the same market.

A volume the reports only bound from below (a social campaign whose budget ran out every day: the calibration's
`volume_is_lower_bound`) is drawn upwards only, log-uniformly from the bound to `LOWER_BOUND_REACH` × it:
`lower_bound_ranges(market)` gives those ranges for `EnvConfig.campaign_volume_ranges`, which draws them per market
and episode on the same simulator (a new `MarketParams` per reset would rebuild it and halve fine-tuning's steps).
A policy trained on the bound alone learns that the campaign can never take more, so it never finds out; trained
on markets where it sometimes can, it can learn to raise a budget that is spent to the last cent at a good cost and
to stop when it no longer is (the teacher knows each market's truth). Training asks for it explicitly
(`train_policy(lower_bound_volumes=True)`; the asset's knob of that name is on by default), and its yardsticks and
evaluation then draw the same (`rl.training.pipeline.market_config`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rl.market.params import MarketParams, load_market_params, parse_market_params

UNCERTAIN_FIELDS = ("volume", "rival_median", "cvr", "ctr")
MAX_SIGMA = 0.5  # a relative standard error above this is treated as this (lognormal sigma)
FALLBACK_SIGMA = 0.2  # relative uncertainty assumed for every field when no calibration exists
FALLBACK_NOISE_SEED = 20251126  # the fixed draw that turns the world file into the fallback training market
# A volume the reports only bound from below: nothing in them bounds it from above but the platform's reach, so
# training draws it log-uniformly from the bound to this multiple of it.
LOWER_BOUND_REACH = 4.0
MULT_LIMIT = 10.0  # MarketParams caps ctr_mult / cvr_mult at 10

Uncertainty = dict[int, dict[str, float]]  # campaign id → field → relative standard error


@dataclass(frozen=True)
class TrainingMarket:
    """What training starts from. source: "calibration" or "fallback_world_file_with_noise"."""

    params: MarketParams
    uncertainty: Uncertainty
    source: str
    params_hash: str
    window: dict[str, str | None] = field(default_factory=lambda: {"first": None, "last": None})
    calibration_file: str | None = None
    lower_bounds: frozenset[int] = frozenset()  # campaigns whose volume is only a lower bound (see module docstring)

    @property
    def is_fallback(self) -> bool:
        return self.source != "calibration"


def parse_uncertainty(campaigns: Mapping[str, object], params: MarketParams) -> Uncertainty:
    """The calibration artifact's {"<id>": {"uncertainty": {...}}} as {id: {field: rel_se}} for the params'
    campaigns; a missing or non-finite value becomes `FALLBACK_SIGMA`; an unknown campaign id is an error."""
    known = set(params.campaign_ids)
    out: Uncertainty = {cid: dict.fromkeys(UNCERTAIN_FIELDS, FALLBACK_SIGMA) for cid in known}
    for key, entry in campaigns.items():
        try:
            cid = int(key)
        except ValueError:
            raise ValueError(f"calibration campaign key {key!r} is not a campaign id") from None
        if cid not in known:
            raise ValueError(f"calibration has uncertainty for campaign {cid}, which the calibrated params lack")
        unc = (entry or {}).get("uncertainty", {}) if isinstance(entry, Mapping) else {}
        for name in UNCERTAIN_FIELDS:
            v = unc.get(name)
            if v is not None and math.isfinite(float(v)) and float(v) >= 0:
                out[cid][name] = float(v)
    return out


def training_market(calibration_file: Path | None, world_file: Path) -> TrainingMarket:
    """The calibrated market if `calibration_file` exists, else the world file's params with fixed noise."""
    if calibration_file is not None and Path(calibration_file).exists():
        data = json.loads(Path(calibration_file).read_text())
        if not isinstance(data, dict) or "params" not in data:
            raise ValueError(f"{calibration_file}: not a market calibration (no 'params' key)")
        params = parse_market_params(data["params"], str(calibration_file))
        uncertainty = parse_uncertainty(data.get("campaigns", {}) or {}, params)
        window = data.get("window") or {}
        campaigns = data.get("campaigns") or {}
        lower = frozenset(
            int(k) for k, e in campaigns.items() if isinstance(e, Mapping) and e.get("volume_is_lower_bound")
        )
        return TrainingMarket(
            params=params,
            uncertainty=uncertainty,
            source="calibration",
            params_hash=str(data.get("params_hash") or params.params_hash()),
            window={"first": window.get("first"), "last": window.get("last")},
            calibration_file=str(calibration_file),
            lower_bounds=lower,
        )
    truth = load_market_params(world_file)
    uncertainty = {c.id: dict.fromkeys(UNCERTAIN_FIELDS, FALLBACK_SIGMA) for c in truth.campaigns}
    params = perturb(truth, uncertainty, np.random.default_rng(FALLBACK_NOISE_SEED))
    return TrainingMarket(
        params=params,
        uncertainty=uncertainty,
        source="fallback_world_file_with_noise",
        params_hash=params.params_hash(),
    )


def _sigmas(params: MarketParams, uncertainty: Uncertainty) -> dict[int, dict[str, float]]:
    missing = [c.id for c in params.campaigns if c.id not in uncertainty]
    if missing:
        raise ValueError(f"no uncertainty given for campaigns {missing}")
    return {
        cid: {k: min(max(float(uncertainty[cid].get(k, 0.0)), 0.0), MAX_SIGMA) for k in UNCERTAIN_FIELDS}
        for cid in (c.id for c in params.campaigns)
    }


def perturb(params: MarketParams, uncertainty: Uncertainty, rng: np.random.Generator) -> MarketParams:
    """One perturbed copy of `params` (pure given the generator state; see module docstring)."""
    sig = _sigmas(params, uncertainty)
    data = params.model_dump()
    for c in data["campaigns"]:
        s = sig[c["id"]]
        z = rng.standard_normal(3)
        c["opportunities_per_day"] *= math.exp(s["volume"] * z[0])
        c["cvr_mult"] = min(c["cvr_mult"] * math.exp(s["cvr"] * z[1]), MULT_LIMIT)
        c["ctr_mult"] = min(c["ctr_mult"] * math.exp(s["ctr"] * z[2]), MULT_LIMIT)
    for k in data["competitors"]:
        s = float(np.mean([sig[cid]["rival_median"] for cid in k["campaigns"]]))
        k["median_bid"] *= math.exp(s * rng.standard_normal())
    return MarketParams.model_validate(data)


def make_params_sampler(
    base: MarketParams, uncertainty: Uncertainty, scale: float = 1.0
) -> Callable[[np.random.Generator], MarketParams]:
    """`params_sampler(rng)` for the environments: `perturb(base, uncertainty × scale, rng)`."""
    if scale < 0:
        raise ValueError(f"uncertainty scale must be >= 0, got {scale}")
    scaled_unc = {cid: {k: v * scale for k, v in u.items()} for cid, u in uncertainty.items()}
    _sigmas(base, scaled_unc)  # fail now, not inside the environment

    def params_sampler(rng: np.random.Generator) -> MarketParams:
        return perturb(base, scaled_unc, rng)

    return params_sampler


def lower_bound_ranges(market: TrainingMarket) -> tuple[tuple[int, float, float], ...]:
    """`EnvConfig.campaign_volume_ranges` for the volumes the calibration only bounds from below: (campaign id, 1,
    `LOWER_BOUND_REACH`) each (module docstring)."""
    unknown = sorted(set(market.lower_bounds) - set(market.params.campaign_ids))
    if unknown:
        raise ValueError(f"lower-bound volumes given for campaigns {unknown}, which the params lack")
    return tuple((cid, 1.0, LOWER_BOUND_REACH) for cid in sorted(market.lower_bounds))


def scale_market(params: MarketParams, factor: float) -> MarketParams:
    """The same market shrunk by `factor`: opportunity volume, the account budget and every campaign budget
    (so the economics — CPA per conversion, budget-limited vs volume-limited — stay about the same)."""
    if not factor > 0:
        raise ValueError(f"market scale factor must be > 0, got {factor}")
    if factor == 1.0:
        return params
    data = params.model_dump()
    data["daily_budget"] *= factor
    for c in data["campaigns"]:
        c["opportunities_per_day"] *= factor
        c["current_daily_budget"] *= factor
    return MarketParams.model_validate(data)
