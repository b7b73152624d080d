"""Pattern discovery over the warehouse marts: `discover(con) -> DiscoveredPatterns`.

Reads only the dbt marts (`dim_campaign`, `fct_campaign_daily`, `fct_campaign_hourly`, `fct_conversion_lag`,
`fct_device_daily`) — never raw tables, never the demo world. `marts.load_marts` is the only function that touches
DuckDB; every section (in `profiles`, `performance`, `segments`) is a small function over polars frames with the
marts' column names, so each can be tested on a hand-made frame:

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

import duckdb

from rl.discovery.marts import MART_QUERIES, Calendar, Marts, _campaign_list, load_marts
from rl.discovery.performance import channels_section, conversion_lag_section, devices_section
from rl.discovery.profiles import day_of_week_section, hour_of_day_section
from rl.discovery.schema import (
    DataWindow,
    DiscoveredPatterns,
)
from rl.discovery.segments import segment_units, segments_section

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
