"""Speed of the batched market engine against the per-opportunity reference loop, on the default world.

    .venv/bin/python -m benchmarks.engine [--date 2025-06-02] [--seed 7] [--markets 8] [--days 3] [--repeats 3]

An "auction" is one ad opportunity. Both sides are timed including `draw_day` (both need the day's draws):
  - engine: M markets for a few consecutive days (state carried over), best of `--repeats` runs;
  - reference: 1 market × 1 day, scaled down (via `volume_scale`) if a pilot predicts it would take over ~20 s;
    best of `--repeats` too when that stays within ~20 s.
The reference-timed day is also resolved by the engine, and the two must agree on total clicks and cost.
Human-readable lines first; the LAST line is one JSON object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded numpy, set pre-import
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from rl.market.compiled import CompiledMarket  # noqa: E402
from rl.market.draws import draw_day, market_rngs  # noqa: E402
from rl.market.engine import MarketState, resolve_day  # noqa: E402
from rl.market.params import load_market_params  # noqa: E402
from rl.market.reference import reference_resolve_day  # noqa: E402
from rl.world.paths import DEFAULT_WORLD_FILE  # noqa: E402

REFERENCE_MAX_S = 20.0  # scale the reference day down if it would take longer than this
PILOT_SCALE = 0.05


def current_settings(cm: CompiledMarket, n_markets: int) -> tuple[np.ndarray, np.ndarray]:
    budgets = np.array([c.current_daily_budget for c in cm.params.campaigns], dtype=float)
    bids = np.array([c.current_bid for c in cm.params.campaigns], dtype=float)
    return np.tile(budgets, (n_markets, 1)), np.tile(bids, (n_markets, 1))


def time_engine(cm: CompiledMarket, date: dt.date, seed: int, n_markets: int, n_days: int) -> tuple[float, int]:
    """Seconds and opportunities for `n_days` consecutive days of `n_markets` markets, draws included."""
    budgets, bids = current_settings(cm, n_markets)
    state = MarketState.initial(cm, n_markets)
    n_opps = 0
    start = time.perf_counter()
    for t in range(n_days):
        day = date + dt.timedelta(days=t)
        draws = draw_day(cm, day, market_rngs(seed, n_markets, day))
        _, state = resolve_day(cm, draws, state, budgets, bids)
        n_opps += draws.n_opportunities
    return time.perf_counter() - start, n_opps


def time_reference(cm: CompiledMarket, date: dt.date, seed: int, scale: float):
    """Seconds, draws and result of one market-day through the reference loop (draws included)."""
    budgets, bids = current_settings(cm, 1)
    start = time.perf_counter()
    draws = draw_day(cm, date, market_rngs(seed, 1, date), volume_scale=np.array([scale]))
    result, _ = reference_resolve_day(cm, draws, MarketState.initial(cm, 1), budgets, bids)
    return time.perf_counter() - start, draws, result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2025, 6, 2))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--markets", type=int, default=8)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    cm = CompiledMarket.from_params(load_market_params(DEFAULT_WORLD_FILE))
    expected = float(cm.expected_opportunities(args.date).sum())
    print(
        f"world {cm.params.name}: {cm.n_campaigns} campaigns, {cm.n_competitors} rivals, "
        f"~{expected:,.0f} opportunities per market-day on {args.date}"
    )

    runs = [time_engine(cm, args.date, args.seed, args.markets, args.days) for _ in range(max(args.repeats, 1))]
    engine_s, engine_opps = min(runs)
    engine_rate = engine_opps / engine_s
    print(
        f"engine:    {args.markets} markets x {args.days} days = {engine_opps:,} auctions, best of {len(runs)}: "
        f"{engine_s:.3f} s -> {engine_rate:,.0f} auctions/s  (all runs: "
        + ", ".join(f"{s:.3f}" for s, _ in runs)
        + " s)"
    )

    pilot_s, pilot_draws, _ = time_reference(cm, args.date, args.seed, PILOT_SCALE)
    predicted = pilot_s / max(pilot_draws.n_opportunities, 1) * expected
    scale = 1.0 if predicted <= REFERENCE_MAX_S else REFERENCE_MAX_S * 0.75 / predicted
    ref_runs = [time_reference(cm, args.date, args.seed, scale)]
    while len(ref_runs) < args.repeats and ref_runs[0][0] * args.repeats <= REFERENCE_MAX_S:
        ref_runs.append(time_reference(cm, args.date, args.seed, scale))  # same day again: best of, if cheap
    ref_s, draws, ref = min(ref_runs, key=lambda run: run[0])
    ref_rate = draws.n_opportunities / ref_s
    print(
        f"reference: 1 market x 1 day (volume x{scale:.3g}) = {draws.n_opportunities:,} auctions, best of "
        f"{len(ref_runs)}: {ref_s:.3f} s -> {ref_rate:,.0f} auctions/s"
    )

    budgets, bids = current_settings(cm, 1)
    eng, _ = resolve_day(cm, draws, MarketState.initial(cm, 1), budgets, bids)
    clicks = (float(eng.clicks.sum()), float(ref.clicks.sum()))
    cost = (float(eng.cost.sum()), float(ref.cost.sum()))
    print(
        f"agreement on the reference day: clicks engine {clicks[0]:.0f} / reference {clicks[1]:.0f}, "
        f"cost engine {cost[0]:.6f} / reference {cost[1]:.6f}"
    )
    if clicks[0] != clicks[1] or not np.isclose(cost[0], cost[1], rtol=1e-9, atol=1e-9):
        raise SystemExit(f"MISMATCH: engine and reference disagree on {args.date} (clicks {clicks}, cost {cost})")

    ratio = engine_rate / ref_rate
    print(f"engine is {ratio:.1f}x the reference loop")
    out = {
        "benchmark": "engine",
        "engine_auctions_per_s": round(engine_rate),
        "reference_auctions_per_s": round(ref_rate),
        "ratio": round(ratio, 2),
        "engine_markets": args.markets,
        "engine_days": args.days,
        "opportunities_per_market_day": round(engine_opps / (args.markets * args.days)),
        "reference_opportunities": draws.n_opportunities,
        "reference_volume_scale": round(scale, 4),
        "date": args.date.isoformat(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
