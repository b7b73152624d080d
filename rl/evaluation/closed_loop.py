"""What a closed-loop run bought on its days, read from the demo world's facts: the spend as the platforms reported
it and the eventual conversions of each day's clicks (hidden truth: evaluation only, the pipeline never reads it).
`gaelp demo` and `benchmarks.closed_loop` compare the promoted policy, the best baseline and the static operator by it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from rl.world.world import DemoWorld


@dataclass
class Outcome:
    """What a run bought on the loop days (from the world's facts: spend as reported, eventual conversions)."""

    name: str
    spend: dict[str, float] = field(default_factory=dict)
    conversions: dict[str, float] = field(default_factory=dict)

    @property
    def total_spend(self) -> float:
        return sum(self.spend.values())

    @property
    def total_conversions(self) -> float:
        return sum(self.conversions.values())

    @property
    def cpa(self) -> float:
        return self.total_spend / self.total_conversions if self.total_conversions else float("inf")

    @property
    def max_daily_spend(self) -> float:
        return max(self.spend.values(), default=0.0)


def outcome(name: str, world_dir: Path, world_file: str, seed: int, keys: list[str]) -> Outcome:
    """Spend and eventual conversions per loop day from the world's facts (hidden truth: evaluation only). The
    world is advanced to the day after the loop first if it is behind (the static operator's copy)."""
    world = DemoWorld.open(world_dir, world_file, seed)
    world.advance_to(dt.date.fromisoformat(keys[-1]) + dt.timedelta(days=1))
    frames = world.frames()
    first, last = dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])
    spend = (
        frames["ads"]
        .filter(pl.col("date").is_between(first, last))
        .group_by("date")
        .agg((pl.col("cost_micros").sum() / 1e6).alias("spend"))
    )
    conv = (
        frames["conversions"]
        .filter(pl.col("click_date").is_between(first, last))
        .group_by("click_date")
        .agg(pl.len().alias("conversions"))
    )
    out = Outcome(name, {k: 0.0 for k in keys}, {k: 0.0 for k in keys})
    for d, s in spend.iter_rows():
        out.spend[d.isoformat()] = float(s)
    for d, c in conv.iter_rows():
        out.conversions[d.isoformat()] = float(c)
    return out
