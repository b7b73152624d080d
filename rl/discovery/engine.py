"""Pattern discovery over the warehouse marts: `discover(con) -> DiscoveredPatterns`.

Reads only the dbt marts (`dim_campaign`, `fct_campaign_daily`, `fct_campaign_hourly`, `fct_conversion_lag`,
`fct_device_daily`) — never raw tables, never the demo world. `load_marts` is the only function that touches DuckDB;
every section is a small function over polars frames with the marts' column names, so each can be tested on a
hand-made frame:

  * `hour_of_day_section`  — share per hour of clicks, click-date conversions, GA4 sessions and (search only)
    eligible auctions = impressions / search impression share; peak hour with a day-bootstrap;
  * `day_of_week_section`  — weekday index by ratio to a centred 7-day moving average (removes trend/season);
  * `devices_section`      — GA4 key events / sessions per device, Jeffreys intervals, ranking probability;
  * `channels_section`     — spend, click-date conversions and CPA per campaign / platform over mature click
    dates, with a quasi-Poisson Gamma interval;
  * `conversion_lag_section` — mean lag (bucket mid-points), share within 7 days, order by mean lag;
  * `segment_units` + `segments_section` — k-means over campaign × device units, k by silhouette.

Deterministic for a given seed. Two years of marts take a few seconds (see tests/rl/discovery).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
from scipy import stats

from rl.discovery.clustering import choose_k
from rl.discovery.schema import (
    DAY_NAMES,
    HOURS,
    BehaviouralSegment,
    Channels,
    ChannelStat,
    ClusterChoice,
    ConversionLag,
    DataWindow,
    DayOfWeek,
    DayOfWeekProfile,
    DeviceGroup,
    Devices,
    DeviceStat,
    DiscoveredPatterns,
    HourOfDay,
    HourProfile,
    Interval,
    KScore,
    LagStat,
    PairwiseOrder,
    SegmentMember,
    Segments,
)

LEVEL = 0.9
Z90 = float(stats.norm.ppf(0.5 + LEVEL / 2))
MATURE_DAYS = 30  # as the marts' conversion_lag_mature_days: click dates younger than this are still maturing
EVENING_HOURS = range(18, 24)
MIN_UNIT_SESSIONS = 30
CVR_PRIOR_SESSIONS = 200.0

# ------------------------------------------------------------------------------------------------------ loading

MART_QUERIES: dict[str, str] = {
    "dim_campaign": """
        SELECT platform, CAST(campaign_id AS BIGINT) AS campaign_id, campaign_name, product, intent,
               ga4_channel_group AS channel_group
        FROM dim_campaign ORDER BY campaign_id, platform""",
    "fct_campaign_daily": """
        SELECT date, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(spend AS DOUBLE) AS spend, CAST(impressions AS DOUBLE) AS impressions,
               CAST(clicks AS DOUBLE) AS clicks, CAST(conversions AS DOUBLE) AS conversions,
               CAST(sessions AS DOUBLE) AS sessions, CAST(key_events AS DOUBLE) AS key_events,
               CAST(impression_share AS DOUBLE) AS impression_share
        FROM fct_campaign_daily""",
    "fct_campaign_hourly": """
        SELECT date, CAST(hour AS INTEGER) AS hour, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(impressions AS DOUBLE) AS impressions, CAST(clicks AS DOUBLE) AS clicks,
               CAST(conversions AS DOUBLE) AS conversions, CAST(sessions AS DOUBLE) AS sessions,
               CAST(impression_share AS DOUBLE) AS impression_share
        FROM fct_campaign_hourly""",
    "fct_conversion_lag": """
        SELECT platform, CAST(campaign_id AS BIGINT) AS campaign_id, conversion_lag_bucket, bucket_order,
               CAST(lag_days_min AS DOUBLE) AS lag_days_min, CAST(lag_days_max AS DOUBLE) AS lag_days_max,
               CAST(conversions AS DOUBLE) AS conversions, first_click_date, last_click_date
        FROM fct_conversion_lag""",
    "fct_device_daily": """
        SELECT date, device, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(sessions AS DOUBLE) AS sessions, CAST(key_events AS DOUBLE) AS key_events
        FROM fct_device_daily""",
}


@dataclass(frozen=True)
class Marts:
    """The mart frames discovery reads (column names as in the dbt models)."""

    campaigns: pl.DataFrame  # dim_campaign: platform, campaign_id, campaign_name, [channel_group]
    daily: pl.DataFrame  # fct_campaign_daily
    hourly: pl.DataFrame  # fct_campaign_hourly
    lag: pl.DataFrame  # fct_conversion_lag
    device: pl.DataFrame  # fct_device_daily


def load_marts(con: duckdb.DuckDBPyConnection) -> Marts:
    """Read the marts discovery needs (a read-only connection is enough)."""
    frames = {name: con.sql(sql).pl() for name, sql in MART_QUERIES.items()}
    return Marts(
        campaigns=frames["dim_campaign"],
        daily=frames["fct_campaign_daily"],
        hourly=frames["fct_campaign_hourly"],
        lag=frames["fct_conversion_lag"],
        device=frames["fct_device_daily"],
    )


# ------------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Calendar:
    first: dt.date
    days: int

    @classmethod
    def of(cls, *frames: pl.DataFrame) -> Calendar:
        dates = [d for f in frames if f.height for d in (f["date"].min(), f["date"].max())]
        if not dates:
            raise ValueError("no dated rows in the marts: nothing to discover")
        first, last = min(dates), max(dates)
        return cls(first=first, days=(last - first).days + 1)

    @property
    def last(self) -> dt.date:
        return self.first + dt.timedelta(days=self.days - 1)

    def index(self, frame: pl.DataFrame) -> np.ndarray:
        return frame.select((pl.col("date") - pl.lit(self.first)).dt.total_days()).to_series().to_numpy()

    def weekday(self) -> np.ndarray:
        """ISO weekday − 1 (0 = Monday) of every calendar day."""
        return (self.first.weekday() + np.arange(self.days)) % 7


def _with_key(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.format("{}:{}", pl.col("platform"), pl.col("campaign_id").cast(pl.Int64)).alias("campaign")
    )


def _campaign_index(frame: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Position in `keys` of each row's campaign (the frame is already filtered to `keys`)."""
    mapping = {k: i for i, k in enumerate(keys)}
    return frame["campaign"].replace_strict(mapping, return_dtype=pl.Int64).to_numpy()


def _campaign_list(campaigns: pl.DataFrame) -> list[str]:
    return _with_key(campaigns)["campaign"].to_list()


def _scopes(campaigns: pl.DataFrame) -> list[tuple[str, str, list[int]]]:
    """(scope, key, campaign indices) for the account, each channel group, platform and campaign."""
    c = _with_key(campaigns)
    keys = c["campaign"].to_list()
    out: list[tuple[str, str, list[int]]] = [("account", "all", list(range(len(keys))))]
    groups: list[tuple[str, str]] = []
    if "channel_group" in c.columns:
        groups.append(("channel_group", "channel_group"))
    groups.append(("platform", "platform"))
    for scope, col in groups:
        values = c[col].to_list()
        for v in sorted({v for v in values if v is not None}):
            out.append((scope, v, [i for i, x in enumerate(values) if x == v]))
    out += [("campaign", k, [i]) for i, k in enumerate(keys)]
    return out


def _jeffreys(successes: float, trials: float) -> Interval | None:
    if trials <= 0:
        return None
    k = min(max(successes, 0.0), trials)
    a, b = k + 0.5, trials - k + 0.5
    lo, hi = stats.beta.ppf([(1 - LEVEL) / 2, (1 + LEVEL) / 2], a, b)
    return Interval(lo=float(lo), hi=float(hi), level=LEVEL)


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


# -------------------------------------------------------------------------------------------------- hour of day

HOUR_METHOD = (
    "Shares per hour of day over the window (fct_campaign_hourly). clicks and conversions are the ad platforms' "
    "(conversions by click hour) and sessions GA4's (by start hour): totals per hour / window total. auctions "
    "(search campaigns only) is demand before competition and budget stops shape clicks: the auctions a campaign "
    "was eligible for, impressions / search impression share, averaged per hour over the days on which that hour "
    "reported a share (an hour after the budget ran out is unobserved, not zero), then summed over the scope's "
    "campaigns; a share floored at 10% makes its hour a lower bound. Uncertainty: {B} bootstrap resamples of whole "
    "days (the same resamples for every profile): 5%–95% quantiles of each hour's share and the distribution of the "
    "peak hour."
)
HOUR_METRICS = ("clicks", "conversions", "sessions", "auctions")


@dataclass(frozen=True)
class HourCubes:
    """[campaign, day, hour] arrays of the hourly mart; `observed` marks cells with a reported impression share."""

    values: dict[str, np.ndarray]
    observed: np.ndarray
    has_auctions: np.ndarray  # [campaign] bool: the campaign reports an impression share (search)


def hour_cubes(hourly: pl.DataFrame, keys: list[str], cal: Calendar) -> HourCubes:
    h = _with_key(hourly).filter(pl.col("campaign").is_in(keys))
    seen = (pl.col("impression_share") > 0).fill_null(False)
    h = h.with_columns(
        pl.when(seen).then(pl.col("impressions") / pl.col("impression_share")).otherwise(0.0).alias("auctions"),
        seen.cast(pl.Float64).alias("_observed"),
    )
    ci = _campaign_index(h, keys)
    flat = (ci * cal.days + cal.index(h)) * HOURS + h["hour"].to_numpy().astype(np.int64)
    shape = (len(keys), cal.days, HOURS)

    def cube(col: str) -> np.ndarray:
        w = h[col].fill_null(0.0).to_numpy().astype(float)
        return np.bincount(flat, weights=w, minlength=int(np.prod(shape))).reshape(shape)

    observed = cube("_observed") > 0
    return HourCubes(
        values={m: cube(m) for m in HOUR_METRICS},
        observed=observed,
        has_auctions=observed.any(axis=(1, 2)),
    )


def _per_hour(values: np.ndarray, observed: np.ndarray | None, weights: np.ndarray | None) -> np.ndarray:
    """Per-hour volume of [campaign, day, hour] arrays: sums over days, or (with `observed`) per-campaign means over
    the observed days summed over campaigns. `weights` [B, day] resamples the days; the result is [B, 24] then."""
    if weights is None:
        weights = np.ones((1, values.shape[1]))
        squeeze = True
    else:
        squeeze = False
    if observed is None:
        out = weights @ values.sum(axis=0)
    else:
        out = np.zeros((weights.shape[0], HOURS))
        for c in range(values.shape[0]):
            sums, counts = weights @ values[c], weights @ observed[c].astype(float)
            out += np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return out[0] if squeeze else out


def hour_profile(
    scope: str,
    key: str,
    metric: str,
    values: np.ndarray,
    resample: np.ndarray | None = None,
    observed: np.ndarray | None = None,
) -> HourProfile | None:
    """The hour profile of [campaign, day, hour] `values` (a [day, hour] matrix is one campaign). `resample` is a
    [B, day] matrix of bootstrap day counts; `observed` (same shape as values) switches to means over observed
    days (see HOUR_METHOD)."""
    if values.ndim == 2:
        values = values[None]
        observed = None if observed is None else observed[None]
    by_hour = _per_hour(values, observed, None)
    total = float(by_hour.sum())
    if total <= 0:
        return None
    shares = by_hour / total
    peak = int(np.argmax(shares))
    if resample is not None and resample.shape[0] > 0:
        boot = _per_hour(values, observed, resample)  # [B, 24]
        sums = boot.sum(axis=1, keepdims=True)
        boot_shares = np.divide(boot, sums, out=np.zeros_like(boot), where=sums > 0)
        lo, hi = np.quantile(boot_shares, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        counts = np.bincount(boot.argmax(axis=1), minlength=HOURS)
        order = sorted(range(HOURS), key=lambda h: (-counts[h], h))
        chosen, covered = [], 0
        for h in order:
            chosen.append(h)
            covered += counts[h]
            if covered >= LEVEL * boot.shape[0]:
                break
        prob = float(counts[peak] / boot.shape[0])
    else:
        lo = hi = shares
        chosen, prob = [peak], 1.0
    return HourProfile(
        scope=scope,
        key=key,
        metric=metric,
        total=float(values.sum()),
        shares=[float(v) for v in shares],
        shares_lo=[float(min(v, s)) for v, s in zip(lo, shares, strict=True)],
        shares_hi=[float(max(v, s)) for v, s in zip(hi, shares, strict=True)],
        peak_hour=peak,
        peak_probability=prob,
        peak_hours_90=[int(h) for h in chosen],
        top_hours=[int(h) for h in np.argsort(-shares, kind="stable")[:3]],
    )


def hour_of_day_section(
    hourly: pl.DataFrame, campaigns: pl.DataFrame, cal: Calendar, *, n_bootstrap: int = 400, seed: int = 0
) -> HourOfDay:
    keys = _campaign_list(campaigns)
    cubes = hour_cubes(hourly, keys, cal)
    rng = np.random.default_rng(seed)
    resample = (
        rng.multinomial(cal.days, np.full(cal.days, 1.0 / cal.days), size=n_bootstrap).astype(float)
        if n_bootstrap > 0
        else None
    )
    profiles = []
    for scope, key, idx in _scopes(campaigns):
        for metric in HOUR_METRICS:
            observed = None
            if metric == "auctions":
                if not cubes.has_auctions[idx].all():
                    continue
                observed = cubes.observed[idx]
            p = hour_profile(scope, key, metric, cubes.values[metric][idx], resample, observed)
            if p is not None:
                profiles.append(p)
    return HourOfDay(method=HOUR_METHOD.format(B=n_bootstrap), n_bootstrap=n_bootstrap, profiles=profiles)


def daily_auctions(cubes: HourCubes) -> np.ndarray:
    """[campaign, day] eligible auctions with the hours a day did not observe filled in from the campaign's hour
    profile: a day's total = its observed auctions / the profile share of the hours it observed."""
    values, observed = cubes.values["auctions"], cubes.observed
    out = np.zeros(values.shape[:2])
    for c in range(values.shape[0]):
        counts = observed[c].sum(axis=0)
        per_hour = np.divide(values[c].sum(axis=0), counts, out=np.zeros(HOURS), where=counts > 0)
        if per_hour.sum() <= 0:
            continue
        profile = per_hour / per_hour.sum()
        covered = observed[c].astype(float) @ profile  # [day] part of a typical day's auctions that was observed
        out[c] = np.divide(values[c].sum(axis=1), covered, out=np.zeros(values.shape[1]), where=covered > 0.05)
    return out


# -------------------------------------------------------------------------------------------------- day of week

DOW_METHOD = (
    "Ratio to a centred 7-day moving average of the daily totals (fct_campaign_daily; days without a row are 0), "
    "which removes trend and seasonality; each weekday's index is the mean ratio on that weekday, rescaled so the "
    "seven average 1.0. Interval: index ± 1.645 standard errors of that mean (normal approximation). key_events are "
    "GA4's, by conversion date. auctions (search campaigns only) are eligible auctions per day from "
    "fct_campaign_hourly: the day's observed impressions / impression share, divided by the part of the campaign's "
    "hour profile its observed hours cover (hours after a budget stop are filled in, not zero); days covering less "
    "than 5% of the profile are left out."
)
DOW_METRICS = ("clicks", "conversions", "sessions", "key_events", "auctions")


def weekday_index(series: np.ndarray, weekday: np.ndarray, valid: np.ndarray | None = None):
    """(index, standard error) per weekday from a daily series, or None when it is too short or empty. `valid`
    marks the days that were measured; a ratio needs its day and its whole 7-day window measured."""
    n = len(series)
    if n < 14 or series.sum() <= 0:
        return None
    valid = np.ones(n, dtype=bool) if valid is None else valid
    ma = np.convolve(series, np.ones(7) / 7.0, mode="valid")  # centred at t = 3 … n − 4
    full = np.convolve(valid.astype(float), np.ones(7), mode="valid") == 7
    centre, wd = series[3 : n - 3], weekday[3 : n - 3]
    ok = (ma > 0) & full
    ratio, wd = centre[ok] / ma[ok], wd[ok]
    means, ses = np.zeros(7), np.zeros(7)
    for d in range(7):
        r = ratio[wd == d]
        if len(r) == 0:
            return None
        means[d] = r.mean()
        ses[d] = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else 0.0
    scale = means.mean()
    if scale <= 0:
        return None
    return means / scale, ses / scale


def day_of_week_section(
    daily: pl.DataFrame, campaigns: pl.DataFrame, cal: Calendar, hourly: pl.DataFrame | None = None
) -> DayOfWeek:
    """Weekday profiles per scope; auctions need `hourly` (fct_campaign_hourly) and are skipped without it."""
    keys = _campaign_list(campaigns)
    d = _with_key(daily).filter(pl.col("campaign").is_in(keys))
    ci = _campaign_index(d, keys)
    flat = ci * cal.days + cal.index(d)
    series = {
        m: np.bincount(
            flat, weights=d[m].fill_null(0.0).to_numpy().astype(float), minlength=len(keys) * cal.days
        ).reshape(len(keys), cal.days)
        for m in DOW_METRICS
        if m != "auctions"
    }
    valid = {m: np.ones((len(keys), cal.days), dtype=bool) for m in series}
    has_auctions = np.zeros(len(keys), dtype=bool)
    if hourly is not None:
        cubes = hour_cubes(hourly, keys, cal)
        series["auctions"] = daily_auctions(cubes)
        valid["auctions"] = series["auctions"] > 0
        has_auctions = cubes.has_auctions
    weekday = cal.weekday()
    profiles = []
    for scope, key, idx in _scopes(campaigns):
        for m in DOW_METRICS:
            if m not in series or (m == "auctions" and not has_auctions[idx].all()):
                continue
            y = series[m][idx].sum(axis=0)
            res = weekday_index(y, weekday, valid[m][idx].all(axis=0))
            if res is None:
                continue
            index, se = res
            profiles.append(
                DayOfWeekProfile(
                    scope=scope,
                    key=key,
                    metric=m,
                    total=float(y.sum()),
                    index=[float(v) for v in index],
                    index_lo=[float(v) for v in np.maximum(index - Z90 * se, 0.0)],
                    index_hi=[float(v) for v in index + Z90 * se],
                    peak_day=DAY_NAMES[int(np.argmax(index))],
                    trough_day=DAY_NAMES[int(np.argmin(index))],
                )
            )
    return DayOfWeek(method=DOW_METHOD, profiles=profiles)


# ------------------------------------------------------------------------------------------------------ devices

DEVICE_METHOD = (
    "GA4 key events / sessions per device over the window (fct_device_daily: sessions by session date, key events "
    "by conversion date, which even out over a long window). 90% Jeffreys interval, Beta(k + ½, n − k + ½). "
    "Ranking by the point estimate; ranking_probability and pairwise probabilities from {N} Monte Carlo draws of "
    "the independent Beta posteriors."
)


def device_group(scope: str, key: str, frame: pl.DataFrame, rng: np.random.Generator, n_draws: int) -> DeviceGroup:
    """Conversion rate per device of one scope's rows (columns device, sessions, key_events)."""
    g = (
        frame.group_by("device")
        .agg(pl.col("sessions").sum(), pl.col("key_events").sum())
        .filter(pl.col("sessions") > 0)
        .sort("device")
    )
    devices = g["device"].to_list()
    n = g["sessions"].to_numpy().astype(float)
    k = np.minimum(g["key_events"].to_numpy().astype(float), n)
    cvr = k / n
    order = sorted(range(len(devices)), key=lambda i: (-cvr[i], devices[i]))
    draws = rng.beta(k[:, None] + 0.5, n[:, None] - k[:, None] + 0.5, size=(len(devices), n_draws))
    ranked = draws[order]
    ranking_prob = float(np.all(ranked[:-1] > ranked[1:], axis=0).mean()) if len(order) > 1 else 1.0
    pairwise = [
        PairwiseOrder(
            higher=devices[order[i]],
            lower=devices[order[i + 1]],
            probability=float((ranked[i] > ranked[i + 1]).mean()),
        )
        for i in range(len(order) - 1)
    ]
    total = float(n.sum())
    stats_ = [
        DeviceStat(
            device=devices[i],
            sessions=float(n[i]),
            session_share=float(n[i] / total),
            key_events=float(g["key_events"][i]),
            conversion_rate=float(cvr[i]),
            interval=_jeffreys(float(k[i]), float(n[i])),
            rank=r + 1,
        )
        for r, i in enumerate(order)
    ]
    return DeviceGroup(
        scope=scope,
        key=key,
        devices=stats_,
        ranking=[devices[i] for i in order],
        ranking_probability=ranking_prob,
        pairwise=pairwise,
    )


def devices_section(
    device_daily: pl.DataFrame, campaigns: pl.DataFrame, *, n_draws: int = 4000, seed: int = 0
) -> Devices:
    rng = np.random.default_rng(seed)
    groups = [device_group("account", "all", device_daily, rng, n_draws)]
    if "channel_group" in campaigns.columns:
        joined = device_daily.join(
            campaigns.select("platform", "campaign_id", "channel_group"), on=["platform", "campaign_id"], how="inner"
        )
        for cg in sorted({v for v in campaigns["channel_group"].to_list() if v is not None}):
            rows = joined.filter(pl.col("channel_group") == cg)
            if rows.height and rows["sessions"].sum() > 0:
                groups.append(device_group("channel_group", cg, rows, rng, n_draws))
    return Devices(method=DEVICE_METHOD.format(N=n_draws), groups=groups)


# ----------------------------------------------------------------------------------------------------- channels

CHANNEL_METHOD = (
    "Click dates at least {M} days before the latest date (their conversions have matured; all days when that "
    "leaves fewer than {MIN} days). CPA = spend / ads conversions (by click date). 90% interval: conversions per "
    "unit of spend get a Gamma posterior from a Poisson likelihood with Jeffreys prior, widened by the quasi-Poisson "
    "dispersion φ = max(1, Pearson χ² / (days − 1)) of daily conversions around spend × pooled rate, i.e. "
    "rate ~ Gamma(conversions/φ + ½, scale = φ/spend); the CPA interval is 1 / that rate's 95% and 5% quantiles."
)
MIN_CHANNEL_DAYS = 28


def cpa_stat(
    level: str,
    key: str,
    days: pl.DataFrame,
    *,
    platform: str | None = None,
    campaign_id: int | None = None,
    campaign_name: str | None = None,
) -> ChannelStat:
    """Totals and CPA of one level from its per-day rows (columns spend, impressions, clicks, conversions,
    key_events; one row per day)."""
    s = days["spend"].to_numpy().astype(float)
    y = days["conversions"].to_numpy().astype(float)
    spend, conv = float(s.sum()), float(y.sum())
    clicks, impressions = float(days["clicks"].sum()), float(days["impressions"].sum())
    key_events = float(days["key_events"].sum())
    phi = 1.0
    if conv > 0 and spend > 0:
        e = s * conv / spend
        ok = e > 0
        if ok.sum() > 1:
            phi = max(1.0, float(((y[ok] - e[ok]) ** 2 / e[ok]).sum() / (ok.sum() - 1)))
    cpa = interval = None
    if conv > 0 and spend > 0:
        cpa = spend / conv
        r_lo, r_hi = stats.gamma.ppf([(1 - LEVEL) / 2, (1 + LEVEL) / 2], conv / phi + 0.5, scale=phi / spend)
        interval = Interval(lo=float(1 / r_hi), hi=float(1 / r_lo), level=LEVEL)
    return ChannelStat(
        level=level,
        key=key,
        platform=platform,
        campaign_id=campaign_id,
        campaign_name=campaign_name,
        spend=spend,
        impressions=impressions,
        clicks=clicks,
        conversions=conv,
        key_events=key_events,
        cpc=_ratio(spend, clicks),
        conversion_rate=_ratio(conv, clicks),
        cpa=cpa,
        cpa_interval=interval,
        cpa_ga4=_ratio(spend, key_events),
        dispersion=phi,
    )


def channels_section(
    daily: pl.DataFrame, campaigns: pl.DataFrame, *, mature_days: int = MATURE_DAYS, min_days: int = MIN_CHANNEL_DAYS
) -> Channels:
    cols = ["spend", "impressions", "clicks", "conversions", "key_events"]
    first, last = daily["date"].min(), daily["date"].max()
    cutoff = last - dt.timedelta(days=mature_days)
    immature = (cutoff - first).days + 1 < min_days
    window = daily if immature else daily.filter(pl.col("date") <= cutoff)
    w_last = last if immature else cutoff
    c = _with_key(campaigns)
    window = _with_key(window).filter(pl.col("campaign").is_in(c["campaign"].to_list()))

    def per_day(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by("date").agg([pl.col(x).sum() for x in cols]).sort("date")

    account = cpa_stat("account", "all", per_day(window))
    platforms = [
        cpa_stat("platform", p, per_day(window.filter(pl.col("platform") == p)), platform=p)
        for p in sorted(set(c["platform"].to_list()))
    ]
    camps = []
    for row in c.iter_rows(named=True):
        rows = window.filter(pl.col("campaign") == row["campaign"])
        camps.append(
            cpa_stat(
                "campaign",
                row["campaign"],
                per_day(rows),
                platform=row["platform"],
                campaign_id=int(row["campaign_id"]),
                campaign_name=row.get("campaign_name"),
            )
        )
    ranking = sorted(camps, key=lambda s: (s.cpa is None, s.cpa or 0.0, s.key))
    return Channels(
        method=CHANNEL_METHOD.format(M=mature_days, MIN=min_days),
        mature_days=mature_days,
        first_click_date=first,
        last_click_date=w_last,
        includes_immature_days=immature,
        account=account,
        platforms=platforms,
        campaigns=camps,
        cpa_ranking=[s.key for s in ranking],
    )


# ----------------------------------------------------------------------------------------------- conversion lag

LAG_METHOD = (
    "fct_conversion_lag (mature click dates only). Each bucket counts at its mid-point ((lag_days_min + "
    "lag_days_max) / 2, e.g. ONE_TO_TWO_DAYS = 1.5); UNKNOWN buckets are left out. mean_lag_interval = mean ± 1.645 "
    "× sd / √conversions; share_within_7_days = conversions in buckets ending by day 7; median bucket = first bucket "
    "whose cumulative share reaches ½. Campaigns are ordered by mean lag."
)


def lag_stat(key: str, platform: str, campaign_id: int, name: str | None, rows: pl.DataFrame) -> LagStat:
    """Lag summary of one campaign's bucket rows (lag_days_min, lag_days_max, conversions, bucket_order,
    conversion_lag_bucket)."""
    known = rows.filter(pl.col("lag_days_min").is_not_null() & pl.col("lag_days_max").is_not_null())
    known = known.sort("bucket_order") if "bucket_order" in known.columns else known.sort("lag_days_min")
    w = known["conversions"].to_numpy().astype(float)
    n = float(w.sum())
    if n <= 0:
        return LagStat(
            campaign=key,
            platform=platform,
            campaign_id=campaign_id,
            campaign_name=name,
            conversions=0.0,
            mean_lag_days=None,
            mean_lag_interval=None,
            share_within_7_days=None,
            median_lag_bucket=None,
            rank=None,
        )
    lo, hi = known["lag_days_min"].to_numpy().astype(float), known["lag_days_max"].to_numpy().astype(float)
    mid = (lo + hi) / 2
    mean = float((w * mid).sum() / n)
    sd = float(np.sqrt((w * (mid - mean) ** 2).sum() / n))
    half = Z90 * sd / np.sqrt(n)
    cum = np.cumsum(w) / n
    median = None
    if "conversion_lag_bucket" in known.columns:
        median = known["conversion_lag_bucket"][int(np.searchsorted(cum, 0.5 - 1e-12))]
    return LagStat(
        campaign=key,
        platform=platform,
        campaign_id=campaign_id,
        campaign_name=name,
        conversions=n,
        mean_lag_days=mean,
        mean_lag_interval=Interval(lo=max(0.0, mean - half), hi=mean + half, level=LEVEL),
        share_within_7_days=float(w[hi <= 7].sum() / n),
        median_lag_bucket=median,
        rank=None,
    )


def conversion_lag_section(lag: pl.DataFrame, campaigns: pl.DataFrame) -> ConversionLag:
    lag = _with_key(lag)
    out = []
    for row in _with_key(campaigns).iter_rows(named=True):
        rows = lag.filter(pl.col("campaign") == row["campaign"])
        out.append(lag_stat(row["campaign"], row["platform"], int(row["campaign_id"]), row.get("campaign_name"), rows))
    ranked = sorted((s for s in out if s.mean_lag_days is not None), key=lambda s: (s.mean_lag_days, s.campaign))
    rank = {s.campaign: i + 1 for i, s in enumerate(ranked)}
    out = [s.model_copy(update={"rank": rank.get(s.campaign)}) for s in out]
    first = lag["first_click_date"].min() if "first_click_date" in lag.columns else None
    last = lag["last_click_date"].max() if "last_click_date" in lag.columns else None
    return ConversionLag(
        method=LAG_METHOD,
        first_click_date=first,
        last_click_date=last,
        campaigns=out,
        order=[s.campaign for s in ranked],
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


# ------------------------------------------------------------------------------------------------------ discover

SOURCE_TABLES = list(MART_QUERIES)


def discover_marts(marts: Marts, *, seed: int = 0, n_bootstrap: int = 400) -> DiscoveredPatterns:
    """All sections from the mart frames."""
    campaigns = marts.campaigns
    cal = Calendar.of(marts.daily, marts.hourly, marts.device)
    lag = conversion_lag_section(marts.lag, campaigns)
    units, excluded = segment_units(marts.device, marts.daily, marts.hourly, lag, campaigns)
    return DiscoveredPatterns(
        data_window=DataWindow(first_date=cal.first, last_date=cal.last, days=cal.days),
        source_tables=SOURCE_TABLES,
        seed=seed,
        campaigns=_campaign_list(campaigns),
        segments=segments_section(units, excluded=excluded, seed=seed),
        hour_of_day=hour_of_day_section(marts.hourly, campaigns, cal, n_bootstrap=n_bootstrap, seed=seed),
        day_of_week=day_of_week_section(marts.daily, campaigns, cal, marts.hourly),
        devices=devices_section(marts.device, campaigns, seed=seed),
        channels=channels_section(marts.daily, campaigns),
        conversion_lag=lag,
    )


def discover(con: duckdb.DuckDBPyConnection, *, seed: int = 0, n_bootstrap: int = 400) -> DiscoveredPatterns:
    """Discover the account's patterns from the warehouse marts behind `con` (read-only is enough)."""
    return discover_marts(load_marts(con), seed=seed, n_bootstrap=n_bootstrap)
