"""Yesterday's marts as the planner reads them: `fct_campaign_daily` rows arranged into [days, campaigns] arrays in
the observation schema's campaign order (`MartHistory`), with the settings in force each day carried forward; the
device and hour-block breakdowns (`fct_campaign_device_daily`, `fct_campaign_hourly`) and the bid modifiers in force
(`fct_campaign_modifiers_daily`) arranged the same way, keyed as the observation keys them
(`rl.env.schema.breakdown_keys`: mobile, desktop, tablet, then the hour blocks).

Pure Python (no Dagster, no DuckDB): the asset reads the marts and hands them over as a polars frame.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from rl.bidding.kill_switch import DayFigures
from rl.bidding.plan import SEARCH_PLATFORMS, PlanError
from rl.env.schema import ObservationSchema, breakdown_keys
from rl.market.modifiers import block_of_hour
from rl.market.params import DEVICES

MART_COLUMNS = (
    "date",
    "platform",
    "campaign_id",
    "spend",
    "impressions",
    "clicks",
    "conversions",
    "key_events",
    "impression_share",
    "daily_budget",
    "bid",
    "bid_kind",
)
DEVICE_COLUMNS = ("date", "platform", "campaign_id", "device", "spend", "clicks", "conversions")
HOURLY_COLUMNS = ("date", "hour", "platform", "campaign_id", "spend", "clicks", "conversions")
MODIFIER_COLUMNS = ("date", "platform", "campaign_id", "modifier_key", "bid_modifier")
BREAKDOWN_METRICS = ("spend", "clicks", "conversions")  # the order of MartHistory.breakdowns' first axis


@dataclass(frozen=True)
class CampaignInfo:
    platform: str
    campaign_id: int
    campaign_name: str
    status: str


@dataclass(frozen=True)
class MartHistory:
    """[H, C] daily figures per campaign (schema order) for first_date .. last_date, and each campaign's bid kind."""

    campaigns: tuple[CampaignInfo, ...]
    first_date: dt.date
    spend: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    opportunities: np.ndarray
    conversions: np.ndarray
    key_events: np.ndarray
    budgets: np.ndarray
    bids: np.ndarray
    bid_kinds: tuple[str | None, ...]
    # [3, H, C, K] spend, clicks and conversions (by click date) per device then hour block, and [H, C, K] the
    # device and hour-block modifiers in force; None when the marts do not break delivery down
    breakdowns: np.ndarray | None = None
    modifiers: np.ndarray | None = None

    @property
    def n_days(self) -> int:
        return self.spend.shape[0]

    @property
    def last_date(self) -> dt.date:
        return self.first_date + dt.timedelta(days=self.n_days - 1)

    @property
    def current_budgets(self) -> np.ndarray:
        return self.budgets[-1]

    @property
    def current_bids(self) -> np.ndarray:
        return self.bids[-1]

    def account_days(self) -> list[DayFigures]:
        """The account's daily spend and GA4 key events (by conversion date), for the kill switch."""
        return [
            DayFigures(self.first_date + dt.timedelta(days=i), float(s.sum()), float(k.sum()))
            for i, (s, k) in enumerate(zip(self.spend, self.key_events, strict=True))
        ]


def campaigns_in_schema_order(schema: ObservationSchema, dim_campaign: pl.DataFrame) -> tuple[CampaignInfo, ...]:
    """dim_campaign rows (platform, campaign_id, campaign_name, status) in the schema's order; a mismatch between
    the registry the policy knows and the warehouse's is an error naming the campaigns."""
    rows = {
        (r["platform"], int(r["campaign_id"])): r
        for r in dim_campaign.select("platform", "campaign_id", "campaign_name", "status").to_dicts()
    }
    expected = set(zip(schema.platforms, schema.campaign_ids, strict=True))
    missing, unknown = sorted(expected - set(rows)), sorted(set(rows) - expected)
    if missing or unknown:
        raise PlanError(
            f"dim_campaign and the observation schema disagree: missing from dim_campaign {missing}, "
            f"unknown to the schema {unknown}"
        )
    return tuple(
        CampaignInfo(p, c, str(rows[(p, c)]["campaign_name"]), str(rows[(p, c)]["status"]))
        for p, c in zip(schema.platforms, schema.campaign_ids, strict=True)
    )


def history_from_marts(
    marts: pl.DataFrame,
    campaigns: Sequence[CampaignInfo],
    last_date: dt.date,
    days: int,
    *,
    devices: pl.DataFrame | None = None,
    hourly: pl.DataFrame | None = None,
    modifiers: pl.DataFrame | None = None,
    hour_blocks: int = 6,
) -> MartHistory:
    """Arrange `fct_campaign_daily` rows (MART_COLUMNS) into [days, C] arrays ending on `last_date`, and, when the
    device (DEVICE_COLUMNS), hourly (HOURLY_COLUMNS) and modifier (MODIFIER_COLUMNS) marts are given, the breakdowns
    and the modifiers in force (`breakdowns_from_marts`, `modifiers_from_marts`).

    Missing campaign-days are days without delivery (0). Settings are carried forward over days without a
    settings row; the settings on `last_date` must be known for every campaign (what is in force now)."""
    missing_cols = [c for c in MART_COLUMNS if c not in marts.columns]
    if missing_cols:
        raise PlanError(f"fct_campaign_daily rows lack columns {missing_cols}")
    first = last_date - dt.timedelta(days=days - 1)
    index = {(c.platform, c.campaign_id): j for j, c in enumerate(campaigns)}
    shape = (days, len(campaigns))
    names = ("spend", "impressions", "clicks", "opportunities", "conversions", "key_events")
    arrays = {k: np.zeros(shape) for k in names}
    budgets, bids = np.full(shape, np.nan), np.full(shape, np.nan)
    kinds: list[str | None] = [None] * len(campaigns)
    frame = marts.filter((pl.col("date") >= first) & (pl.col("date") <= last_date))
    for r in frame.iter_rows(named=True):
        key = (r["platform"], int(r["campaign_id"]))
        if key not in index:
            raise PlanError(
                f"fct_campaign_daily has campaign {key[0]}/{key[1]} on {r['date']}, unknown to the registry"
            )
        i, j = (r["date"] - first).days, index[key]
        for name in ("spend", "impressions", "clicks", "conversions", "key_events"):
            v = r[name]
            if v is not None:
                if not math.isfinite(float(v)) or float(v) < 0:
                    raise PlanError(f"fct_campaign_daily {key[0]}/{key[1]} on {r['date']}: {name} is {v!r}")
                arrays[name][i, j] += float(v)
        share = r["impression_share"]
        if key[0] in SEARCH_PLATFORMS and share is not None and share > 0:
            arrays["opportunities"][i, j] += float(r["impressions"] or 0) / float(share)
        if r["daily_budget"] is not None:
            budgets[i, j] = float(r["daily_budget"])
        if r["bid"] is not None:
            bids[i, j] = float(r["bid"])
        if r["bid_kind"] is not None:
            kinds[j] = r["bid_kind"]
    for j, c in enumerate(campaigns):
        if not (np.isfinite(budgets[-1, j]) and np.isfinite(bids[-1, j])):
            raise PlanError(
                f"fct_campaign_daily has no daily_budget/bid for {c.platform}/{c.campaign_id} on {last_date}: the "
                "settings in force must be known before planning (ingest ad_settings for that day)"
            )
    budgets, bids = _fill(budgets), _fill(bids)
    extra = {}
    if devices is not None or hourly is not None or modifiers is not None:
        if devices is None or hourly is None or modifiers is None:
            raise PlanError("the device, hourly and modifier marts come together (give all three or none)")
        extra["breakdowns"] = breakdowns_from_marts(devices, hourly, campaigns, first, days, hour_blocks)
        extra["modifiers"] = modifiers_from_marts(modifiers, campaigns, last_date, days, hour_blocks)
    return MartHistory(tuple(campaigns), first, budgets=budgets, bids=bids, bid_kinds=tuple(kinds), **arrays, **extra)


def _check_columns(frame: pl.DataFrame, columns: Sequence[str], mart: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PlanError(f"{mart} rows lack columns {missing}")


def _cells(frame: pl.DataFrame, campaigns: Sequence[CampaignInfo], first: dt.date, days: int, mart: str) -> tuple:
    """(day index, campaign index) of every row of `frame` inside the window; a campaign unknown to the registry
    is an error naming the mart."""
    index = {(c.platform, c.campaign_id): j for j, c in enumerate(campaigns)}
    frame = frame.filter((pl.col("date") >= first) & (pl.col("date") < first + dt.timedelta(days=days)))
    keys = list(zip(frame["platform"].to_list(), frame["campaign_id"].cast(pl.Int64).to_list(), strict=True))
    unknown = sorted(set(keys) - set(index))
    if unknown:
        raise PlanError(f"{mart} has campaigns {unknown} unknown to the registry")
    day = np.array([(d - first).days for d in frame["date"].to_list()], dtype=np.int64)
    return frame, day, np.array([index[k] for k in keys], dtype=np.int64)


def breakdowns_from_marts(
    devices: pl.DataFrame,
    hourly: pl.DataFrame,
    campaigns: Sequence[CampaignInfo],
    first: dt.date,
    days: int,
    hour_blocks: int,
) -> np.ndarray:
    """[3, days, C, K] spend, clicks and conversions (by click date, as reported so far) per device (mobile,
    desktop, tablet: `fct_campaign_device_daily`) then per hour block (`fct_campaign_hourly`, its hours summed into
    blocks). Devices the simulator does not model (connected_tv, other) are left out."""
    _check_columns(devices, DEVICE_COLUMNS, "fct_campaign_device_daily")
    _check_columns(hourly, HOURLY_COLUMNS, "fct_campaign_hourly")
    n_d = len(DEVICES)
    out = np.zeros((len(BREAKDOWN_METRICS), days, len(campaigns), n_d + hour_blocks))
    devices = devices.filter(pl.col("device").is_in(list(DEVICES)))
    frame, day, camp = _cells(devices, campaigns, first, days, "fct_campaign_device_daily")
    key = np.array([DEVICES.index(d) for d in frame["device"].to_list()], dtype=np.int64)
    for m, name in enumerate(BREAKDOWN_METRICS):
        np.add.at(out[m], (day, camp, key), _finite(frame[name], name, "fct_campaign_device_daily"))
    frame, day, camp = _cells(hourly, campaigns, first, days, "fct_campaign_hourly")
    key = n_d + block_of_hour(hour_blocks)[frame["hour"].cast(pl.Int64).to_numpy()]
    for m, name in enumerate(BREAKDOWN_METRICS):
        np.add.at(out[m], (day, camp, key), _finite(frame[name], name, "fct_campaign_hourly"))
    return out


def _finite(values: pl.Series, name: str, mart: str) -> np.ndarray:
    out = values.cast(pl.Float64).fill_null(0.0).to_numpy()
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise PlanError(f"{mart}: {name} has values that are negative or not finite")
    return out


def modifiers_from_marts(
    modifiers: pl.DataFrame, campaigns: Sequence[CampaignInfo], last_date: dt.date, days: int, hour_blocks: int
) -> np.ndarray:
    """[days, C, K] the device and hour-block modifiers in force each day (`fct_campaign_modifiers_daily`), carried
    forward over days without rows. Campaigns on platforms without modifiers (social) are 1 everywhere; a search
    campaign's modifiers must be known by `last_date` (what is in force now), and a block the platform's ad
    schedules do not fold into (null in the mart) is an error."""
    _check_columns(modifiers, MODIFIER_COLUMNS, "fct_campaign_modifiers_daily")
    keys = breakdown_keys(hour_blocks)
    first = last_date - dt.timedelta(days=days - 1)
    out = np.full((days, len(campaigns), len(keys)), np.nan)
    frame, day, camp = _cells(modifiers, campaigns, first, days, "fct_campaign_modifiers_daily")
    unknown = sorted(set(frame["modifier_key"].to_list()) - set(keys))
    if unknown:
        raise PlanError(
            f"fct_campaign_modifiers_daily has modifier keys {unknown}, not those of {hour_blocks} hour blocks "
            f"{list(keys)}: the warehouse's var hour_blocks and the account's must agree"
        )
    unfolded = frame.filter(pl.col("bid_modifier").is_null())
    if unfolded.height:
        r = unfolded.row(0, named=True)
        raise PlanError(
            f"fct_campaign_modifiers_daily: {r['platform']}/{r['campaign_id']} on {r['date']} has no single "
            f"{r['modifier_key']} modifier (its ad schedules disagree across weekdays or hours of the block)"
        )
    key = np.array([keys.index(k) for k in frame["modifier_key"].to_list()], dtype=np.int64)
    out[day, camp, key] = frame["bid_modifier"].cast(pl.Float64).to_numpy()
    for j, c in enumerate(campaigns):
        col = out[:, j]
        if c.platform not in SEARCH_PLATFORMS:
            col[:] = 1.0
            continue
        if not np.isfinite(col).any(axis=1).any():
            raise PlanError(
                f"fct_campaign_modifiers_daily has no modifiers for {c.platform}/{c.campaign_id} in {first} .. "
                f"{last_date}: the modifiers in force must be known before planning (ingest ad_modifiers)"
            )
        out[:, j] = _fill(col)
    return out


def _fill(values: np.ndarray) -> np.ndarray:
    """Carry each column's last known value forward, then its first known value backward (a column never known
    stays NaN)."""
    out = values.copy()
    for j in range(out.shape[1]):
        col = out[:, j]
        known = np.flatnonzero(np.isfinite(col))
        if len(known) == 0:
            continue
        idx = np.maximum.accumulate(np.where(np.isfinite(col), np.arange(len(col)), -1))
        col[:] = np.where(idx >= 0, col[np.maximum(idx, 0)], col[known[0]])
    return out
