"""`MarketBatch`: M markets sharing one `MarketParams`, stepped together one day at a time.

Both `BiddingEnv` (M = 1) and `BatchedBiddingVecEnv` run on it, so the single and the batched environment are the
same simulation: market m of a batch started with (params, start date, market seed) sees exactly the days a
single environment started with the same triple would see as its market 0 … M−1 (`market_rngs(seed, M, date)`
gives market m the generator [seed, m, date]).

An episode: `warmup_days` days at the settings in force (the params' current budgets and bids) fill the report
history (so trailing windows are populated and the warm-up's conversions keep arriving), then `episode_days`
decided days starting on `start_date`, then `settle_days` (default: the longest conversion lag) in which the
campaigns are paused and the conversions of the episode's clicks keep happening — the last step's transition spans
the last decided day and the settle period, so its reward counts the conversions reported by the end of that
period and the episode return equals the evaluation score (see `rl.env.reward`). Every day of every market is
resolved in one `draw_day` + `resolve_day`; settle days need no engine (nothing is served).

Shapes: M markets, C campaigns (schema order), H = warmup + episode days, L = longest lag + 1.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl.env.guardrails import DEFAULT_BID_RANGE, DEFAULT_MAX_STEP, DEFAULT_MODIFIER_RANGE, GuardrailLimits
from rl.env.hindsight import Hindsight
from rl.env.observation import Reports, build_observation, reports_share
from rl.env.reward import default_reward_scale, score
from rl.env.schema import ObservationSchema
from rl.env.settings import Settings, apply_action
from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws, draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.market.fast import FastDraws, fast_day, fast_draws
from rl.market.landscape import Landscape
from rl.market.modifiers import N_DEVICES, block_of_hour, modifiers_in_force
from rl.market.params import MarketParams

ParamsSampler = Callable[[np.random.Generator], MarketParams]
ENGINES = ("full", "fast")
WARMUP_CACHE = 4  # setups whose warm-up is kept


@dataclass(frozen=True)
class EnvConfig:
    """Episode and action settings. start_dates: inclusive range for the first decided day (default: from
    `warmup_days` after the params' history start, for one year). volume_scale_range: optional per-market
    log-uniform multiplier on opportunity volume, redrawn every episode (cheap domain randomisation).
    campaign_volume_ranges: (campaign id, low, high) — that campaign's volume alone times a log-uniform draw per
    market and episode (a volume known only within a range, e.g. from below); the markets of a cycle share the
    simulator and differ in the draw."""

    episode_days: int = 28
    warmup_days: int = 28
    settle_days: int | None = None  # None: the longest conversion lag of the market (return = score exactly)
    start_dates: tuple[dt.date, dt.date] | None = None
    max_step: float | None = DEFAULT_MAX_STEP
    bid_range: float = DEFAULT_BID_RANGE
    modifier_range: float = DEFAULT_MODIFIER_RANGE
    reward_scale: float | None = None  # default target CPA / daily budget
    volume_scale_range: tuple[float, float] | None = None
    campaign_volume_ranges: tuple[tuple[int, float, float], ...] = ()
    # "full": the opportunity-level engine (every evaluation); "fast": the landscape day (`rl.market.fast`), for
    # training where a decision must be cheap
    engine: str = "full"

    def __post_init__(self) -> None:
        if self.episode_days < 1:
            raise ValueError(f"episode_days must be >= 1, got {self.episode_days}")
        if self.warmup_days < 0:
            raise ValueError(f"warmup_days must be >= 0, got {self.warmup_days}")
        if self.settle_days is not None and self.settle_days < 0:
            raise ValueError(f"settle_days must be >= 0 or None, got {self.settle_days}")
        if self.start_dates is not None and self.start_dates[1] < self.start_dates[0]:
            raise ValueError(f"start_dates must be (earliest, latest), got {self.start_dates}")
        if self.volume_scale_range is not None and not 0 < self.volume_scale_range[0] <= self.volume_scale_range[1]:
            raise ValueError(f"volume_scale_range must be 0 < low <= high, got {self.volume_scale_range}")
        for entry in self.campaign_volume_ranges:
            if len(entry) != 3 or not 0 < entry[1] <= entry[2]:
                raise ValueError(f"campaign_volume_ranges: (campaign id, low, high) with 0 < low <= high, got {entry}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")

    def date_range(self, params: MarketParams) -> tuple[dt.date, dt.date]:
        if self.start_dates is not None:
            return self.start_dates
        first = params.history_start + dt.timedelta(days=self.warmup_days)
        return first, first + dt.timedelta(days=364)


@dataclass(frozen=True)
class EpisodeSetup:
    """What one reset cycle draws: the market, the first decided day, the market seed and per-market volume."""

    params: MarketParams
    start_date: dt.date
    market_seed: int
    volume_scale: np.ndarray | None  # [M], [M, C] (C in the base params' campaign order, the schema's) or None

    @classmethod
    def sample(
        cls,
        rng: np.random.Generator,
        base_params: MarketParams,
        config: EnvConfig,
        n_markets: int,
        params_sampler: ParamsSampler | None = None,
    ) -> EpisodeSetup:
        params = base_params if params_sampler is None else params_sampler(rng)
        lo, hi = config.date_range(params)
        start = lo + dt.timedelta(days=int(rng.integers(0, (hi - lo).days + 1)))
        seed = int(rng.integers(0, 2**31 - 1))
        scale = None
        if config.volume_scale_range is not None:
            a, b = np.log(config.volume_scale_range)
            scale = np.exp(rng.uniform(a, b, n_markets))
        if config.campaign_volume_ranges:
            ids, ranges = base_params.campaign_ids, config.campaign_volume_ranges
            scale = campaign_volume_scale(rng, ids, ranges, n_markets, scale)
        return cls(params, start, seed, scale)


def campaign_volume_scale(
    rng: np.random.Generator,
    campaign_ids: Sequence[int],
    ranges: Sequence[tuple[int, float, float]],
    n_markets: int,
    market_scale: np.ndarray | None = None,
) -> np.ndarray:
    """Volume multipliers [M, C]: `market_scale` [M] (or 1) on every campaign, times, for each (campaign id, low,
    high) of `ranges`, a log-uniform draw per market for that campaign."""
    ids = list(campaign_ids)
    unknown = sorted({int(r[0]) for r in ranges} - set(ids))
    if unknown:
        raise ValueError(f"campaign_volume_ranges name campaigns {unknown}, which the market lacks")
    base = np.ones(n_markets) if market_scale is None else np.asarray(market_scale, dtype=float)
    scale = np.repeat(base[:, None], len(ids), axis=1)
    for cid, low, high in ranges:
        scale[:, ids.index(int(cid))] *= np.exp(rng.uniform(np.log(low), np.log(high), n_markets))
    return scale


class MarketBatch(Hindsight):
    """The simulation behind the environments. Call `start(setup)`, then `step(action)` `episode_days` times."""

    def __init__(self, schema: ObservationSchema, config: EnvConfig, n_markets: int):
        if n_markets < 1:
            raise ValueError(f"n_markets must be >= 1, got {n_markets}")
        self.schema = schema
        self.config = config
        self.n_markets = n_markets
        self._compiled: tuple[MarketParams, CompiledMarket] | None = None
        self._landscape: tuple[MarketParams, Landscape] | None = None
        self.setup: EpisodeSetup | None = None
        # the state after the warm-up of recent setups: every policy evaluated on the same seed starts from the
        # same warm-up (it runs the settings in force, whatever the policy), so it is simulated once
        self._warmups: dict[tuple, MarketBatch] = {}

    # -- episode lifecycle -------------------------------------------------------------------------------------
    def start(self, setup: EpisodeSetup) -> np.ndarray:
        """Set up the markets, run the warm-up (or copy it from an earlier start of the same setup), and return the
        first observation [M, D]."""
        key = self._warmup_key(setup)
        if key in self._warmups:
            self._restore(self._warmups[key])
            return self.observe()
        obs = self._start(setup)
        self._warmups[key] = self.fork()
        while len(self._warmups) > WARMUP_CACHE:
            self._warmups.pop(next(iter(self._warmups)))
        return obs

    def _warmup_key(self, setup: EpisodeSetup) -> tuple:
        volume = None if setup.volume_scale is None else np.asarray(setup.volume_scale, dtype=float).tobytes()
        return (setup.params.params_hash(), setup.start_date, setup.market_seed, volume)

    def _restore(self, snapshot: MarketBatch) -> None:
        """Become an independent copy of `snapshot` (a fork taken right after its warm-up)."""
        copy_of = snapshot.fork()
        for name, value in vars(copy_of).items():
            if name != "_warmups":
                setattr(self, name, value)

    def _start(self, setup: EpisodeSetup) -> np.ndarray:
        cfg, n_m = self.config, self.n_markets
        params = self.schema.align(setup.params)
        if self._compiled is None or self._compiled[0] is not params:
            self._compiled = (params, CompiledMarket.from_params(params))
        self.cm = self._compiled[1]
        self.params = params
        if cfg.engine == "fast" and (self._landscape is None or self._landscape[0] is not params):
            self._landscape = (params, Landscape.build(self.cm))
        self.setup = setup
        self.limits = GuardrailLimits.from_params(params, cfg.max_step, cfg.bid_range, cfg.modifier_range)
        self.reward_scale = (
            cfg.reward_scale
            if cfg.reward_scale is not None
            else default_reward_scale(params.daily_budget, params.target_cpa)
        )
        n_c = self.cm.n_campaigns
        n_lags = int(self.cm.lag_max.max()) + 1
        self.settle_days = n_lags - 1 if cfg.settle_days is None else cfg.settle_days
        n_days = cfg.warmup_days + cfg.episode_days + self.settle_days
        device, hours = modifiers_in_force(params)
        self.settings = Settings(
            np.tile([c.current_daily_budget for c in params.campaigns], (n_m, 1)).astype(float),
            np.tile([c.current_bid for c in params.campaigns], (n_m, 1)).astype(float),
            np.tile(device, (n_m, 1, 1)),
            np.tile(hours, (n_m, 1, 1)),
        )
        self._block = block_of_hour(params.hour_blocks)
        self.reports = Reports.empty(
            n_m,
            n_days,
            n_c,
            n_lags,
            n_breakdown=N_DEVICES + params.hour_blocks,
            modifiers_now=np.concatenate([self.settings.device, self.settings.hours], axis=-1),
            modifier_range=cfg.modifier_range,
            warmup_days=cfg.warmup_days,
            episode_days=cfg.episode_days,
            first_date=setup.start_date - dt.timedelta(days=cfg.warmup_days),
            budgets_now=np.tile([c.current_daily_budget for c in params.campaigns], (n_m, 1)).astype(float),
            bids_now=np.tile([c.current_bid for c in params.campaigns], (n_m, 1)).astype(float),
            ref_bids=self.limits.ref_bids,
            bid_range=cfg.bid_range,
            daily_budget=float(params.daily_budget),
            target_cpa=float(params.target_cpa),
            share_reported=reports_share(params),
        )
        # hidden truth, for evaluation only (never read by the observation or the reward)
        self.true_conversions = np.zeros((n_m, n_days, n_c))  # eventual conversions by click day
        self.true_revenue = np.zeros((n_m, n_days, n_c))
        self.state = MarketState.initial(self.cm, n_m)
        self.episode_return = np.zeros(n_m)
        self._potential = np.zeros(n_m)
        self._today_draws: DayDraws | None = None
        self._fast_draws: FastDraws | None = None
        for _ in range(cfg.warmup_days):
            self._resolve(self.settings)
        return self.observe()

    def fork(self) -> MarketBatch:
        """An independent copy of the markets as they stand: the same setup, history, hidden state and day, so
        that stepping the copy with the same actions gives the same days (the draws depend only on the seed and
        the date). The read-only parts (compiled market, today's draws) are shared, not copied."""
        if self.setup is None:
            raise RuntimeError("fork() before start(): there are no markets to copy")
        twin = copy.copy(self)
        twin._warmups = {}
        names = ("reports", "state", "settings", "true_conversions", "true_revenue", "episode_return", "_potential")
        for name in names:
            setattr(twin, name, copy.deepcopy(getattr(self, name)))
        return twin

    @property
    def day(self) -> int:
        """Decided days so far in the episode (0 … episode_days)."""
        return self.reports.today - self.config.warmup_days

    @property
    def done(self) -> bool:
        return self.day >= self.config.episode_days

    @property
    def complete(self) -> bool:
        """True when the settle period covers every lag: the episode's score is final (terminated, not
        truncated); otherwise conversions are still in flight at the end (truncated: bootstrap the value)."""
        return self.settle_days >= int(self.cm.lag_max.max())

    @property
    def date(self) -> dt.date:
        """The day about to be decided."""
        return self.reports.date

    def observe(self) -> np.ndarray:
        return build_observation(self.schema, self.reports)

    def draws(self) -> DayDraws:
        """Today's draws for all markets (drawn once per day; they do not depend on the action)."""
        if self._today_draws is None or self._today_draws.date != self.date:
            rngs = market_rngs(self.setup.market_seed, self.n_markets, self.date)
            self._today_draws = draw_day(self.cm, self.date, rngs, self.setup.volume_scale)
        return self._today_draws

    def _resolve(self, settings: Settings):
        rep, i = self.reports, self.reports.today
        neutral = np.all(settings.device == 1.0) and np.all(settings.hours == 1.0)
        mult = None if neutral else settings.cell_multipliers()
        if self.config.engine == "fast":
            if self._fast_draws is None or self._fast_draws.date != self.date:
                self._fast_draws = fast_draws(self.cm, self.date, self.setup.market_seed, self.n_markets)
            land = self._landscape[1]
            volume = self.setup.volume_scale
            result, self.state = fast_day(
                land, self._fast_draws, self.state, settings.budgets, settings.bids, mult, volume
            )
        else:
            result, self.state = resolve_day(self.cm, self.draws(), self.state, settings.budgets, settings.bids, mult)
        rep.spend[:, i] = result.per_campaign("cost")
        rep.impressions[:, i] = result.per_campaign("impressions")
        rep.clicks[:, i] = result.per_campaign("clicks")
        rep.opportunities[:, i] = result.per_campaign("opportunities")
        rep.budgets[:, i] = settings.budgets
        # the device and hour-block breakdowns the platforms report: [M, C, D] then [M, C, B]
        n_b = len(np.unique(self._block))
        for name, cells in (("spend_by", result.cost), ("clicks_by", result.clicks)):
            by_block = np.zeros(cells.shape[:2] + (n_b,))
            np.add.at(by_block, (slice(None), slice(None), self._block), cells.sum(axis=3))
            getattr(rep, name)[:, i] = np.concatenate([cells.sum(axis=2), by_block], axis=-1)
        ev = result.events
        np.add.at(rep.conv_by_lag, (ev.market, i, ev.campaign, ev.lag_days), 1.0)
        np.add.at(rep.conv_by_lag_by, (ev.market, i, ev.campaign, ev.device, ev.lag_days), 1.0)
        np.add.at(
            rep.conv_by_lag_by, (ev.market, i, ev.campaign, N_DEVICES + self._block[ev.click_hour], ev.lag_days), 1.0
        )
        self.true_conversions[:, i] = result.per_campaign("conversions")
        self.true_revenue[:, i] = result.per_campaign("revenue")
        self.settings = settings
        rep.budgets_now, rep.bids_now = settings.budgets, settings.bids
        rep.modifiers_now = np.concatenate([settings.device, settings.hours], axis=-1)
        rep.today = i + 1
        return result

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, list[dict[str, Any]]]:
        """Apply actions [M, A] through the guardrails (`rl.env.settings.apply_action`), resolve the day. Returns
        (obs [M, D], rewards [M], done, infos). At the last day the settle period follows within the same step,
        and infos carry "episode_summary" (the true score)."""
        if self.setup is None or self.done:
            raise RuntimeError("step() on a finished or unstarted episode; call start() first")
        action = np.asarray(action, dtype=float).reshape(self.n_markets, self.schema.action_size)
        rep = self.reports
        applied = apply_action(action, self.settings, self.limits)
        budgets, bids = applied.budgets, applied.bids
        i = rep.today
        self._resolve(applied)
        happened = rep.happened_on(i, first_click_day=self.config.warmup_days)  # [M, C]
        settled = np.zeros(self.n_markets)
        if self.done and self.settle_days > 0:  # campaigns paused; late conversions of episode clicks arrive
            for d in range(i + 1, i + 1 + self.settle_days):
                settled += rep.happened_on(d, first_click_day=self.config.warmup_days).sum(axis=1)
            rep.today += self.settle_days
            rep.budgets_now = np.zeros_like(rep.budgets_now)
        potential = score(rep.episode_reported(), rep.episode_spend(), self.params.target_cpa)
        reward = self.reward_scale * (potential - self._potential)
        self._potential = potential
        self.episode_return += reward
        infos = []
        for m in range(self.n_markets):
            infos.append(
                {
                    "date": (rep.first_date + dt.timedelta(days=i)).isoformat(),
                    "budgets": budgets[m].copy(),
                    "bids": bids[m].copy(),
                    "device_modifiers": applied.device[m].copy(),
                    "hour_modifiers": applied.hours[m].copy(),
                    "spend": float(rep.spend[m, i].sum()),
                    "conversions_reported": float(happened[m].sum()),  # happened on this day
                    # evaluation-only truth about this day's clicks (eventual conversions); never in observations
                    "truth": {
                        "conversions": float(self.true_conversions[m, i].sum()),
                        "revenue": float(self.true_revenue[m, i].sum()),
                    },
                }
            )
        if self.done:
            for m, info in enumerate(infos):
                info["conversions_settled"] = float(settled[m])  # happened during the settle period
                info["episode_summary"] = self.summary(m)
        return self.observe(), reward, self.done, infos

    def summary(self, m: int) -> dict:
        """The episode's evaluation numbers for market m: the true score uses the eventual conversions of the
        episode's clicks (including any that happen after the settle period), as the oracles do."""
        cfg, rep = self.config, self.reports
        ep = slice(cfg.warmup_days, rep.today)
        conv = float(self.true_conversions[m, ep].sum())
        spend = float(rep.spend[m, ep].sum())
        reported = float(rep.episode_reported()[m])
        return {
            "score": float(score(conv, spend, self.params.target_cpa)),
            "conversions": conv,
            "spend": spend,
            "cpa": spend / conv if conv else float("inf"),
            "revenue": float(self.true_revenue[m, ep].sum()),
            "reported_conversions": reported,
            "reported_score": float(score(reported, spend, self.params.target_cpa)),
            "return": float(self.episode_return[m]),
            "max_daily_spend": float(rep.spend[m, ep].sum(axis=1).max(initial=0.0)),
            "days": min(self.day, cfg.episode_days),
            "settle_days": self.settle_days,
            "start_date": self.setup.start_date.isoformat(),
            "market_seed": self.setup.market_seed,
            "market": m,
            "params_hash": self.params.params_hash(),
        }
