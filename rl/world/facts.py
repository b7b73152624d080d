"""Turn one simulated day into the fact tables the demo world keeps, and those into what the report APIs read.

Facts are what *happened* (including the hidden segment and conversions dated in the future); the report tables
are what GA4 and the ad platforms know, still to be cut at the world's `today` by the responders.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rl.market.compiled import CompiledMarket
from rl.market.engine import N_DEVICES, DayResult
from rl.market.params import DEVICES, HOURS

USERS_PER_SESSION = 0.88  # share of sessions that are a distinct user that hour (GA4 totalUsers)
NEW_USER_SHARE = 0.72  # share of those users new to the site (GA4 newUsers)
ORGANIC_SPLIT = (
    ("Organic Search", "google / organic", "(organic)", 0.62),
    ("Direct", "(direct) / (none)", "(direct)", 0.38),
)
ORGANIC_VALUE_MEDIAN, ORGANIC_VALUE_SIGMA = 85.0, 0.4

_DIMS = {
    "channel_group": pl.Utf8,
    "source_medium": pl.Utf8,
    "campaign_name": pl.Utf8,
    "campaign_id": pl.Int64,
    "device": pl.Utf8,
}
SCHEMAS: dict[str, dict] = {
    "ads": {
        "date": pl.Date,
        "hour": pl.Int8,
        "device": pl.Utf8,
        "platform": pl.Utf8,
        "campaign_id": pl.Int64,
        "campaign_name": pl.Utf8,
        "impressions": pl.Int64,
        "clicks": pl.Int64,
        "cost_micros": pl.Int64,
        "eligible_impressions": pl.Int64,
        "sessions": pl.Int64,
    },
    "sessions": {
        "date": pl.Date,
        "hour": pl.Int8,
        **_DIMS,
        "sessions": pl.Int64,
        "total_users": pl.Int64,
        "new_users": pl.Int64,
    },
    "conversions": {
        "click_date": pl.Date,
        "click_hour": pl.Int8,
        "device": pl.Utf8,
        "platform": pl.Utf8,
        "campaign_id": pl.Int64,
        "conv_date": pl.Date,
        "conv_hour": pl.Int8,
        "lag_days": pl.Int64,
        "value": pl.Float64,
        "segment": pl.Utf8,
    },
    "organic_key_events": {"date": pl.Date, "hour": pl.Int8, **_DIMS, "key_events": pl.Int64, "revenue": pl.Float64},
    "settings": {"date": pl.Date, "campaign_id": pl.Int64, "daily_budget": pl.Float64, "bid": pl.Float64},
    # hidden: how far each rival's bids had moved from its file's median (adaptation to us, drift) on the day
    "rival_shifts": {"date": pl.Date, "competitor": pl.Int64, "name": pl.Utf8, "log_shift": pl.Float64},
}


# What the GA4 and ads responders read (`report_tables`): the facts minus everything hidden.
REPORT_SCHEMAS: dict[str, dict] = {
    "sessions": SCHEMAS["sessions"],
    "key_events": SCHEMAS["organic_key_events"],
    "ads": {k: v for k, v in SCHEMAS["ads"].items() if k != "sessions"},
    "ad_conversions": {k: v for k, v in SCHEMAS["conversions"].items() if k not in ("conv_hour", "segment")},
    "settings": SCHEMAS["settings"],
}


def _campaign_dims(cm: CompiledMarket) -> pl.DataFrame:
    plat = {p.name: p for p in cm.params.platforms}
    return pl.DataFrame(
        {
            "campaign_id": [c.id for c in cm.params.campaigns],
            "campaign_name": [c.name for c in cm.params.campaigns],
            "platform": [c.platform for c in cm.params.campaigns],
            "channel_group": [plat[c.platform].channel_group for c in cm.params.campaigns],
            "source_medium": [plat[c.platform].source_medium for c in cm.params.campaigns],
        },
        schema={
            "campaign_id": pl.Int64,
            "campaign_name": pl.Utf8,
            "platform": pl.Utf8,
            "channel_group": pl.Utf8,
            "source_medium": pl.Utf8,
        },
    )


def day_frames(cm: CompiledMarket, result: DayResult, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    """Facts of one day of market 0. `rng` draws the GA4-side extras (users, unpaid traffic)."""
    n_c = cm.n_campaigns
    c_idx, hour, dev = (
        a.reshape(-1) for a in np.meshgrid(np.arange(n_c), np.arange(HOURS), np.arange(N_DEVICES), indexing="ij")
    )

    def cell(name: str) -> np.ndarray:
        return getattr(result, name)[0].reshape(-1)

    opps = cell("opportunities")
    keep = opps > 0
    ids = cm.campaign_ids
    dims = _campaign_dims(cm)
    date = result.date
    base = pl.DataFrame(
        {
            "hour": hour[keep].astype(np.int8),
            "device": np.array(DEVICES)[dev[keep]],
            "campaign_id": ids[c_idx[keep]],
        }
    ).with_columns(pl.lit(date).alias("date"))
    sessions = cell("sessions")[keep].astype(np.int64)
    users = rng.binomial(sessions, USERS_PER_SESSION)
    new_users = rng.binomial(users, NEW_USER_SHARE)
    ads = base.join(dims.select("campaign_id", "platform", "campaign_name"), on="campaign_id", how="left").with_columns(
        impressions=pl.Series(cell("impressions")[keep].astype(np.int64)),
        clicks=pl.Series(cell("clicks")[keep].astype(np.int64)),
        cost_micros=pl.Series(np.rint(cell("cost")[keep] * 1e6).astype(np.int64)),
        eligible_impressions=pl.Series(opps[keep].astype(np.int64)),
        sessions=pl.Series(sessions),
    )
    paid_sessions = (
        base.join(dims, on="campaign_id", how="left")
        .with_columns(sessions=pl.Series(sessions), total_users=pl.Series(users), new_users=pl.Series(new_users))
        .filter(pl.col("sessions") > 0)
    )
    ev = result.events
    conversions = (
        pl.DataFrame(
            {
                "click_hour": ev.click_hour.astype(np.int8),
                "device": np.array(DEVICES)[ev.device] if len(ev) else np.array([], dtype=str),
                "campaign_id": ids[ev.campaign],
                "lag_days": ev.lag_days.astype(np.int64),
                "conv_hour": ev.conv_hour.astype(np.int8),
                "value": ev.value.astype(np.float64),
                "segment": np.array([s.name for s in cm.params.segments])[ev.segment]
                if len(ev)
                else np.array([], dtype=str),
            },
            schema_overrides={"device": pl.Utf8, "segment": pl.Utf8},
        )
        .with_columns(
            pl.lit(date).alias("click_date"),
            (pl.lit(date) + pl.duration(days=pl.col("lag_days"))).alias("conv_date"),
        )
        .join(dims.select("campaign_id", "platform"), on="campaign_id", how="left")
    )
    organic_sessions, organic_events = _organic(cm, date, rng)
    settings = pl.DataFrame(
        {"campaign_id": ids, "daily_budget": result.budgets[0], "bid": result.bids[0]}
    ).with_columns(pl.lit(date).alias("date"))
    return {
        "ads": ads.select(list(SCHEMAS["ads"])).cast(SCHEMAS["ads"]),
        "sessions": pl.concat(
            [paid_sessions.select(list(SCHEMAS["sessions"])).cast(SCHEMAS["sessions"]), organic_sessions]
        ),
        "conversions": conversions.select(list(SCHEMAS["conversions"])).cast(SCHEMAS["conversions"]),
        "organic_key_events": organic_events,
        "settings": settings.select(list(SCHEMAS["settings"])).cast(SCHEMAS["settings"]),
    }


def _organic(cm: CompiledMarket, date, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Unpaid GA4 traffic (Organic Search, Direct): Poisson sessions by hour × device following the search hour
    profile, same-session conversions at `organic_cvr`."""
    p = cm.params
    hour_share = cm.hour_share[cm.is_search].mean(axis=0) if cm.is_search.any() else np.full(HOURS, 1 / HOURS)
    level = cm.volume_level(date)
    rows_s, rows_k = [], []
    for channel, source_medium, campaign, share in ORGANIC_SPLIT:
        lam = p.organic_sessions_per_day * level * share * hour_share[:, None] * np.asarray(p.device_shares)[None, :]
        sessions = rng.poisson(lam)
        users = rng.binomial(sessions, USERS_PER_SESSION)
        new_users = rng.binomial(users, NEW_USER_SHARE)
        conv = rng.binomial(sessions, p.organic_cvr)
        revenue = np.zeros_like(lam)
        nz = np.argwhere(conv > 0)
        for h, d in nz:
            revenue[h, d] = (ORGANIC_VALUE_MEDIAN * np.exp(ORGANIC_VALUE_SIGMA * rng.standard_normal(conv[h, d]))).sum()
        h_idx, d_idx = np.meshgrid(np.arange(HOURS), np.arange(N_DEVICES), indexing="ij")
        common = {
            "date": [date] * sessions.size,
            "hour": h_idx.reshape(-1).astype(np.int8),
            "channel_group": channel,
            "source_medium": source_medium,
            "campaign_name": campaign,
            "campaign_id": None,
            "device": np.array(DEVICES)[d_idx.reshape(-1)],
        }
        s = pl.DataFrame(
            {
                **common,
                "sessions": sessions.reshape(-1),
                "total_users": users.reshape(-1),
                "new_users": new_users.reshape(-1),
            },
            schema=SCHEMAS["sessions"],
        )
        k = pl.DataFrame(
            {**common, "key_events": conv.reshape(-1), "revenue": revenue.reshape(-1)},
            schema=SCHEMAS["organic_key_events"],
        )
        rows_s.append(s.filter(pl.col("sessions") > 0))
        rows_k.append(k.filter(pl.col("key_events") > 0))
    return pl.concat(rows_s), pl.concat(rows_k)


def rival_shift_frame(cm: CompiledMarket, date, comp_shift: np.ndarray) -> pl.DataFrame:
    """The rivals' log-bid shifts [K] in force on `date` (a hidden fact: no report shows it)."""
    return pl.DataFrame(
        {
            "date": [date] * len(comp_shift),
            "competitor": np.arange(len(comp_shift), dtype=np.int64),
            "name": [k.name for k in cm.params.competitors],
            "log_shift": np.asarray(comp_shift, dtype=float),
        },
        schema=SCHEMAS["rival_shifts"],
    )


def report_tables(cm: CompiledMarket, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """GA4 `sessions` and `key_events` (paid conversions on the last-click campaign by conversion date, plus
    unpaid ones), and the ad platforms' `ads` and `ad_conversions` (by click date). Nothing hidden leaves here."""
    dims = _campaign_dims(cm)
    paid_events = (
        frames["conversions"]
        .join(dims.drop("platform"), on="campaign_id", how="left")
        .group_by("conv_date", "conv_hour", "channel_group", "source_medium", "campaign_name", "campaign_id", "device")
        .agg(pl.len().cast(pl.Int64).alias("key_events"), pl.col("value").sum().alias("revenue"))
        .rename({"conv_date": "date", "conv_hour": "hour"})
    )
    key_events = pl.concat(
        [
            paid_events.select(list(SCHEMAS["organic_key_events"])).cast(SCHEMAS["organic_key_events"]),
            frames["organic_key_events"],
        ]
    )
    return {
        "sessions": frames["sessions"],
        "key_events": key_events,
        "ads": frames["ads"].select(list(REPORT_SCHEMAS["ads"])),
        "ad_conversions": frames["conversions"].select(list(REPORT_SCHEMAS["ad_conversions"])),
        "settings": frames["settings"],
    }
