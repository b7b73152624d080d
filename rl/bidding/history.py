"""Yesterday's marts as the planner reads them: `fct_campaign_daily` rows arranged into [days, campaigns] arrays in
the observation schema's campaign order (`MartHistory`), with the settings in force each day carried forward.

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
from rl.env.schema import ObservationSchema

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
    marts: pl.DataFrame, campaigns: Sequence[CampaignInfo], last_date: dt.date, days: int
) -> MartHistory:
    """Arrange `fct_campaign_daily` rows (MART_COLUMNS) into [days, C] arrays ending on `last_date`.

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
    return MartHistory(tuple(campaigns), first, budgets=budgets, bids=bids, bid_kinds=tuple(kinds), **arrays)


def _fill(values: np.ndarray) -> np.ndarray:
    """Carry each column's last known value forward, then its first known value backward."""
    out = values.copy()
    for j in range(out.shape[1]):
        col = out[:, j]
        known = np.flatnonzero(np.isfinite(col))
        idx = np.maximum.accumulate(np.where(np.isfinite(col), np.arange(len(col)), -1))
        col[:] = np.where(idx >= 0, col[np.maximum(idx, 0)], col[known[0]])
    return out
