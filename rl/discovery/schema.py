"""`DiscoveredPatterns`: the typed, versioned result of pattern discovery over the warehouse marts.

Everything here is computed from what the ad platforms and GA4 report (the dbt marts), never from the demo world's
hidden parameters. Each section states how its numbers and their uncertainty were computed (`method`), so a reader
of the JSON does not need the code to interpret it. Intervals are 90% unless `level` says otherwise.

Keys used throughout:
  * a campaign is `"<platform>:<campaign_id>"` (e.g. `"google_ads:101"`), as in `dim_campaign`;
  * a profile's scope is `account` (every campaign), `channel_group` (GA4 channel group from `dim_campaign`, e.g.
    `Paid Search`), `platform` or `campaign`, and its `key` names the member (`"all"` for the account);
  * hours are 0–23 in the account's time zone; days of the week are ISO order, Monday first.

Bump `SCHEMA_VERSION` on any change that a consumer could notice, and regenerate the committed JSON schema with
`python -m rl.discovery.schema` (a test fails while the committed file differs from the generated one).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
JSON_SCHEMA_FILE = Path(__file__).with_name("discovered_patterns.schema.json")

HOURS = 24
DAY_NAMES: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Scope = Literal["account", "channel_group", "platform", "campaign"]
HourMetric = Literal["clicks", "conversions", "sessions", "auctions"]
DayMetric = Literal["clicks", "conversions", "sessions", "key_events", "auctions"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def campaign_key(platform: str, campaign_id: int) -> str:
    """The key of a campaign everywhere in `DiscoveredPatterns`: `"<platform>:<campaign_id>"`."""
    return f"{platform}:{int(campaign_id)}"


class Interval(_Strict):
    """A two-sided interval [lo, hi] at `level` (a central credible or confidence interval)."""

    lo: float
    hi: float
    level: float = Field(default=0.9, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.hi < self.lo:
            raise ValueError(f"interval hi ({self.hi}) < lo ({self.lo})")
        return self

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi


class DataWindow(_Strict):
    """The calendar days the marts covered when the patterns were discovered."""

    first_date: dt.date
    last_date: dt.date
    days: int = Field(ge=1, description="Calendar days from first_date to last_date inclusive.")

    @model_validator(mode="after")
    def _consistent(self) -> DataWindow:
        if (self.last_date - self.first_date).days + 1 != self.days:
            raise ValueError(f"days={self.days} does not match {self.first_date}..{self.last_date}")
        return self


# --------------------------------------------------------------------------------------------------- segments


class KScore(_Strict):
    """How well a clustering with k groups fits: the selection criterion and the within-cluster sum of squares."""

    k: int = Field(ge=1)
    silhouette: float | None = Field(description="Mean silhouette width (−1…1, higher is better); None for k=1.")
    inertia: float = Field(ge=0, description="Within-cluster sum of squared distances in standardised units.")


class ClusterChoice(_Strict):
    """How the behavioural segments were formed and how their number was chosen."""

    unit: str = Field(description="What one clustered observation is, e.g. 'campaign × device'.")
    features: list[str] = Field(description="Clustered features (centroid_z keys).")
    descriptive_features: list[str] = Field(
        default_factory=list, description="Features reported in each centroid but not clustered on."
    )
    transform: str = Field(description="How features were transformed and standardised before clustering.")
    algorithm: str = Field(description="Clustering algorithm, initialisation and restarts.")
    criterion: str = Field(description="How k was chosen from `scores`.")
    seed: int
    scores: list[KScore] = Field(description="Criterion score of every k that was tried.")
    chosen_k: int = Field(ge=1)
    excluded_units: list[str] = Field(default_factory=list, description="Units left out (too few sessions).")


class SegmentMember(_Strict):
    unit: str = Field(description="'<platform>:<campaign_id>/<device>'.")
    campaign: str
    device: str
    sessions: float = Field(ge=0)
    key_events: float = Field(ge=0)


class BehaviouralSegment(_Strict):
    """One cluster of units with similar observed behaviour."""

    segment_id: int = Field(ge=0, description="0 = the segment with the most sessions, then descending.")
    label: str = Field(description="Short name from the features that set the segment apart.")
    description: str = Field(description="One sentence on how the segment differs from the average unit.")
    size: int = Field(ge=1, description="Number of member units.")
    members: list[SegmentMember]
    sessions: float = Field(ge=0)
    session_share: float = Field(ge=0, le=1, description="Part of all clustered sessions.")
    key_events: float = Field(ge=0)
    conversion_rate: float | None = Field(description="Pooled GA4 key events / sessions of the members.")
    conversion_rate_interval: Interval | None = Field(description="Jeffreys interval of conversion_rate.")
    mean_lag_days: float | None = Field(description="Key-event-weighted mean click→conversion lag of the members.")
    centroid: dict[str, float] = Field(
        description="Mean of each clustered and descriptive feature over the members, in natural units."
    )
    centroid_z: dict[str, float] = Field(description="The centroid in standardised units (0 = average unit).")


class Segments(_Strict):
    choice: ClusterChoice
    segments: list[BehaviouralSegment]

    @model_validator(mode="after")
    def _k_matches(self) -> Segments:
        if len(self.segments) != self.choice.chosen_k:
            raise ValueError(f"{len(self.segments)} segments but chosen_k={self.choice.chosen_k}")
        return self

    def segment_of(self, unit: str) -> BehaviouralSegment:
        for s in self.segments:
            if any(m.unit == unit for m in s.members):
                return s
        raise KeyError(f"unit {unit!r} is in no segment")


# ------------------------------------------------------------------------------------------------ hour of day


def _shares_ok(values: list[float], n: int, what: str) -> list[float]:
    if len(values) != n:
        raise ValueError(f"{what} needs {n} values, got {len(values)}")
    if any(v < -1e-12 for v in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(f"{what} must be non-negative shares summing to 1 (sum={sum(values)})")
    return values


class HourProfile(_Strict):
    """Share of a metric per hour of day over the data window, with day-bootstrap uncertainty."""

    scope: Scope
    key: str
    metric: HourMetric
    total: float = Field(ge=0)
    shares: list[float] = Field(description="24 shares, hour 0 first, summing to 1.")
    shares_lo: list[float] = Field(description="Lower ends of the 90% intervals of `shares`.")
    shares_hi: list[float] = Field(description="Upper ends of the 90% intervals of `shares`.")
    peak_hour: int = Field(ge=0, le=23, description="Hour with the largest share.")
    peak_probability: float = Field(ge=0, le=1, description="Share of bootstrap resamples whose peak is peak_hour.")
    peak_hours_90: list[int] = Field(
        description="Fewest hours that hold the bootstrap peak in ≥ 90% of resamples, most frequent first."
    )
    top_hours: list[int] = Field(description="The three hours with the largest shares, largest first.")

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        return _shares_ok(v, HOURS, "shares")

    @field_validator("shares_lo", "shares_hi")
    @classmethod
    def _bounds(cls, v: list[float]) -> list[float]:
        if len(v) != HOURS:
            raise ValueError(f"needs {HOURS} values, got {len(v)}")
        return v


class HourOfDay(_Strict):
    method: str
    n_bootstrap: int = Field(ge=0)
    profiles: list[HourProfile]

    def get(self, scope: Scope, key: str, metric: HourMetric) -> HourProfile:
        for p in self.profiles:
            if (p.scope, p.key, p.metric) == (scope, key, metric):
                return p
        raise KeyError(f"no hour profile for {scope}/{key}/{metric}")


# ------------------------------------------------------------------------------------------------ day of week


class DayOfWeekProfile(_Strict):
    """Index of a metric per weekday against an average day (mean 1.0), Monday first."""

    scope: Scope
    key: str
    metric: DayMetric
    total: float = Field(ge=0)
    index: list[float] = Field(description="7 values, Monday first, averaging 1.0.")
    index_lo: list[float]
    index_hi: list[float]
    peak_day: str
    trough_day: str

    @field_validator("index", "index_lo", "index_hi")
    @classmethod
    def _seven(cls, v: list[float]) -> list[float]:
        if len(v) != 7:
            raise ValueError(f"needs 7 values, got {len(v)}")
        return v


class DayOfWeek(_Strict):
    method: str
    profiles: list[DayOfWeekProfile]

    def get(self, scope: Scope, key: str, metric: DayMetric) -> DayOfWeekProfile:
        for p in self.profiles:
            if (p.scope, p.key, p.metric) == (scope, key, metric):
                return p
        raise KeyError(f"no day-of-week profile for {scope}/{key}/{metric}")


# ---------------------------------------------------------------------------------------------------- devices


class DeviceStat(_Strict):
    device: str
    sessions: float = Field(ge=0)
    session_share: float = Field(ge=0, le=1)
    key_events: float = Field(ge=0)
    conversion_rate: float | None
    interval: Interval | None
    rank: int = Field(ge=1, description="1 = highest conversion rate.")


class PairwiseOrder(_Strict):
    higher: str
    lower: str
    probability: float = Field(ge=0, le=1, description="Posterior probability that `higher` converts better.")


class DeviceGroup(_Strict):
    """Device conversion rates over one scope (the account or one channel group)."""

    scope: Literal["account", "channel_group"]
    key: str
    devices: list[DeviceStat]
    ranking: list[str] = Field(description="Devices by conversion rate, highest first.")
    ranking_probability: float = Field(ge=0, le=1, description="Posterior probability of the whole ranking.")
    pairwise: list[PairwiseOrder] = Field(description="Adjacent pairs of the ranking.")


class Devices(_Strict):
    method: str
    groups: list[DeviceGroup]

    def get(self, scope: str = "account", key: str = "all") -> DeviceGroup:
        for g in self.groups:
            if (g.scope, g.key) == (scope, key):
                return g
        raise KeyError(f"no device group {scope}/{key}")


# --------------------------------------------------------------------------------------------------- channels


class ChannelStat(_Strict):
    """Spend and click-date conversions of one platform or campaign over the mature click dates."""

    level: Literal["account", "platform", "campaign"]
    key: str
    platform: str | None
    campaign_id: int | None
    campaign_name: str | None
    spend: float = Field(ge=0)
    impressions: float = Field(ge=0)
    clicks: float = Field(ge=0)
    conversions: float = Field(ge=0, description="Ads conversions by click date.")
    key_events: float = Field(ge=0, description="GA4 key events (conversion date) over the same days.")
    cpc: float | None
    conversion_rate: float | None = Field(description="Ads conversions / clicks.")
    cpa: float | None = Field(description="spend / conversions; None without conversions.")
    cpa_interval: Interval | None = Field(description="90% interval of the CPA; None without conversions.")
    cpa_ga4: float | None = Field(description="spend / GA4 key events (the other attribution clock).")
    dispersion: float = Field(ge=0, description="Quasi-Poisson dispersion of daily conversions given spend (≥ 1).")


class Channels(_Strict):
    method: str
    mature_days: int = Field(ge=0)
    first_click_date: dt.date
    last_click_date: dt.date
    includes_immature_days: bool = Field(description="True when the window was too short to leave the young days out.")
    account: ChannelStat
    platforms: list[ChannelStat]
    campaigns: list[ChannelStat]
    cpa_ranking: list[str] = Field(description="Campaign keys by CPA, cheapest first (campaigns without one last).")

    def campaign(self, key: str) -> ChannelStat:
        for c in self.campaigns:
            if c.key == key:
                return c
        raise KeyError(f"no campaign {key!r}")


# -------------------------------------------------------------------------------------------- conversion lag


class LagStat(_Strict):
    campaign: str
    platform: str
    campaign_id: int
    campaign_name: str | None
    conversions: float = Field(ge=0, description="Mature conversions in buckets of known lag.")
    mean_lag_days: float | None
    mean_lag_interval: Interval | None
    share_within_7_days: float | None = Field(description="Part of conversions with a lag below 7 days.")
    median_lag_bucket: str | None
    rank: int | None = Field(description="1 = shortest mean lag.")


class ConversionLag(_Strict):
    method: str
    first_click_date: dt.date | None
    last_click_date: dt.date | None
    campaigns: list[LagStat]
    order: list[str] = Field(description="Campaign keys by mean lag, shortest first (campaigns without one left out).")

    def campaign(self, key: str) -> LagStat:
        for c in self.campaigns:
            if c.campaign == key:
                return c
        raise KeyError(f"no campaign {key!r}")


# ------------------------------------------------------------------------------------------------------- root


class DiscoveredPatterns(_Strict):
    """What the marts show about the account: segments, timing, devices, channel costs and conversion lag."""

    schema_version: Literal[1] = SCHEMA_VERSION
    data_window: DataWindow
    source_tables: list[str] = Field(description="The warehouse tables the patterns were computed from.")
    seed: int = Field(description="Seed of every random step (bootstrap, Monte Carlo, clustering).")
    campaigns: list[str] = Field(description="Campaign keys in dim_campaign order.")
    segments: Segments
    hour_of_day: HourOfDay
    day_of_week: DayOfWeek
    devices: Devices
    channels: Channels
    conversion_lag: ConversionLag

    @property
    def first_date(self) -> dt.date:
        return self.data_window.first_date

    @property
    def last_date(self) -> dt.date:
        return self.data_window.last_date

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> DiscoveredPatterns:
        return cls.model_validate_json(text)


def json_schema_text() -> str:
    """The JSON schema of `DiscoveredPatterns`, as committed next to this module."""
    return json.dumps(DiscoveredPatterns.model_json_schema(), indent=2, sort_keys=True) + "\n"


def export_json_schema(path: str | Path = JSON_SCHEMA_FILE) -> Path:
    """Write the JSON schema of `DiscoveredPatterns` to `path` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json_schema_text())
    return path


if __name__ == "__main__":
    print(export_json_schema())
