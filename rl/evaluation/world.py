"""Running a policy against the demo world (a COPY of it) and comparing with the simulator.

    world = copy_world(src_state_dir, tmp_dir, world_file, seed)     # or fresh_world(tmp_dir, world_file, seed, date)
    out = world_episode(policy, world, params, schema, episode_days=14)

The policy sees only what the world's reports show — the ad platforms' daily spend, impressions, clicks, eligible
impressions (search impression share; social platforms report none), the daily budget in force, conversions by
click date that have happened by the morning of each day, the same per device and per hour block of the click, and
the device and hour-block bid modifiers in force — assembled into the same `Reports` the simulator builds, so the
observation code path is identical. Its actions become settings through the same guardrails
(`rl.env.settings.apply_action`; limits from the *training* params, i.e. account configuration: daily budget,
target CPA, reference and max bids, the platforms' modifier ranges) and are pushed to the world copy — budgets,
bids and, on the search platforms, the modifiers — which then lets the day happen. After the episode every campaign
is paused for a settle period so the episode clicks' conversions arrive, and the score is computed from the reported
conversions. The original world is never touched.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from rl.env.guardrails import DEFAULT_BID_RANGE, DEFAULT_MAX_STEP, GuardrailLimits
from rl.env.observation import Reports, build_observation, reports_share
from rl.env.reward import score
from rl.env.schema import ObservationSchema
from rl.env.settings import Settings, apply_action
from rl.market.modifiers import N_DEVICES, block_of_hour
from rl.market.params import DEVICES, MarketParams
from rl.policies.base import Policy
from rl.world.world import DemoWorld

OBS_HISTORY_DAYS = 28  # the longest trailing window of the observation


def copy_world(src_state_dir: Path, dst_state_dir: Path, world_file: Path, seed: int) -> DemoWorld:
    """A copy of a persisted demo world (same date, history and pushes) in `dst_state_dir`."""
    src = Path(src_state_dir)
    if not (src / "world.json").exists():
        raise FileNotFoundError(f"no demo world state in {src} (world.json missing)")
    shutil.copytree(src, dst_state_dir, ignore=shutil.ignore_patterns("lock"), dirs_exist_ok=False)
    return DemoWorld.open(dst_state_dir, world_file, seed)


def fresh_world(state_dir: Path, world_file: Path, seed: int, until: dt.date) -> DemoWorld:
    """A new demo world from the same world file and seed, simulated up to (not including) `until`."""
    world = DemoWorld.open(state_dir, world_file, seed)
    world.advance_to(until)
    return world


def _grid(frame: pl.DataFrame, col: str, date_col: str, first: dt.date, n_days: int, ids: list[int]) -> np.ndarray:
    out = np.zeros((n_days, len(ids)))
    if frame.height == 0:
        return out
    agg = frame.group_by(date_col, "campaign_id").agg(pl.col(col).sum())
    pos = {cid: j for j, cid in enumerate(ids)}
    for d, cid, v in agg.iter_rows():
        i = (d - first).days
        if 0 <= i < n_days and cid in pos and v is not None:
            out[i, pos[cid]] += float(v)
    return out


def _modifiers_now(world: DemoWorld, ids: list[int]) -> np.ndarray:
    """[1, C, K] the device then hour-block modifiers in force from the world's `today` (what its criteria report)."""
    return np.array([[[*world.modifiers[i].device, *world.modifiers[i].hours] for i in ids]], dtype=float)


def _breakdown_grids(ads: pl.DataFrame, conv: pl.DataFrame, rep: Reports, first: dt.date, ids: list[int]) -> None:
    """Fill the device and hour-block breakdowns (spend, clicks, conversions by click day and lag) from the ads and
    conversion reports, which carry the hour and device of each click."""
    n_days, n_lags = rep.spend.shape[1], rep.conv_by_lag.shape[-1]
    block = block_of_hour(rep.spend_by.shape[-1] - N_DEVICES)
    pos = {cid: j for j, cid in enumerate(ids)}
    dev_index = {d: i for i, d in enumerate(DEVICES)}
    if ads.height:
        for d, h, dev, cid, cost, clicks in ads.select(
            "date", "hour", "device", "campaign_id", "cost_micros", "clicks"
        ).iter_rows():
            i = (d - first).days
            if 0 <= i < n_days and cid in pos:
                for k in (dev_index[dev], N_DEVICES + block[h]):
                    rep.spend_by[0, i, pos[cid], k] += cost / 1e6
                    rep.clicks_by[0, i, pos[cid], k] += clicks
    if conv.height:
        lag = (pl.col("conv_date") - pl.col("click_date")).dt.total_days().clip(0, n_lags - 1)
        agg = conv.group_by("click_date", "click_hour", "device", "campaign_id", lag.alias("lag")).agg(pl.len())
        for d, h, dev, cid, lg, k in agg.iter_rows():
            i = (d - first).days
            if 0 <= i < n_days and cid in pos:
                for key in (dev_index[dev], N_DEVICES + block[h]):
                    rep.conv_by_lag_by[0, i, pos[cid], key, int(lg)] += k


def world_reports(
    world: DemoWorld, params: MarketParams, schema: ObservationSchema, first: dt.date, n_days: int, **kw
) -> Reports:
    """`Reports` for days [first, first + n_days) filled from the world's report tables up to its `today`, with
    the device and hour-block breakdowns and (unless given in `kw`) the modifiers in force."""
    ids = list(schema.campaign_ids)
    tables = world.report_tables()
    ads = tables["ads"].filter((pl.col("date") >= first) & (pl.col("date") < world.today))
    conv = tables["ad_conversions"].filter(
        (pl.col("click_date") >= first) & (pl.col("conv_date") < world.today)  # only what has happened
    )
    n_lags = int(max(s.lag_days_max for s in params.segments)) + 1
    kw.setdefault("modifiers_now", _modifiers_now(world, ids))
    rep = Reports.empty(
        1,
        n_days,
        len(ids),
        n_lags,
        N_DEVICES + schema.hour_blocks,
        first_date=first,
        share_reported=reports_share(schema.align(params)),
        **kw,
    )
    rep.spend[0] = _grid(ads, "cost_micros", "date", first, n_days, ids) / 1e6
    rep.impressions[0] = _grid(ads, "impressions", "date", first, n_days, ids)
    rep.clicks[0] = _grid(ads, "clicks", "date", first, n_days, ids)
    rep.opportunities[0] = _grid(ads, "eligible_impressions", "date", first, n_days, ids)
    # the daily budget in force each day, as the platforms report it (the budget-utilisation features need it)
    settings = tables["settings"].filter((pl.col("date") >= first) & (pl.col("date") < world.today))
    rep.budgets[0] = _grid(settings, "daily_budget", "date", first, n_days, ids)
    if conv.height:
        pos = {cid: j for j, cid in enumerate(ids)}
        lag = (pl.col("conv_date") - pl.col("click_date")).dt.total_days().clip(0, n_lags - 1)
        agg = conv.with_columns(lag.alias("lag")).group_by("click_date", "campaign_id", "lag").agg(pl.len())
        for d, cid, lg, k in agg.iter_rows():
            i = (d - first).days
            if 0 <= i < n_days and cid in pos:
                rep.conv_by_lag[0, i, pos[cid], int(lg)] += k
    _breakdown_grids(ads, conv, rep, first, ids)
    rep.today = (world.today - first).days
    return rep


def world_episode(
    policy: Policy,
    world: DemoWorld,
    params: MarketParams,
    schema: ObservationSchema,
    episode_days: int,
    settle_days: int | None = None,
    max_step: float | None = DEFAULT_MAX_STEP,
    bid_range: float = DEFAULT_BID_RANGE,
) -> dict:
    """Run `policy` for `episode_days` days from the world's `today` (see module docstring); returns the episode's
    score, conversions, spend, CPA, days over budget and dates. `params` are the training params (account limits)."""
    params = schema.align(params)
    limits = GuardrailLimits.from_params(params, max_step, bid_range)
    lag_max = int(max(s.lag_days_max for s in params.segments))
    settle = lag_max if settle_days is None else settle_days
    start = world.today
    first = start - dt.timedelta(days=OBS_HISTORY_DAYS)
    n_days = OBS_HISTORY_DAYS + episode_days + settle + 1
    ids = list(schema.campaign_ids)
    now = Settings(
        np.array([[world.settings[i][0] for i in ids]], dtype=float),
        np.array([[world.settings[i][1] for i in ids]], dtype=float),
        np.array([[world.modifiers[i].device for i in ids]], dtype=float),
        np.array([[world.modifiers[i].hours for i in ids]], dtype=float),
    )
    has_modifiers = limits.modifier_mask
    kw = dict(
        warmup_days=OBS_HISTORY_DAYS,
        episode_days=episode_days,
        ref_bids=limits.ref_bids,
        bid_range=bid_range,
        daily_budget=float(params.daily_budget),
        target_cpa=float(params.target_cpa),
    )
    policy.reset(1)
    for _ in range(episode_days):
        rep = world_reports(world, params, schema, first, n_days, budgets_now=now.budgets, bids_now=now.bids, **kw)
        obs = build_observation(schema, rep)
        now = apply_action(policy.act(obs), now, limits)
        for j, cid in enumerate(ids):
            mods = (
                {"device_modifiers": now.device[0, j].tolist(), "hour_modifiers": now.hours[0, j].tolist()}
                if has_modifiers[j]
                else {}
            )
            world.push(
                cid, daily_budget=float(now.budgets[0, j]), bid=float(now.bids[0, j]), source="evaluation", **mods
            )
        world.advance(1)
    for cid in ids:
        world.push(cid, daily_budget=0.0, source="evaluation-settle")
    world.advance(settle)
    rep = world_reports(world, params, schema, first, n_days, budgets_now=now.budgets, bids_now=now.bids, **kw)
    ep = slice(OBS_HISTORY_DAYS, OBS_HISTORY_DAYS + episode_days)
    daily = rep.spend[0, ep].sum(axis=1)
    conv = float(rep.reported_by_click_day(rep.today - OBS_HISTORY_DAYS)[0, :episode_days].sum())
    spend = float(daily.sum())
    return {
        "score": float(score(conv, spend, params.target_cpa)),
        "conversions": conv,
        "spend": spend,
        "cpa": spend / conv if conv else float("inf"),
        "days_over_budget": int((daily > params.daily_budget * (1 + 1e-6)).sum()),
        "start_date": start.isoformat(),
        "episode_days": episode_days,
        "settle_days": settle,
    }
