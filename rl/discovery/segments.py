"""Behavioural segments: k-means over campaign × device units, k chosen by silhouette."""

from __future__ import annotations

import numpy as np
import polars as pl

from rl.discovery.clustering import choose_k
from rl.discovery.marts import (
    CVR_PRIOR_SESSIONS,
    EVENING_HOURS,
    MIN_UNIT_SESSIONS,
    _campaign_list,
    _jeffreys,
    _ratio,
    _with_key,
)
from rl.discovery.schema import (
    BehaviouralSegment,
    ClusterChoice,
    ConversionLag,
    KScore,
    SegmentMember,
    Segments,
)

# ----------------------------------------------------------------------------------------------------- segments

# Clustered features: conversion behaviour, which the hidden buyer mix of a campaign (and the device) sets.
# feature -> (transform before standardising, words for a low / high value)
SEGMENT_FEATURES: dict[str, tuple[str, str, str]] = {
    "conversion_rate": ("log", "low conversion rate", "high conversion rate"),
    "mean_lag_days": ("identity", "short lag", "long lag"),
}
# Described for each segment but not clustered on: they mostly tell platforms apart (auction, ad format, feed hours).
DESCRIPTIVE_FEATURES: tuple[str, ...] = ("share_within_7_days", "evening_click_share", "ctr", "cpc")
SEGMENT_UNIT = "campaign × device"


def segment_units(
    device_daily: pl.DataFrame,
    daily: pl.DataFrame,
    hourly: pl.DataFrame,
    lag: ConversionLag,
    campaigns: pl.DataFrame,
    *,
    min_sessions: float = MIN_UNIT_SESSIONS,
    prior_sessions: float = CVR_PRIOR_SESSIONS,
) -> tuple[pl.DataFrame, list[str]]:
    """One row per campaign × device with the observed features (natural units), and the units left out.

    conversion_rate is the unit's GA4 key events / sessions shrunk towards its campaign's rate (Beta prior worth
    `prior_sessions` sessions), so a device with few sessions does not form a cluster of noise. Mean lag, share
    within 7 days, ctr, cpc and the evening (18–23 h) share of clicks are the campaign's (the ad reports carry no
    device). Units need `min_sessions` sessions, a positive conversion rate and a known lag to be kept."""
    keys = _campaign_list(campaigns)
    dev = _with_key(device_daily).filter(pl.col("campaign").is_in(keys))
    units = dev.group_by("campaign", "device").agg(pl.col("sessions").sum(), pl.col("key_events").sum())
    camp = units.group_by("campaign").agg((pl.col("key_events").sum() / pl.col("sessions").sum()).alias("campaign_cvr"))
    ads = (
        _with_key(daily)
        .group_by("campaign")
        .agg(pl.col("clicks").sum(), pl.col("impressions").sum(), pl.col("spend").sum())
        .select(
            "campaign",
            (pl.col("clicks") / pl.col("impressions")).alias("ctr"),
            (pl.col("spend") / pl.col("clicks")).alias("cpc"),
        )
    )
    evening = (
        _with_key(hourly)
        .group_by("campaign")
        .agg(
            (pl.col("clicks").filter(pl.col("hour").is_in(list(EVENING_HOURS))).sum() / pl.col("clicks").sum()).alias(
                "evening_click_share"
            )
        )
    )
    lags = pl.DataFrame(
        {
            "campaign": [s.campaign for s in lag.campaigns],
            "mean_lag_days": [s.mean_lag_days for s in lag.campaigns],
            "share_within_7_days": [s.share_within_7_days for s in lag.campaigns],
        },
        schema={"campaign": pl.Utf8, "mean_lag_days": pl.Float64, "share_within_7_days": pl.Float64},
    )
    out = (
        units.join(camp, on="campaign", how="left")
        .join(ads, on="campaign", how="left")
        .join(evening, on="campaign", how="left")
        .join(lags, on="campaign", how="left")
        .with_columns(
            (
                (pl.col("key_events") + prior_sessions * pl.col("campaign_cvr")) / (pl.col("sessions") + prior_sessions)
            ).alias("conversion_rate"),
            pl.format("{}/{}", pl.col("campaign"), pl.col("device")).alias("unit"),
        )
        .sort("campaign", "device")
    )
    features = [*SEGMENT_FEATURES, *DESCRIPTIVE_FEATURES]
    usable = (pl.col("sessions") >= min_sessions) & pl.all_horizontal(
        [pl.col(f).is_not_null() & pl.col(f).is_finite() for f in SEGMENT_FEATURES]
    )
    usable = usable & (pl.col("conversion_rate") > 0)
    kept = out.filter(usable.fill_null(False))
    excluded = out.filter(~usable.fill_null(False))["unit"].to_list()
    return kept.select("unit", "campaign", "device", "sessions", "key_events", *features), excluded


def _transform(x: np.ndarray, how: str) -> np.ndarray:
    if how == "log":
        return np.log(x)
    if how == "identity":
        return x
    raise ValueError(f"unknown feature transform {how!r} (log or identity)")


def _fmt(feature: str, value: float) -> str:
    if feature.endswith(("rate", "share", "ctr")) or "share_" in feature:
        return f"{value:.2%}"
    if feature.endswith("days"):
        return f"{value:.1f} d"
    return f"{value:.3g}"


def _describe(z: dict[str, float], words: dict[str, tuple[str, str]]) -> str:
    strong = sorted(((abs(v), f) for f, v in z.items() if abs(v) >= 0.5), reverse=True)[:2]
    if not strong:
        return "average"
    return ", ".join(words[f][1] if z[f] > 0 else words[f][0] for _, f in strong)


def segments_section(
    units: pl.DataFrame,
    features: dict[str, tuple[str, str, str]] | None = None,
    *,
    describe: tuple[str, ...] | None = None,
    excluded: list[str] | None = None,
    seed: int = 0,
    k_max: int = 8,
    n_init: int = 10,
) -> Segments:
    """k-means over the units' standardised `features`, k by silhouette.

    `units` has columns unit, campaign, device, sessions, key_events and one column per feature; `features` maps a
    clustered feature to (transform, word for low, word for high); `describe` names further columns whose member
    mean is reported in each centroid without taking part in the clustering (default: those of
    DESCRIPTIVE_FEATURES present in `units`)."""
    features = features or SEGMENT_FEATURES
    names = list(features)
    if describe is None:
        describe = tuple(c for c in DESCRIPTIVE_FEATURES if c in units.columns)
    if units.height == 0:
        raise ValueError("no units to cluster (no campaign × device had enough sessions)")
    raw = units.select(names).to_numpy().astype(float)
    x = np.column_stack([_transform(raw[:, j], features[f][0]) for j, f in enumerate(names)])
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = np.divide(x - mu, sd, out=np.zeros_like(x), where=sd > 0)
    extra = units.select(list(describe)).to_numpy().astype(float) if describe else np.zeros((units.height, 0))
    sel = choose_k(z, k_max=k_max, seed=seed, n_init=n_init)
    labels = sel.chosen.labels
    used = sorted(set(labels.tolist()))
    sessions = units["sessions"].to_numpy().astype(float)
    key_events = units["key_events"].to_numpy().astype(float)
    total_sessions = float(sessions.sum())
    by_sessions = sorted(used, key=lambda j: (-sessions[labels == j].sum(), j))
    words = {f: (features[f][1], features[f][2]) for f in names}
    rows = units.to_dicts()
    overall = {f: float(raw[:, i].mean()) for i, f in enumerate(names)}
    overall |= {f: float(np.nanmean(extra[:, i])) for i, f in enumerate(describe)}
    segs = []
    for sid, j in enumerate(by_sessions):
        m = labels == j
        s_sum, k_sum = float(sessions[m].sum()), float(key_events[m].sum())
        centroid = {f: float(raw[m, i].mean()) for i, f in enumerate(names)}
        centroid |= {
            f: float(np.nanmean(extra[m, i])) for i, f in enumerate(describe) if np.isfinite(extra[m, i]).any()
        }
        centroid_z = {f: float(z[m, i].mean()) for i, f in enumerate(names)}
        label = _describe(centroid_z, words)
        lag = None
        if "mean_lag_days" in units.columns:
            lags = units["mean_lag_days"].to_numpy().astype(float)[m]
            weights = key_events[m]
            lag = float((lags * weights).sum() / weights.sum()) if weights.sum() > 0 else float(lags.mean())
        parts = [f"{f.replace('_', ' ')} {_fmt(f, centroid[f])} (all units {_fmt(f, overall[f])})" for f in centroid]
        segs.append(
            BehaviouralSegment(
                segment_id=sid,
                label=label,
                description=f"{int(m.sum())} unit(s) with {s_sum / max(total_sessions, 1e-12):.0%} of the sessions, "
                f"{label}: " + "; ".join(parts) + ".",
                size=int(m.sum()),
                members=[
                    SegmentMember(
                        unit=rows[i]["unit"],
                        campaign=rows[i]["campaign"],
                        device=rows[i]["device"],
                        sessions=float(rows[i]["sessions"]),
                        key_events=float(rows[i]["key_events"]),
                    )
                    for i in np.flatnonzero(m)
                ],
                sessions=s_sum,
                session_share=s_sum / total_sessions if total_sessions > 0 else 0.0,
                key_events=k_sum,
                conversion_rate=_ratio(k_sum, s_sum),
                conversion_rate_interval=_jeffreys(k_sum, s_sum),
                mean_lag_days=lag,
                centroid=centroid,
                centroid_z=centroid_z,
            )
        )
    transforms = ", ".join(f"{f}: {features[f][0]}" for f in names)
    choice = ClusterChoice(
        unit=SEGMENT_UNIT,
        features=names,
        descriptive_features=list(describe),
        transform=f"{transforms}; then z-scored over the units (a constant feature contributes nothing)",
        algorithm=f"k-means, k-means++ initialisation, best of {n_init} restarts (seed {seed} + k), Lloyd iterations",
        criterion=(
            f"mean silhouette width, highest over k = 2…{min(k_max, len(z) - 1)} (ties: fewer clusters); "
            "k = 1 only when there are fewer than 3 units"
        ),
        seed=seed,
        scores=[KScore(k=k, silhouette=s, inertia=i) for k, s, i in sel.scores],
        chosen_k=len(used),
        excluded_units=list(excluded or []),
    )
    return Segments(choice=choice, segments=segs)
