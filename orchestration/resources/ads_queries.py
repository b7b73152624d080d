"""The Google Ads reports GAELP ingests, as GAQL: the fields each report selects and the query of a date window
(`orchestration.resources.ads` runs them through the SDK; the demo market answers the same queries)."""

from __future__ import annotations

import datetime as dt

PERFORMANCE_FIELDS = [
    "campaign.id",
    "campaign.name",
    "segments.date",
    "segments.hour",
    "segments.device",
    "metrics.impressions",
    "metrics.clicks",
    "metrics.cost_micros",
    "metrics.conversions",
    "metrics.conversions_value",
    "metrics.search_impression_share",
]
LAG_FIELDS = [
    "campaign.id",
    "segments.date",
    "segments.conversion_lag_bucket",
    "metrics.conversions",
    "metrics.conversions_value",
]
SETTINGS_FIELDS = [
    "campaign.id",
    "segments.date",
    "ad_group.id",
    "campaign_budget.amount_micros",
    "ad_group.cpc_bid_micros",
    "ad_group.cpm_bid_micros",
]
IMPRESSION_SHARE_FIELDS = ["campaign.id", "segments.date", "metrics.impressions", "metrics.search_impression_share"]
# The device and ad-schedule (hour-of-day) bid modifiers in force: campaign criteria of type DEVICE / AD_SCHEDULE.
MODIFIER_CRITERIA_FIELDS = [
    "campaign.id",
    "campaign_criterion.criterion_id",
    "campaign_criterion.type",
    "campaign_criterion.device.type",
    "campaign_criterion.ad_schedule.day_of_week",
    "campaign_criterion.ad_schedule.start_hour",
    "campaign_criterion.ad_schedule.end_hour",
    "campaign_criterion.ad_schedule.start_minute",
    "campaign_criterion.ad_schedule.end_minute",
    "campaign_criterion.bid_modifier",
]
MODIFIER_FIELDS = [*MODIFIER_CRITERIA_FIELDS[:1], "segments.date", *MODIFIER_CRITERIA_FIELDS[1:]]
MODIFIER_TYPES = "campaign_criterion.type IN (DEVICE, AD_SCHEDULE)"


def campaign_query(fields: list[str], start: dt.date, end: dt.date, resource: str = "campaign") -> str:
    """A GAQL report on `resource` over the days start..end (both included), oldest day first."""
    if start > end:
        raise ValueError(f"report window starts {start}, after its end {end}")
    return (
        f"SELECT {', '.join(fields)} FROM {resource} "
        f"WHERE segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}' "
        "ORDER BY segments.date"
    )


def performance_query(start: dt.date, end: dt.date) -> str:
    """Delivery per campaign, day, hour and device, with conversions credited to the click date."""
    return campaign_query(PERFORMANCE_FIELDS, start, end)


def conversion_lag_query(start: dt.date, end: dt.date) -> str:
    """Conversions per campaign and click date, split by how many days after the click they happened."""
    return campaign_query(LAG_FIELDS, start, end)


def settings_query(start: dt.date, end: dt.date) -> str:
    """The daily budget and ad group bid (max CPC or CPM bid cap) per campaign and day.

    Google Ads reports an attribute's CURRENT value on every date row; run daily for yesterday, that is the value
    that was in force (settings change in the morning push, before the day's delivery). Older days need the change
    history (`change_event`, 30 days) — which is why this report is pulled per partition day, without lookback."""
    return campaign_query(SETTINGS_FIELDS, start, end, resource="ad_group")


def modifiers_query(start: dt.date, end: dt.date) -> str:
    """The device and ad-schedule bid modifiers in force per campaign and day (`FROM campaign_criterion`).

    The real API reports a campaign's criteria only as they are now, without `segments.date`: the demo answers this
    dated form (as it does the settings report), and `GoogleAdsReportingResource` asks for the current criteria
    (`current_modifiers_query`) and records them on the last day of the window."""
    if start > end:
        raise ValueError(f"report window starts {start}, after its end {end}")
    return (
        f"SELECT {', '.join(MODIFIER_FIELDS)} FROM campaign_criterion "
        f"WHERE segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}' AND {MODIFIER_TYPES} "
        "ORDER BY segments.date"
    )


def current_modifiers_query() -> str:
    """The device and ad-schedule bid modifiers in force now (the real API's only form of the criteria report)."""
    return f"SELECT {', '.join(MODIFIER_CRITERIA_FIELDS)} FROM campaign_criterion WHERE {MODIFIER_TYPES}"


def impression_share_query(start: dt.date, end: dt.date) -> str:
    """Search impression share per campaign and day (daily: it is not additive over hours)."""
    return campaign_query(IMPRESSION_SHARE_FIELDS, start, end)
