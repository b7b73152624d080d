"""`MarketParams`: the one typed, validated description of an ad market.

The demo world's hidden truth and the calibrated simulator are both a `MarketParams`. Every field is validated;
a bad file fails with a message naming the field path and the offending value (see `load_market_params`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
HOURS = 24
DEFAULT_HOUR_BLOCKS = 6  # ad-schedule blocks of 4 hours: 00-04, 04-08, …, 20-24
# The search platforms' own bid-adjustment ranges, as multipliers of the bid: Google Ads and Microsoft Advertising
# allow device adjustments of −100% … +900% and ad-schedule (hour-of-day) adjustments of −90% … +900%.
SEARCH_DEVICE_MODIFIER_RANGE: tuple[float, float] = (0.0, 10.0)
SEARCH_HOUR_MODIFIER_RANGE: tuple[float, float] = (0.1, 10.0)


class MarketParamsError(ValueError):
    """A market parameter file or object is invalid; the message names each bad field and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_profile(values: list[float], length: int, what: str) -> list[float]:
    if len(values) != length:
        raise ValueError(f"{what} needs exactly {length} values, got {len(values)}")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"{what} values must be >= 0 and not all zero")
    return values


class Segment(_Strict):
    """A hidden user segment: it sets click and conversion propensity, conversion lag and order value."""

    name: str = Field(min_length=1)
    ctr_mult: float = Field(gt=0, le=10, description="Multiplier on the base click-through rate.")
    cvr: float = Field(gt=0, lt=1, description="Probability that a session of this segment converts (eventually).")
    lag_days_min: int = Field(ge=0, le=60, description="Shortest click-to-conversion lag in whole days.")
    lag_days_max: int = Field(ge=0, le=90, description="Longest click-to-conversion lag in whole days.")
    value_median: float = Field(gt=0, description="Median first-order value in account currency.")
    value_sigma: float = Field(ge=0, le=2, description="Lognormal sigma of the order value.")
    competition_mult: float = Field(
        default=1.0, gt=0, le=10, description="How much harder competitors bid on this segment's queries (intent)."
    )

    @model_validator(mode="after")
    def _lag_order(self) -> Segment:
        if self.lag_days_max < self.lag_days_min:
            raise ValueError(f"lag_days_max ({self.lag_days_max}) < lag_days_min ({self.lag_days_min})")
        return self


def _check_range(v: tuple[float, float] | None, what: str) -> tuple[float, float] | None:
    if v is None:
        return None
    lo, hi = v
    if not 0 <= lo <= 1 <= hi or hi > 100:
        raise ValueError(f"{what} must be (low, high) multipliers with 0 <= low <= 1 <= high <= 100, got {v}")
    return (float(lo), float(hi))


class Platform(_Strict):
    """An ad platform and its auction.

    kind="search": generalised second-price auction over `position_ctr` slots; rank by bid × quality; pay per click
    max(reserve, next score / own quality). kind="social": single-slot second-price eCPM auction with the bid as a
    CPM cap; pay per impression max(reserve, second eCPM / own quality) / 1000.

    Bid modifiers: a search platform lets the advertiser multiply a campaign's bid by a device modifier and an
    hour-block (ad schedule) modifier, within `device_modifier_range` / `hour_modifier_range` (defaults: the Google
    Ads and Microsoft Advertising ranges). Social platforms have no such controls: giving them a range is an error.
    """

    name: str = Field(min_length=1)
    kind: Literal["search", "social"]
    reserve_price: float = Field(ge=0, description="Reserve CPC (search) or reserve CPM (social), currency.")
    position_ctr: list[float] = Field(
        min_length=1, max_length=8, description="Base click-through rate by slot (social: one value per impression)."
    )
    session_rate: float = Field(gt=0, le=1, description="Share of clicks that GA4 records as a session.")
    source_medium: str = Field(description="GA4 sessionSourceMedium for this platform's paid traffic.")
    channel_group: str = Field(description="GA4 sessionDefaultChannelGroup for this platform's paid traffic.")
    hour_profile: list[float] = Field(description="Relative opportunity volume by hour of day (24 values).")
    dow_profile: list[float] = Field(description="Relative opportunity volume by day of week, Monday first (7).")
    device_modifier_range: tuple[float, float] | None = Field(
        default=None, description="Allowed device bid multipliers (low, high); search platforms only."
    )
    hour_modifier_range: tuple[float, float] | None = Field(
        default=None, description="Allowed hour-block (ad schedule) bid multipliers (low, high); search only."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_modifier_ranges(cls, data: object) -> object:
        # a search platform that does not say otherwise has the search platforms' standard ranges
        if isinstance(data, dict) and data.get("kind") == "search":
            data = dict(data)
            data.setdefault("device_modifier_range", SEARCH_DEVICE_MODIFIER_RANGE)
            data.setdefault("hour_modifier_range", SEARCH_HOUR_MODIFIER_RANGE)
        return data

    @field_validator("device_modifier_range")
    @classmethod
    def _device_range(cls, v):
        return _check_range(v, "device_modifier_range")

    @field_validator("hour_modifier_range")
    @classmethod
    def _hour_range(cls, v):
        return _check_range(v, "hour_modifier_range")

    @property
    def has_modifiers(self) -> bool:
        """True when the platform offers device and hour-block bid modifiers."""
        return self.device_modifier_range is not None and self.hour_modifier_range is not None

    @field_validator("position_ctr")
    @classmethod
    def _ctr(cls, v: list[float]) -> list[float]:
        if any(not 0 < x < 1 for x in v):
            raise ValueError(f"every position CTR must be in (0, 1), got {v}")
        if any(b > a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"position CTRs must not increase with position, got {v}")
        return v

    @field_validator("hour_profile")
    @classmethod
    def _hours(cls, v: list[float]) -> list[float]:
        return _check_profile(v, HOURS, "hour_profile")

    @field_validator("dow_profile")
    @classmethod
    def _dow(cls, v: list[float]) -> list[float]:
        return _check_profile(v, 7, "dow_profile")

    @model_validator(mode="after")
    def _social_one_slot(self) -> Platform:
        if self.kind == "social" and len(self.position_ctr) != 1:
            raise ValueError("a social platform has exactly one slot (position_ctr of length 1)")
        if self.kind == "social" and (self.device_modifier_range is not None or self.hour_modifier_range is not None):
            raise ValueError("a social platform has no device or hour-block bid modifiers (give no modifier ranges)")
        if (self.device_modifier_range is None) != (self.hour_modifier_range is None):
            raise ValueError("give both device_modifier_range and hour_modifier_range, or neither")
        return self


class Competitor(_Strict):
    """A named rival advertiser; its bid per auction is lognormal around `median_bid` × multipliers."""

    name: str = Field(min_length=1)
    platform: str
    campaigns: list[int] = Field(min_length=1, description="Our campaign ids whose auctions this rival enters.")
    median_bid: float = Field(gt=0, description="Median CPC (search) or CPM (social) bid, currency.")
    sigma: float = Field(ge=0, le=2, description="Lognormal sigma of the per-auction bid.")
    quality: float = Field(gt=0, le=10)
    hour_mult: list[float] = Field(default_factory=lambda: [1.0] * HOURS, description="Bid multiplier by hour.")
    device_mult: list[float] = Field(default_factory=lambda: [1.0, 1.0, 1.0], description="By device.")
    adapt_rate: float = Field(
        default=0.0, ge=0, le=0.5, description="Daily log-bid response to our impression share above 50%."
    )
    drift_sigma: float = Field(default=0.0, ge=0, le=0.5, description="Daily random-walk sigma of the log bid.")

    @field_validator("hour_mult")
    @classmethod
    def _hours(cls, v: list[float]) -> list[float]:
        return _check_profile(v, HOURS, "hour_mult")

    @field_validator("device_mult")
    @classmethod
    def _devices(cls, v: list[float]) -> list[float]:
        return _check_profile(v, len(DEVICES), "device_mult")


class Campaign(_Strict):
    """One of our campaigns: its traffic, auction quality, creative response and the bids currently in force."""

    id: int = Field(gt=0)
    name: str = Field(min_length=1)
    platform: str
    product: str = Field(min_length=1)
    intent: str = Field(min_length=1, description="brand / generic / competitor / prospecting / retargeting …")
    opportunities_per_day: float = Field(gt=0, description="Mean auctions per day the campaign is eligible for.")
    quality: float = Field(gt=0, le=10, description="Quality score (search) or relevance (social).")
    ctr_mult: float = Field(gt=0, le=10, description="Creative/ad-copy click-through multiplier.")
    cvr_mult: float = Field(gt=0, le=10, description="Landing page / offer conversion multiplier.")
    fatigue_per_k_impr: float = Field(
        ge=0, le=1, description="CTR loss per 1,000 impressions of recent exposure (stock decays by `fatigue_decay`)."
    )
    segment_mix: dict[str, float] = Field(description="Share of opportunities from each segment (sums to 1).")
    current_bid: float = Field(gt=0, description="Max CPC (search) or CPM bid cap (social) in force, currency.")
    current_daily_budget: float = Field(ge=0, description="Daily budget in force, currency.")
    max_bid: float = Field(gt=0, description="Hard upper limit on the bid any policy may set.")
    reference_bid: float | None = Field(
        default=None, gt=0, description="The plan's reference bid (bid multiplier 1.0); None = the current bid."
    )
    current_device_modifiers: list[float] | None = Field(
        default=None, description="Device bid multipliers in force (mobile, desktop, tablet); None = all 1."
    )
    current_hour_modifiers: list[float] | None = Field(
        default=None, description="Hour-block bid multipliers in force (`hour_blocks` values); None = all 1."
    )

    @field_validator("segment_mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()) or abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"segment_mix must be non-negative shares summing to 1, got {v}")
        return v


class MarketParams(_Strict):
    """The whole market. Volumes scale as base × trend × annual season × day-of-week × hour-of-day."""

    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    hour_blocks: int = Field(
        default=DEFAULT_HOUR_BLOCKS, ge=1, le=24, description="Ad-schedule blocks per day (divides 24)."
    )
    currency: str = Field(default="USD", min_length=3, max_length=3)
    history_start: dt.date = Field(description="First simulated date of the world's history.")
    daily_budget: float = Field(gt=0, description="The account's total daily budget.")
    target_cpa: float = Field(gt=0, description="Target cost per acquisition.")
    device_shares: list[float] = Field(description="Opportunity share by device (mobile, desktop, tablet).")
    device_ctr_mult: list[float] = Field(description="Click-through multiplier by device.")
    device_cvr_mult: list[float] = Field(description="Conversion multiplier by device.")
    trend_per_year: float = Field(ge=-0.9, le=5, description="Yearly growth of opportunity volume (0.1 = +10%).")
    season_amplitude: float = Field(ge=0, lt=1, description="Amplitude of the annual volume cycle.")
    season_peak_doy: int = Field(ge=1, le=366, description="Day of year at which the annual cycle peaks.")
    fatigue_decay: float = Field(ge=0, lt=1, description="Daily retention of the exposure stock behind fatigue.")
    organic_sessions_per_day: float = Field(ge=0, description="Unpaid sessions/day (GA4 Organic Search + Direct).")
    organic_cvr: float = Field(ge=0, lt=1, description="Same-day conversion rate of unpaid sessions.")
    segments: list[Segment] = Field(min_length=1)
    platforms: list[Platform] = Field(min_length=1)
    campaigns: list[Campaign] = Field(min_length=1)
    competitors: list[Competitor] = Field(default_factory=list)

    @field_validator("device_shares")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        _check_profile(v, len(DEVICES), "device_shares")
        if abs(sum(v) - 1) > 1e-6:
            raise ValueError(f"device_shares must sum to 1, got {sum(v):.6f}")
        return v

    @field_validator("device_ctr_mult", "device_cvr_mult")
    @classmethod
    def _device_mult(cls, v: list[float]) -> list[float]:
        return _check_profile(v, len(DEVICES), "device multipliers")

    @field_validator("hour_blocks")
    @classmethod
    def _blocks(cls, v: int) -> int:
        if HOURS % v:
            raise ValueError(f"hour_blocks must divide 24, got {v}")
        return v

    @model_validator(mode="after")
    def _references(self) -> MarketParams:
        platforms = {p.name for p in self.platforms}
        by_name = {p.name: p for p in self.platforms}
        segments = {s.name for s in self.segments}
        ids = [c.id for c in self.campaigns]
        problems = []
        if len(platforms) != len(self.platforms):
            problems.append("platforms: names must be unique")
        if len(segments) != len(self.segments):
            problems.append("segments: names must be unique")
        if len(set(ids)) != len(ids):
            problems.append(f"campaigns: ids must be unique, got {ids}")
        if len({c.name for c in self.campaigns}) != len(self.campaigns):
            problems.append("campaigns: names must be unique")
        for i, c in enumerate(self.campaigns):
            if c.platform not in platforms:
                problems.append(f"campaigns.{i}.platform: unknown platform {c.platform!r} (known: {sorted(platforms)})")
            unknown = set(c.segment_mix) - segments
            if unknown:
                problems.append(f"campaigns.{i}.segment_mix: unknown segments {sorted(unknown)}")
            if c.current_bid > c.max_bid:
                problems.append(f"campaigns.{i}.current_bid: {c.current_bid} exceeds max_bid {c.max_bid}")
            plat = by_name.get(c.platform)
            for name, length, rng in (
                ("current_device_modifiers", len(DEVICES), plat and plat.device_modifier_range),
                ("current_hour_modifiers", self.hour_blocks, plat and plat.hour_modifier_range),
            ):
                mods = getattr(c, name)
                if mods is None or plat is None:
                    continue
                if rng is None:
                    problems.append(f"campaigns.{i}.{name}: {c.platform} has no bid modifiers")
                elif len(mods) != length:
                    problems.append(f"campaigns.{i}.{name}: needs {length} values, got {len(mods)}")
                elif any(not rng[0] <= m <= rng[1] for m in mods):
                    problems.append(f"campaigns.{i}.{name}: {mods} outside the platform's range {list(rng)}")
        by_id = {c.id: c for c in self.campaigns}
        for i, k in enumerate(self.competitors):
            if k.platform not in platforms:
                problems.append(f"competitors.{i}.platform: unknown platform {k.platform!r}")
            for cid in k.campaigns:
                if cid not in by_id:
                    problems.append(f"competitors.{i}.campaigns: unknown campaign id {cid}")
                elif by_id[cid].platform != k.platform:
                    problems.append(
                        f"competitors.{i}.campaigns: campaign {cid} is on {by_id[cid].platform!r}, not {k.platform!r}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- convenience -------------------------------------------------------------------------------------------
    def platform(self, name: str) -> Platform:
        return next(p for p in self.platforms if p.name == name)

    def campaign(self, campaign_id: int) -> Campaign:
        for c in self.campaigns:
            if c.id == campaign_id:
                return c
        raise KeyError(f"unknown campaign id {campaign_id}")

    @property
    def campaign_ids(self) -> list[int]:
        return [c.id for c in self.campaigns]

    def params_hash(self) -> str:
        """Stable short hash of the parameters (stored with every simulation and model)."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid market parameters in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        lines.append(f"  - {loc}: {e['msg']} (got {shown})")
    return "\n".join(lines)


def parse_market_params(data: object, source: str = "<dict>") -> MarketParams:
    """Validate a mapping into `MarketParams`, raising `MarketParamsError` that names every bad field."""
    if not isinstance(data, dict):
        raise MarketParamsError(f"invalid market parameters in {source}: expected a mapping, got {type(data).__name__}")
    try:
        return MarketParams.model_validate(data)
    except ValidationError as err:
        raise MarketParamsError(_format_errors(err, source)) from None


def load_market_params(path: str | Path) -> MarketParams:
    """Read a YAML or JSON market file."""
    path = Path(path)
    if not path.exists():
        raise MarketParamsError(f"market parameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise MarketParamsError(f"{path}: not valid YAML/JSON: {err}") from None
    return parse_market_params(data, str(path))
