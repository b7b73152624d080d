"""A parser for the subset of the Google Ads Query Language (GAQL) the demo ad platforms answer: ``SELECT fields
FROM campaign|ad_group|campaign_criterion WHERE conditions [ORDER BY ...] [LIMIT n]``, with the field catalogue and
the errors the real API names (`GaqlError` carries the real ``QueryError`` code, the offending token and its
position)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from google.ads.googleads.v26.enums import (
    AdvertisingChannelTypeEnum,
    CampaignCriterionStatusEnum,
    CampaignStatusEnum,
    ConversionLagBucketEnum,
    CriterionTypeEnum,
    DayOfWeekEnum,
    DeviceEnum,
    MinuteOfHourEnum,
)

ENUMS = {
    "campaign.status": CampaignStatusEnum.CampaignStatus,
    "campaign.advertising_channel_type": AdvertisingChannelTypeEnum.AdvertisingChannelType,
    "segments.device": DeviceEnum.Device,
    "segments.conversion_lag_bucket": ConversionLagBucketEnum.ConversionLagBucket,
    "campaign_criterion.type": CriterionTypeEnum.CriterionType,
    "campaign_criterion.status": CampaignCriterionStatusEnum.CampaignCriterionStatus,
    "campaign_criterion.device.type": DeviceEnum.Device,
    "campaign_criterion.ad_schedule.day_of_week": DayOfWeekEnum.DayOfWeek,
    "campaign_criterion.ad_schedule.start_minute": MinuteOfHourEnum.MinuteOfHour,
    "campaign_criterion.ad_schedule.end_minute": MinuteOfHourEnum.MinuteOfHour,
}
ATTRIBUTES = (
    "campaign.id",
    "campaign.name",
    "campaign.status",
    "campaign.advertising_channel_type",
    "campaign.resource_name",
)
SEGMENTS = ("segments.date", "segments.hour", "segments.device", "segments.conversion_lag_bucket")
DELIVERY_METRICS = (
    "metrics.impressions",
    "metrics.clicks",
    "metrics.cost_micros",
    "metrics.ctr",
    "metrics.average_cpc",
    "metrics.search_impression_share",
)
METRICS = DELIVERY_METRICS + ("metrics.conversions", "metrics.conversions_value")
# The settings in force (FROM ad_group; the budget also FROM campaign). One ad group per demo campaign.
SETTINGS = ("campaign_budget.amount_micros", "ad_group.id", "ad_group.cpc_bid_micros", "ad_group.cpm_bid_micros")
# A campaign's criteria (FROM campaign_criterion): the device and ad-schedule bid modifiers in force.
CRITERIA = (
    "campaign_criterion.resource_name",
    "campaign_criterion.criterion_id",
    "campaign_criterion.type",
    "campaign_criterion.status",
    "campaign_criterion.bid_modifier",
    "campaign_criterion.device.type",
    "campaign_criterion.ad_schedule.day_of_week",
    "campaign_criterion.ad_schedule.start_hour",
    "campaign_criterion.ad_schedule.end_hour",
    "campaign_criterion.ad_schedule.start_minute",
    "campaign_criterion.ad_schedule.end_minute",
)
RESOURCES = ("campaign", "ad_group", "campaign_criterion")
FIELDS = ATTRIBUTES + SETTINGS + SEGMENTS + METRICS + CRITERIA
NUMERIC = {
    "campaign.id",
    "segments.hour",
    *METRICS,
    *SETTINGS,
    "campaign_criterion.criterion_id",
    "campaign_criterion.bid_modifier",
    "campaign_criterion.ad_schedule.start_hour",
    "campaign_criterion.ad_schedule.end_hour",
}
# What each resource serves besides its own fields (the demo keeps settings FROM ad_group and criteria FROM
# campaign_criterion; segments.date on those two is the demo's way to ask for the values in force on past days).
_SERVED = {
    "campaign": set(ATTRIBUTES + SEGMENTS + METRICS),
    "ad_group": {"campaign.id", "campaign.name", "segments.date", *SETTINGS},
    "campaign_criterion": {"campaign.id", "campaign.name", "segments.date", *CRITERIA},
}
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "ORDER",
    "BY",
    "LIMIT",
    "ASC",
    "DESC",
    "IN",
    "NOT",
    "BETWEEN",
    "DURING",
    "LIKE",
    "PARAMETERS",
}
_TOKEN = re.compile(
    r"""\s+|(?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)"""
    r"""|(?P<op><=|>=|!=|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<bad>['"].*|.)"""
)
# whole days from click to conversion -> bucket: a bucket per day below 14, then 14-20, 21-29, 30-44, 45-59, 60+


class GaqlError(ValueError):
    """A query the Google Ads API would reject; ``code`` is the matching ``QueryError`` enum name."""

    def __init__(self, code: str, detail: str, token: str, position: int):
        self.code, self.detail, self.token, self.position = code, detail, token, position
        super().__init__(f"{code}: {detail} (at position {position}, near '{token}')")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # =, !=, <, <=, >, >=, IN, NOT IN, BETWEEN, DURING
    values: tuple
    position: int


@dataclass
class GaqlQuery:
    fields: list[str]
    resource: str = "campaign"
    conditions: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None


class _Parser:
    def __init__(self, query: str):
        self.query, self.tokens, self.i = query, [], 0
        for m in _TOKEN.finditer(query):
            if m.lastgroup == "bad":
                code = "STRING_NOT_TERMINATED" if m.group()[0] in "'\"" else "BAD_SYMBOL"
                raise GaqlError(code, "cannot read the query here", m.group()[:10], m.start())
            if m.lastgroup:  # not whitespace
                self.tokens.append((m.lastgroup, m.group(), m.start()))

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "<end of query>", len(self.query))

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok[0] == "end":
            raise GaqlError("UNEXPECTED_END_OF_QUERY", "the query ends too early", tok[1], tok[2])
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        """Consume the keyword (or punctuation) `word` if it comes next."""
        kind, text, _ = self.peek()
        if kind in ("word", "op") and text.upper() == word:
            self.i += 1
            return True
        return False

    def expect(self, word: str, code: str) -> None:
        if not self.keyword(word):
            _, text, pos = self.peek()
            raise GaqlError(code, f"expected {word}", text, pos)

    def field_name(self) -> tuple[str, int]:
        kind, text, pos = self.take()
        if kind != "word" or text.upper() in _KEYWORDS:
            raise GaqlError("UNEXPECTED_INPUT", "expected a field name", text, pos)
        if text not in FIELDS:
            raise GaqlError("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{text}'", text, pos)
        return text, pos

    def value(self, fld: str):
        kind, text, pos = self.take()
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "num":
            value = float(text) if "." in text else int(text)
        elif kind == "word" and fld in ENUMS:
            value = text
        else:
            raise GaqlError("BAD_VALUE", f"expected a value for {fld}", text, pos)
        if (fld in NUMERIC) != (kind == "num"):
            raise GaqlError("BAD_VALUE", f"{fld} needs a {'number' if fld in NUMERIC else 'string'}", text, pos)
        if fld in ENUMS and value not in ENUMS[fld].__members__:
            raise GaqlError("BAD_ENUM_CONSTANT", f"'{value}' is not a value of {fld}", text, pos)
        if fld == "segments.date":
            value = _parse_date(value, text, pos)
        return value

    def condition(self) -> Condition:
        fld, pos = self.field_name()
        kind, text, op_pos = self.take()
        op = text.upper()
        if op == "NOT":
            self.expect("IN", "BAD_OPERATOR")
            op = "NOT IN"
        if op in ("IN", "NOT IN"):
            if self.take()[1] != "(":
                raise GaqlError("EXPECTED_LIST", "expected a parenthesised list", text, op_pos)
            values = [self.value(fld)] if self.peek()[1] != ")" else []
            while self.keyword(","):
                values.append(self.value(fld))
            if self.take()[1] != ")":
                raise GaqlError("EXPECTED_LIST", "list is not closed", text, op_pos)
            if not values:
                raise GaqlError("PROHIBITED_EMPTY_LIST_IN_CONDITION", "empty list", text, op_pos)
        elif op == "BETWEEN":
            values = [self.value(fld)]
            self.expect("AND", "EXPECTED_VALUE_WITH_BETWEEN_OPERATOR")
            values.append(self.value(fld))
        elif op == "DURING":
            values = [self.take()]
            if values[0][0] != "word":
                raise GaqlError("INVALID_VALUE_WITH_DURING_OPERATOR", "expected a date range name", *values[0][1:])
        elif kind == "op" and op in ("=", "!=", "<", "<=", ">", ">="):
            values = [self.value(fld)]
        else:
            raise GaqlError("BAD_OPERATOR", f"operator {text} is not supported here", text, op_pos)
        date_ops = ("=", "<", "<=", ">", ">=", "BETWEEN", "DURING")
        if op in ("BETWEEN", "DURING") and fld != "segments.date" or fld == "segments.date" and op not in date_ops:
            raise GaqlError("OPERATOR_FIELD_MISMATCH", f"{op} cannot be used with {fld}", text, op_pos)
        return Condition(fld, op, tuple(values), pos)


def _parse_date(value: str, token: str, pos: int) -> dt.date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise GaqlError("INVALID_DATE_FORMAT", f"'{value}' is not a YYYY-MM-DD date", token, pos)


def parse_gaql(query: str) -> GaqlQuery:
    """Read a ``SELECT ... FROM campaign|ad_group [WHERE ...] [ORDER BY ...] [LIMIT n]`` query."""
    p = _Parser(query)
    p.expect("SELECT", "EXPECTED_SELECT")
    fields = [p.field_name()[0]]
    while p.keyword(","):
        fields.append(p.field_name()[0])
    p.expect("FROM", "EXPECTED_FROM")
    kind, resource, pos = p.take()
    if resource not in RESOURCES:
        raise GaqlError("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"the demo serves only FROM {RESOURCES}", resource, pos)
    q = GaqlQuery(fields=list(dict.fromkeys(fields)), resource=resource)
    for name in q.fields:
        if name not in _SERVED[resource]:
            # the real API has the budget FROM campaign too; the demo keeps settings and criteria in one place each
            home = "ad_group" if name in SETTINGS else "campaign_criterion" if name in CRITERIA else "campaign"
            raise GaqlError(
                "PROHIBITED_FIELD_IN_SELECT_CLAUSE",
                f"the demo serves {name} FROM {home}, not FROM {resource}",
                name,
                query.find(name),
            )
    if p.keyword("WHERE"):
        q.conditions.append(p.condition())
        while p.keyword("AND"):
            q.conditions.append(p.condition())
    if p.keyword("ORDER"):
        p.expect("BY", "EXPECTED_BY")
        while True:
            name, _ = p.field_name()
            descending = p.keyword("DESC") or (p.keyword("ASC") and False)  # ASC, the default, may be explicit
            q.order_by.append((name, descending))
            if not p.keyword(","):
                break
    if p.keyword("LIMIT"):
        kind, text, pos = p.take()
        if kind != "num" or "." in text:
            raise GaqlError("BAD_LIMIT_VALUE", "LIMIT needs a whole number", text, pos)
        if int(text) < 1:
            raise GaqlError("LIMIT_VALUE_TOO_LOW", "LIMIT must be at least 1", text, pos)
        q.limit = int(text)
    kind, text, pos = p.peek()
    if kind != "end":
        raise GaqlError("UNEXPECTED_INPUT", "unexpected input", text, pos)
    return q
