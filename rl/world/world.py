"""The demo market: one persisted world that plays "reality" for the whole pipeline when no credentials are given.

A `DemoWorld` holds hidden true `MarketParams`, a seed, a simulated clock (`today`: the first day that has not
happened yet), the budgets and bids in force, and the append-only history of pushes. Days are simulated in order
by the market engine; a day's randomness depends only on (seed, date), so the world is deterministic for a given
(world file, seed, push history). It answers GA4 Data API and Google Ads GAQL requests with the SDKs' own types,
for any past date, and accepts pushes of budgets, bids and (search platforms) device and hour-block bid modifiers
(`rl.world.modifiers`) that take effect from `today`.

Layout of a state directory (everything a restart needs; `world.json` is written last and is the commit point):
    world.json          params hash, seed, clock, settings and modifiers in force, number of pushes applied
    params.yaml         the hidden truth (the pipeline must never read it; tests may)
    pushes.jsonl        every accepted push, in order
    state.npz           the engine's carry-over state (fatigue, rivals' adaptation) at `today`
    tables/<name>/*.parquet   simulated facts, one file per `advance` call
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws, draw_day, market_rngs
from rl.market.engine import DayResult, MarketState, resolve_day
from rl.market.params import MarketParams, load_market_params
from rl.world import facts
from rl.world import modifiers as world_modifiers
from rl.world.ads_api import answer_search_stream
from rl.world.ga4_api import answer_run_report
from rl.world.history import OperatorChange, operator_changes
from rl.world.modifiers import Modifiers
from rl.world.paths import DEFAULT_WORLD_FILE, atomic_write
from rl.world.pushes import Push

# 2: the previous operator's history (rl.world.history); 3: bid modifiers in force, pushed and recorded daily. A
# format-2 directory is upgraded when opened (its days all ran at the world file's modifiers: none could be pushed).
FORMAT_VERSION = 3
UPGRADABLE_FORMATS = (2,)
GA4_PROPERTY_ID = "123456789"
PLATFORM_CUSTOMER_IDS = {
    "google_ads": "1234567890",
    "microsoft_ads": "2345678901",
    "meta": "3456789012",
    "tiktok": "4567890123",
}
DEFAULT_HISTORY_DAYS = 730

DayHook = Callable[[DayDraws, MarketState, DayResult], None]


class WorldError(RuntimeError):
    """The world cannot do what was asked (mismatched state directory, bad push, date not yet simulated...)."""


class DemoWorld:
    """Open with `DemoWorld.open(state_dir, world_file, seed)`; `advance(n)` lets n days happen."""

    def __init__(
        self,
        state_dir: Path,
        params: MarketParams,
        seed: int,
        today: dt.date,
        settings: dict[int, tuple[float, float]],
        n_pushes: int,
        world_file: str,
        modifiers: dict[int, Modifiers] | None = None,
    ):
        self.state_dir = state_dir
        self.params = params
        self.seed = seed
        self.today = today
        self.settings = settings
        self.modifiers = modifiers if modifiers is not None else world_modifiers.in_force_at_start(params)
        self.n_pushes = n_pushes
        self.world_file = world_file
        self.market = CompiledMarket.from_params(params)
        self._frames: dict[str, pl.DataFrame] | None = None
        self._reports: dict[str, pl.DataFrame] | None = None
        self._operator: dict[dt.date, list[OperatorChange]] = {}
        for ch in operator_changes(params, seed, DEFAULT_HISTORY_DAYS):
            self._operator.setdefault(ch.date, []).append(ch)

    def operator_changes(self) -> list[OperatorChange]:
        """The previous operator's scheduled changes (`rl.world.history`): part of the world's history."""
        return [ch for day in sorted(self._operator) for ch in self._operator[day]]

    def _apply_operator(self, settings: dict[int, tuple[float, float]], date: dt.date, pushed: set[int]) -> None:
        """The previous operator's changes dated `date`, except for campaigns that have received a push by then:
        the first push to a campaign hands it over from the previous operator for good."""
        for ch in self._operator.get(date, ()):
            if ch.campaign_id not in pushed:
                settings[ch.campaign_id] = (ch.daily_budget, ch.bid)

    # -- opening and persistence ------------------------------------------------------------------------------
    @classmethod
    def open(cls, state_dir: str | Path, world_file: str | Path = DEFAULT_WORLD_FILE, seed: int = 0) -> DemoWorld:
        """Open the world persisted in `state_dir`, creating it (clock at the history start) if it is new.

        Refuses a directory created from a different world file content or seed: that would silently mix two
        realities."""
        state_dir = Path(state_dir)
        params = load_market_params(world_file)
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(state_dir / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # two processes opening a new world must not both create it
            try:
                return cls._open_locked(state_dir, params, world_file, seed)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @classmethod
    def _open_locked(cls, state_dir: Path, params: MarketParams, world_file, seed: int) -> DemoWorld:
        meta_path = state_dir / "world.json"
        if not meta_path.exists():
            settings = {c.id: (c.current_daily_budget, c.current_bid) for c in params.campaigns}
            world = cls(state_dir, params, seed, params.history_start, settings, 0, str(world_file))
            (state_dir / "params.yaml").write_text(params.to_yaml())
            (state_dir / "pushes.jsonl").touch()
            world._save_state(MarketState.initial(world.market, 1))
            world._commit()
            return world
        meta = json.loads(meta_path.read_text())
        if meta.get("format") not in (FORMAT_VERSION, *UPGRADABLE_FORMATS):
            raise WorldError(
                f"{meta_path}: unsupported world format {meta.get('format')!r} (this version reads {FORMAT_VERSION} "
                f"and upgrades {list(UPGRADABLE_FORMATS)}); delete the state directory to start the world over"
            )
        if meta["params_hash"] != params.params_hash() or meta["seed"] != seed:
            raise WorldError(
                f"{state_dir} holds a world made from params {meta['params_hash']} with seed {meta['seed']}, but "
                f"{world_file} (params {params.params_hash()}) with seed {seed} was asked for; use another state "
                "directory or delete this one"
            )
        settings = {int(k): (float(v[0]), float(v[1])) for k, v in meta["settings"].items()}
        world = cls(
            state_dir,
            params,
            seed,
            dt.date.fromisoformat(meta["today"]),
            settings,
            meta["n_pushes"],
            meta["world_file"],
            world_modifiers.from_meta(meta, params),
        )
        world._discard_uncommitted()
        if meta["format"] != FORMAT_VERSION:
            world._upgrade_format_2()
        return world

    def _upgrade_format_2(self) -> None:
        """Record the modifiers in force on every day a format-2 directory simulated, then commit as format 3."""
        frame = world_modifiers.history_frame(self.params, self.params.history_start, self.today, self.modifiers)
        if frame.height:
            folder = self.state_dir / "tables" / "modifiers"
            folder.mkdir(parents=True, exist_ok=True)
            last = self.today - dt.timedelta(days=1)
            frame.write_parquet(folder / f"{self.params.history_start.isoformat()}_{last.isoformat()}.parquet")
        self._commit()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the state directory's lock and bring this object up to date with what another process may have
        committed meanwhile (Dagster may run several assets that read the demo world at once)."""
        with open(self.state_dir / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                meta = json.loads((self.state_dir / "world.json").read_text())
                today = dt.date.fromisoformat(meta["today"])
                if today != self.today or meta["n_pushes"] != self.n_pushes:
                    self.today, self.n_pushes = today, meta["n_pushes"]
                    self.settings = {int(k): (float(v[0]), float(v[1])) for k, v in meta["settings"].items()}
                    self.modifiers = world_modifiers.from_meta(meta, self.params)
                    self._frames = self._reports = None
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _commit(self) -> None:
        meta = {
            "format": FORMAT_VERSION,
            "world_file": self.world_file,
            "params_hash": self.params.params_hash(),
            "seed": self.seed,
            "history_start": self.params.history_start.isoformat(),
            "today": self.today.isoformat(),
            "settings": {str(k): list(v) for k, v in self.settings.items()},
            "modifiers": {str(k): v.to_json() for k, v in self.modifiers.items()},
            "n_pushes": self.n_pushes,
        }
        atomic_write(self.state_dir / "world.json", json.dumps(meta, indent=2))

    def _save_state(self, state: MarketState) -> None:
        tmp = self.state_dir / "state.tmp.npz"
        np.savez(tmp, exposure=state.exposure, comp_shift=state.comp_shift, today=self.today.toordinal())
        os.replace(tmp, self.state_dir / "state.npz")

    def _load_state(self) -> MarketState:
        with np.load(self.state_dir / "state.npz") as z:
            if int(z["today"]) != self.today.toordinal():
                raise WorldError(
                    f"{self.state_dir}/state.npz is for {dt.date.fromordinal(int(z['today']))}, "
                    f"the clock says {self.today}: the state directory is inconsistent"
                )
            return MarketState(exposure=z["exposure"].copy(), comp_shift=z["comp_shift"].copy())

    def _discard_uncommitted(self) -> None:
        """Drop fact files and pushes written by an advance or push that crashed before its commit."""
        for path in (self.state_dir / "tables").glob("*/*.parquet"):
            first = dt.date.fromisoformat(path.stem.split("_")[0])
            if first >= self.today:
                path.unlink()
        lines = (self.state_dir / "pushes.jsonl").read_text().splitlines()
        if len(lines) > self.n_pushes:
            atomic_write(self.state_dir / "pushes.jsonl", "".join(line + "\n" for line in lines[: self.n_pushes]))

    # -- pushes -------------------------------------------------------------------------------------------------
    def push(
        self,
        campaign_id: int,
        daily_budget: float | None = None,
        bid: float | None = None,
        source: str = "",
        device_modifiers: list[float] | tuple[float, ...] | None = None,
        hour_modifiers: list[float] | tuple[float, ...] | None = None,
    ) -> Push:
        """Change a campaign's daily budget, bid, device modifiers (mobile, desktop, tablet) and/or hour-block
        modifiers (one per `hour_blocks` block) from `today` (the next day to be simulated) on. Modifiers must be
        within the platform's range; a platform without modifiers (social) refuses them."""
        with self._locked():
            if campaign_id not in self.settings:
                raise WorldError(f"push for unknown campaign id {campaign_id} (known: {sorted(self.settings)})")
            for name, value in (("daily_budget", daily_budget), ("bid", bid)):
                if value is not None and (not math.isfinite(value) or value < 0):
                    raise WorldError(
                        f"push for campaign {campaign_id}: {name} must be a finite number >= 0, got {value}"
                    )
            try:
                device = world_modifiers.checked(self.params, campaign_id, "device_modifiers", device_modifiers, 3)
                hours = world_modifiers.checked(
                    self.params, campaign_id, "hour_modifiers", hour_modifiers, self.params.hour_blocks
                )
            except ValueError as e:
                raise WorldError(f"push refused: {e}") from None
            if daily_budget is None and bid is None and device is None and hours is None:
                raise WorldError(f"push for campaign {campaign_id} changes nothing (no budget, bid or modifier)")
            p = Push(self.n_pushes, self.today, campaign_id, daily_budget, bid, source, device, hours)
            with open(self.state_dir / "pushes.jsonl", "a") as f:
                f.write(p.to_json() + "\n")
            p.apply(self.settings, self.modifiers)
            self.n_pushes += 1
            self._commit()
            return p

    def pushes(self) -> list[Push]:
        lines = (self.state_dir / "pushes.jsonl").read_text().splitlines()[: self.n_pushes]
        return [Push.from_json(line) for line in lines]

    # -- time ---------------------------------------------------------------------------------------------------
    def advance(self, days: int = 1, on_day: DayHook | None = None, progress: bool = False) -> None:
        """Let `days` days happen under the settings in force, append their facts, move the clock."""
        with self._locked():
            self._advance(days, on_day, progress)

    def _advance(self, days: int, on_day: DayHook | None, progress: bool) -> None:
        if days < 0:
            raise WorldError(f"cannot advance by {days} days")
        if days == 0:
            return
        state = self._load_state()
        ids = self.market.campaign_ids.tolist()
        pushed = {p.campaign_id for p in self.pushes()}  # every push is effective by `today`
        chunks: dict[str, list[pl.DataFrame]] = {}
        first = self.today
        dates = [first + dt.timedelta(days=i) for i in range(days)]
        iterator = dates
        if progress:
            iterator = tqdm(dates, desc="simulating days", unit="day")
        for date in iterator:
            self._apply_operator(self.settings, date, pushed)
            budgets = np.array([[self.settings[i][0] for i in ids]])
            bids = np.array([[self.settings[i][1] for i in ids]])
            bid_mult = world_modifiers.bid_multipliers(self.params, self.modifiers)
            draws = draw_day(self.market, date, market_rngs(self.seed, 1, date))
            result, new_state = resolve_day(self.market, draws, state, budgets, bids, bid_mult)
            if on_day is not None:
                on_day(draws, state, result)
            organic_rng = np.random.default_rng([self.seed, date.toordinal(), 0x5E55])
            for name, frame in facts.day_frames(self.market, result, organic_rng).items():
                chunks.setdefault(name, []).append(frame)
            chunks.setdefault("modifiers", []).append(world_modifiers.day_frame(self.params, date, self.modifiers))
            chunks.setdefault("rival_shifts", []).append(
                facts.rival_shift_frame(self.market, date, state.comp_shift[0])
            )
            state = new_state
        last = dates[-1]
        for name, frames in chunks.items():
            folder = self.state_dir / "tables" / name
            folder.mkdir(parents=True, exist_ok=True)
            pl.concat(frames).write_parquet(folder / f"{first.isoformat()}_{last.isoformat()}.parquet")
        self.today = last + dt.timedelta(days=1)
        self._save_state(state)
        self._commit()
        self._frames = self._reports = None

    def replay(self, on_day: DayHook, start: dt.date | None = None, until: dt.date | None = None) -> None:
        """Re-simulate history in memory from the history start, applying every push at its effective date, and
        call `on_day(draws, state_before, result)` for each day in [start, until) (default: all of history).
        Nothing is written. Because the world is deterministic, the results equal what `advance` recorded."""
        until = self.today if until is None else min(until, self.today)
        start = self.params.history_start if start is None else start
        ids = self.market.campaign_ids.tolist()
        settings = {c.id: (c.current_daily_budget, c.current_bid) for c in self.params.campaigns}
        modifiers = world_modifiers.in_force_at_start(self.params)
        pushes = self.pushes()
        state = MarketState.initial(self.market, 1)
        date = self.params.history_start
        handed_over: set[int] = set()
        while date < until:
            handed_over |= {p.campaign_id for p in pushes if p.effective_date <= date}
            self._apply_operator(settings, date, handed_over)
            while pushes and pushes[0].effective_date <= date:
                pushes.pop(0).apply(settings, modifiers)
            budgets = np.array([[settings[i][0] for i in ids]])
            bids = np.array([[settings[i][1] for i in ids]])
            bid_mult = world_modifiers.bid_multipliers(self.params, modifiers)
            draws = draw_day(self.market, date, market_rngs(self.seed, 1, date))
            result, new_state = resolve_day(self.market, draws, state, budgets, bids, bid_mult)
            if date >= start:
                on_day(draws, state, result)
            state = new_state
            date += dt.timedelta(days=1)

    def advance_to(self, date: dt.date, on_day: DayHook | None = None, progress: bool = False) -> None:
        """Simulate up to (not including) `date`; a date already past is a no-op. In the demo, time passes as far
        as someone asks about: a report on day D needs day D to have happened."""
        with self._locked():
            self._advance(max(0, (date - self.today).days), on_day, progress)

    # -- facts and reports --------------------------------------------------------------------------------------
    def frames(self) -> dict[str, pl.DataFrame]:
        """All simulated facts so far (hidden ones included: `conversions` has the segment and future dates)."""
        if self._frames is None:
            self._frames = {}
            for name, schema in {**facts.SCHEMAS, "modifiers": world_modifiers.SCHEMA}.items():
                files = sorted((self.state_dir / "tables" / name).glob("*.parquet"))
                self._frames[name] = pl.read_parquet(files) if files else pl.DataFrame(schema=schema)
        return self._frames

    def report_tables(self) -> dict[str, pl.DataFrame]:
        """The tables the GA4 and ads responders read (they apply the `today` cut-offs themselves). Built once per
        state of the world: every report request of a run reads them (dropped when the clock moves or a push lands)."""
        if self._reports is None:
            self._reports = facts.report_tables(self.market, self.frames())
            self._reports["modifiers"] = self.frames()["modifiers"]
        return self._reports

    def run_report(self, request):
        """Answer a GA4 Data API `RunReportRequest` with a `RunReportResponse`, as of `today`."""
        t = self.report_tables()
        return answer_run_report(request, t["sessions"], t["key_events"], self.today, GA4_PROPERTY_ID)

    def search_stream(self, customer_id: str, query: str):
        """Answer a GAQL query for the ad account `customer_id` with `SearchGoogleAdsStreamResponse` batches."""
        digits = str(customer_id).replace("-", "")
        platform = {v: k for k, v in PLATFORM_CUSTOMER_IDS.items()}.get(digits)
        if platform is None:
            raise WorldError(f"unknown customer id {customer_id!r} (demo accounts: {PLATFORM_CUSTOMER_IDS})")
        t = self.report_tables()
        campaigns = {c.id: c.name for c in self.params.campaigns if c.platform == platform}
        return answer_search_stream(
            query,
            t["ads"],
            t["ad_conversions"],
            self.today,
            platform,
            campaigns,
            customer_id=digits,
            settings=t["settings"],
            criteria={
                "history": t["modifiers"],
                "current": world_modifiers.day_frame(self.params, self.today, self.modifiers),
                "hour_blocks": self.params.hour_blocks,
            },
        )
