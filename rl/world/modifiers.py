"""The device and hour-block bid modifiers of the demo market's campaigns: what may be pushed, what is in force, and
the daily fact that records them.

A campaign on a search platform (Google Ads, Microsoft Advertising) runs with a device modifier per device (mobile,
desktop, tablet) and an hour-block modifier per block of the day (`MarketParams.hour_blocks`), each within the
platform's range (`Platform.device_modifier_range` / `hour_modifier_range`); the bid of an auction is the base bid
times the two (`rl.market.modifiers`). A social platform has no such controls: its campaigns always run at 1, and a
push of modifiers to one is refused.

The world keeps, per campaign, `Modifiers(device, hours)` in force; the daily fact table `modifiers` has one row per
date × campaign with modifiers × dimension ("device" / "hour") × index (device or block number): what the platforms'
settings report (`FROM campaign_criterion`) reads.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from rl.market.modifiers import cell_multipliers, modifiers_in_force
from rl.market.params import MarketParams

SCHEMA = {
    "date": pl.Date,
    "campaign_id": pl.Int64,
    "dimension": pl.Utf8,  # "device" or "hour"
    "index": pl.Int8,  # device (mobile, desktop, tablet) or hour block number
    "bid_modifier": pl.Float64,
}


class Modifiers(NamedTuple):
    """A campaign's device modifiers (mobile, desktop, tablet) and hour-block modifiers, as multipliers."""

    device: tuple[float, ...]
    hours: tuple[float, ...]

    def to_json(self) -> dict:
        return {"device": list(self.device), "hours": list(self.hours)}

    @classmethod
    def from_json(cls, data: dict) -> Modifiers:
        return cls(tuple(float(v) for v in data["device"]), tuple(float(v) for v in data["hours"]))


def in_force_at_start(params: MarketParams) -> dict[int, Modifiers]:
    """The modifiers the world file puts in force (1 everywhere it says nothing, and always on social platforms)."""
    device, hours = modifiers_in_force(params)
    return {
        c.id: Modifiers(tuple(device[j].tolist()), tuple(hours[j].tolist())) for j, c in enumerate(params.campaigns)
    }


def has_modifiers(params: MarketParams, campaign_id: int) -> bool:
    return params.platform(params.campaign(campaign_id).platform).has_modifiers


def checked(
    params: MarketParams, campaign_id: int, what: str, values: Sequence[float] | None, length: int
) -> tuple[float, ...] | None:
    """`values` as a tuple of floats after checking them against the campaign's platform; raises ValueError naming
    the campaign, the modifier kind and what was wrong."""
    if values is None:
        return None
    campaign = params.campaign(campaign_id)
    platform = params.platform(campaign.platform)
    if not platform.has_modifiers:
        raise ValueError(
            f"campaign {campaign_id} is on {campaign.platform}, which has no device or hour-block bid modifiers "
            f"({what} cannot be set)"
        )
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"campaign {campaign_id}: {what} must be numbers, got {values!r}") from None
    if len(out) != length:
        raise ValueError(f"campaign {campaign_id}: {what} needs {length} values, got {len(out)}")
    low, high = platform.device_modifier_range if what == "device_modifiers" else platform.hour_modifier_range
    bad = [v for v in out if not math.isfinite(v) or not low <= v <= high]
    if bad:
        raise ValueError(
            f"campaign {campaign_id}: {what} {list(out)} outside {campaign.platform}'s range [{low}, {high}]"
        )
    return out


def bid_multipliers(params: MarketParams, modifiers: dict[int, Modifiers]) -> np.ndarray:
    """[1, C, 24, D] bid multiplier of every (hour, device) cell for the engine, in the market's campaign order."""
    device = np.array([modifiers[c.id].device for c in params.campaigns], dtype=float)
    hours = np.array([modifiers[c.id].hours for c in params.campaigns], dtype=float)
    return cell_multipliers(device, hours)[None]


def day_frame(params: MarketParams, date: dt.date, modifiers: dict[int, Modifiers]) -> pl.DataFrame:
    """The modifiers in force on `date`, one row per campaign with modifiers × dimension × index."""
    rows = []
    for c in params.campaigns:
        if not params.platform(c.platform).has_modifiers:
            continue
        m = modifiers[c.id]
        rows += [(date, c.id, "device", i, v) for i, v in enumerate(m.device)]
        rows += [(date, c.id, "hour", b, v) for b, v in enumerate(m.hours)]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def history_frame(
    params: MarketParams, first: dt.date, until: dt.date, modifiers: dict[int, Modifiers]
) -> pl.DataFrame:
    """The same modifiers in force on every day of [first, until) (a state directory written before the world
    recorded modifiers: every day of it ran at the world file's modifiers, the only ones that could be in force)."""
    days = [first + dt.timedelta(days=i) for i in range((until - first).days)]
    frames = [day_frame(params, d, modifiers) for d in days]
    return pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)


def from_meta(meta: dict, params: MarketParams) -> dict[int, Modifiers]:
    """The modifiers in force recorded in world.json (format 2 recorded none: the world file's were in force)."""
    out = in_force_at_start(params)
    for k, v in (meta.get("modifiers") or {}).items():
        out[int(k)] = Modifiers.from_json(v)
    return out
