"""The demo market's account structure, as each platform's API lists it: what account discovery reads.

Every demo campaign has one budget object and one bid object, with the demo's ids (`rl.bidding.plan.demo_targets`),
holding the budget and bid in force. Each platform shows them in its own object model, answered with its own SDK's
types, so discovery parses the demo exactly as it parses a real account:
  * Google Ads (GAQL `GoogleAdsService.Search`, `GoogleAdsRow`s, paged): a Manual CPC search campaign, its campaign
    budget `<id>00` (not shared) and its ad group `<id>01`;
  * Microsoft Advertising (SOAP, the bingads SDK's suds objects): a Manual CPC search campaign holding its daily
    budget, and its ad group `<id>01`;
  * Meta (Graph JSON, cursor-paged): a campaign with two ad sets, `<id>00` holding the daily budget (no bid cap) and
    `<id>01` bidding with a cap (on a lifetime budget);
  * TikTok (Marketing API JSON, page-numbered): a campaign with two ad groups, `<id>00` holding the daily budget
    (lowest cost) and `<id>01` bidding a custom CPM (on a lifetime budget).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from google.ads.googleads.v26.enums import (
    AdGroupStatusEnum,
    AdvertisingChannelTypeEnum,
    BiddingStrategyTypeEnum,
    BudgetStatusEnum,
    CampaignStatusEnum,
)
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsResponse

from rl.bidding.plan import demo_targets
from rl.world import gaql
from rl.world.gaql import GaqlError, GaqlQuery
from rl.world.world import PLATFORM_CUSTOMER_IDS, DemoWorld

PAGE_SIZE = 10_000  # Google Ads' fixed Search page size
ENUMS = {
    "campaign.status": CampaignStatusEnum.CampaignStatus,
    "campaign.advertising_channel_type": AdvertisingChannelTypeEnum.AdvertisingChannelType,
    "campaign.bidding_strategy_type": BiddingStrategyTypeEnum.BiddingStrategyType,
    "campaign_budget.status": BudgetStatusEnum.BudgetStatus,
    "ad_group.status": AdGroupStatusEnum.AdGroupStatus,
}
FIELDS = {
    "campaign": (
        "campaign.resource_name",
        "campaign.id",
        "campaign.name",
        "campaign.status",
        "campaign.advertising_channel_type",
        "campaign.bidding_strategy_type",
        "campaign.campaign_budget",
        "campaign.final_url_suffix",
    ),
    "campaign_budget": (
        "campaign_budget.resource_name",
        "campaign_budget.id",
        "campaign_budget.amount_micros",
        "campaign_budget.explicitly_shared",
        "campaign_budget.reference_count",
        "campaign_budget.status",
    ),
    "ad_group": (
        "ad_group.resource_name",
        "ad_group.id",
        "ad_group.name",
        "ad_group.status",
        "ad_group.campaign",
        "ad_group.cpc_bid_micros",
        "campaign.id",
    ),
}
NUMERIC = {"campaign.id", "campaign_budget.id", "campaign_budget.amount_micros", "campaign_budget.reference_count"}
NUMERIC |= {"ad_group.id", "ad_group.cpc_bid_micros"}


def campaigns(world: DemoWorld, platform: str) -> list[dict]:
    """The demo campaigns of a platform with their budget and bid in force and their demo object ids."""
    out = []
    for c in sorted((c for c in world.params.campaigns if c.platform == platform), key=lambda c: c.id):
        budget, bid = world.settings[c.id]
        budget_id, (bid_id,) = demo_targets(c.id, platform)
        out.append({"id": c.id, "name": c.name, "budget": budget, "bid": bid, "budget_id": budget_id, "bid_id": bid_id})
    return out


# -- Google Ads: GAQL over campaign, campaign_budget, ad_group ------------------------------------------------------


class _Parser(gaql._Parser):
    """GAQL with the structure resources' fields (the reporting catalogue is `rl.world.gaql`'s)."""

    def field_name(self) -> tuple[str, int]:
        kind, text, pos = self.take()
        if kind != "word" or text.upper() in gaql._KEYWORDS:
            raise GaqlError("UNEXPECTED_INPUT", "expected a field name", text, pos)
        if not any(text in fields for fields in FIELDS.values()):
            raise GaqlError("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{text}'", text, pos)
        return text, pos

    def value(self, fld: str):
        kind, text, pos = self.take()
        if kind == "num" and fld in NUMERIC:
            return int(text) if "." not in text else float(text)
        if kind == "str" and fld not in NUMERIC and fld not in ENUMS:
            return text[1:-1]
        if fld in ENUMS and kind in ("word", "str") and text.strip("'\"") in ENUMS[fld].__members__:
            return text.strip("'\"")
        raise GaqlError("BAD_VALUE", f"{text} is not a value of {fld}", text, pos)


def parse_structure_query(query: str) -> GaqlQuery:
    """`SELECT ... FROM campaign|campaign_budget|ad_group [WHERE ...] [ORDER BY ...] [LIMIT n]` over the structure
    fields, with the API's errors (a field of another resource is PROHIBITED_FIELD_IN_SELECT_CLAUSE)."""
    p = _Parser(query)
    p.expect("SELECT", "EXPECTED_SELECT")
    fields = [p.field_name()[0]]
    while p.keyword(","):
        fields.append(p.field_name()[0])
    p.expect("FROM", "EXPECTED_FROM")
    _, resource, pos = p.take()
    if resource not in FIELDS:
        raise GaqlError("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"the demo lists only {tuple(FIELDS)}", resource, pos)
    q = GaqlQuery(fields=list(dict.fromkeys(fields)), resource=resource)
    for name in q.fields:
        if name not in FIELDS[resource]:
            raise GaqlError("PROHIBITED_FIELD_IN_SELECT_CLAUSE", f"{name} FROM {resource}", name, query.find(name))
    if p.keyword("WHERE"):
        q.conditions.append(p.condition())
        while p.keyword("AND"):
            q.conditions.append(p.condition())
    if p.keyword("ORDER"):
        p.expect("BY", "EXPECTED_BY")
        while True:
            q.order_by.append((p.field_name()[0], p.keyword("DESC") or (p.keyword("ASC") and False)))
            if not p.keyword(","):
                break
    if p.keyword("LIMIT"):
        q.limit = int(p.take()[1])
    kind, text, pos = p.peek()
    if kind != "end":
        raise GaqlError("UNEXPECTED_INPUT", "unexpected input", text, pos)
    return q


def _google_records(world: DemoWorld, customer_id: str, resource: str) -> list[dict]:
    out = []
    for c in campaigns(world, "google_ads"):
        campaign = f"customers/{customer_id}/campaigns/{c['id']}"
        budget = f"customers/{customer_id}/campaignBudgets/{c['budget_id']}"
        if resource == "campaign":
            out.append(
                {
                    "campaign.resource_name": campaign,
                    "campaign.id": c["id"],
                    "campaign.name": c["name"],
                    "campaign.status": "ENABLED",
                    "campaign.advertising_channel_type": "SEARCH",
                    "campaign.bidding_strategy_type": "MANUAL_CPC",
                    "campaign.campaign_budget": budget,
                    "campaign.final_url_suffix": "",
                }
            )
        elif resource == "campaign_budget":
            out.append(
                {
                    "campaign_budget.resource_name": budget,
                    "campaign_budget.id": int(c["budget_id"]),
                    "campaign_budget.amount_micros": round(c["budget"] * 100) * 10_000,
                    "campaign_budget.explicitly_shared": False,
                    "campaign_budget.reference_count": 1,
                    "campaign_budget.status": "ENABLED",
                }
            )
        else:
            out.append(
                {
                    "ad_group.resource_name": f"customers/{customer_id}/adGroups/{c['bid_id']}",
                    "ad_group.id": int(c["bid_id"]),
                    "ad_group.name": f"{c['name']} | Ad group",
                    "ad_group.status": "ENABLED",
                    "ad_group.campaign": campaign,
                    "ad_group.cpc_bid_micros": round(c["bid"] * 100) * 10_000,
                    "campaign.id": c["id"],
                }
            )
    return out


def _holds(record: dict, condition: gaql.Condition) -> bool:
    value, wanted = record[condition.field], condition.values
    return {
        "=": lambda: value == wanted[0],
        "!=": lambda: value != wanted[0],
        "IN": lambda: value in wanted,
        "NOT IN": lambda: value not in wanted,
        "<": lambda: value < wanted[0],
        "<=": lambda: value <= wanted[0],
        ">": lambda: value > wanted[0],
        ">=": lambda: value >= wanted[0],
    }[condition.op]()


def google_ads_search(world: DemoWorld, request: Any, page_size: int = PAGE_SIZE) -> SearchGoogleAdsResponse:
    """Answer a `SearchGoogleAdsRequest` over the demo account structure: one page of `GoogleAdsRow`s with the
    selected fields, and the next page's token when there is one."""
    customer_id = str(request.customer_id).replace("-", "")
    if customer_id != PLATFORM_CUSTOMER_IDS["google_ads"]:
        raise GaqlError("CUSTOMER_NOT_FOUND", f"customer {customer_id} is not the demo's", customer_id, 0)
    q = parse_structure_query(request.query)
    records = [r for r in _google_records(world, customer_id, q.resource) if all(_holds(r, c) for c in q.conditions)]
    for name, descending in reversed(q.order_by):
        records.sort(key=lambda r, name=name: r[name], reverse=descending)
    records = records[: q.limit] if q.limit else records
    start = int(base64.b64decode(request.page_token).decode()) if request.page_token else 0
    page = records[start : start + page_size]
    response = SearchGoogleAdsResponse()
    response.field_mask.paths.extend(q.fields)
    for record in page:
        row = GoogleAdsRow()
        for name in (f"{q.resource}.resource_name", *q.fields):
            group, attr = name.split(".")
            setattr(getattr(row, group), attr, record[name])
        response.results.append(row)
    if start + page_size < len(records):
        response.next_page_token = base64.b64encode(str(start + page_size).encode()).decode()
    return response


# -- Meta: Graph JSON ---------------------------------------------------------------------------------------------


def meta_get(world: DemoWorld, path: str, params: dict) -> dict:
    """Answer `GET act_<id>/campaigns` or `GET act_<id>/adsets` with the requested fields, a page of `limit`."""
    account, _, edge = path.partition("/")
    if account != f"act_{PLATFORM_CUSTOMER_IDS['meta']}" or edge not in ("campaigns", "adsets"):
        return {"error": {"message": f"Unsupported get request: {path}", "code": 100, "error_subcode": 33}}
    objects = []
    for c in campaigns(world, "meta"):
        cents = round(c["budget"] * 100)
        if edge == "campaigns":
            objects.append({"id": str(c["id"]), "name": c["name"], "status": "ACTIVE", "effective_status": "ACTIVE"})
            continue
        common = {"campaign_id": str(c["id"]), "status": "ACTIVE"}
        objects.append(
            {"id": c["budget_id"], "name": f"{c['name']} | Daily budget", "daily_budget": str(cents), **common}
            | {"bid_strategy": "LOWEST_COST_WITHOUT_CAP"}
        )
        objects.append(
            {"id": c["bid_id"], "name": f"{c['name']} | Bid cap", "lifetime_budget": str(cents * 30), **common}
            | {"bid_strategy": "LOWEST_COST_WITH_BID_CAP", "bid_amount": round(c["bid"] * 100)}
        )
    wanted = {"id", *str(params.get("fields", "")).split(",")}
    limit = int(params.get("limit", 25))
    start = int(base64.b64decode(params["after"]).decode()) if params.get("after") else 0
    data = [{k: v for k, v in o.items() if k in wanted} for o in objects[start : start + limit]]
    body: dict = {"data": data, "paging": {"cursors": {"before": _cursor(start), "after": _cursor(start + len(data))}}}
    if start + limit < len(objects):
        body["paging"]["next"] = f"https://graph.facebook.com/v26.0/{path}?limit={limit}&after={_cursor(start + limit)}"
    return body


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


# -- TikTok: Marketing API JSON -----------------------------------------------------------------------------------


def tiktok_get(world: DemoWorld, kind: str, fields: tuple[str, ...], page: int, page_size: int) -> dict:
    """Answer `/campaign/get/` or `/adgroup/get/` for the demo advertiser: one page with `page_info`."""
    objects = []
    for c in campaigns(world, "tiktok"):
        if kind == "campaign":
            objects.append(
                {
                    "campaign_id": str(c["id"]),
                    "campaign_name": c["name"],
                    "operation_status": "ENABLE",
                    "budget_mode": "BUDGET_MODE_INFINITE",
                    "budget": 0.0,
                    "budget_optimize_on": False,
                }
            )
            continue
        common = {"campaign_id": str(c["id"]), "operation_status": "ENABLE", "billing_event": "CPM"}
        objects.append(
            {"adgroup_id": c["budget_id"], "budget_mode": "BUDGET_MODE_DAY", "budget": c["budget"], **common}
            | {"bid_type": "BID_TYPE_NO_BID", "bid_price": 0.0}
        )
        objects.append(
            {"adgroup_id": c["bid_id"], "budget_mode": "BUDGET_MODE_TOTAL", "budget": c["budget"] * 30, **common}
            | {"bid_type": "BID_TYPE_CUSTOM", "bid_price": c["bid"]}
        )
    total_pages = max(1, -(-len(objects) // page_size))
    listed = [{k: v for k, v in o.items() if k in fields} for o in objects[(page - 1) * page_size : page * page_size]]
    request_id = "demo-" + hashlib.sha1(f"{kind}|{page}|{world.today}".encode()).hexdigest()[:16]
    page_info = {"page": page, "page_size": page_size, "total_number": len(objects), "total_page": total_pages}
    return {"code": 0, "message": "OK", "request_id": request_id, "data": {"list": listed, "page_info": page_info}}


# -- Microsoft Advertising: SOAP through suds ---------------------------------------------------------------------


def microsoft_call(world: DemoWorld, factory: Any, method: str, **arguments: Any) -> Any:
    """Answer `GetCampaignsByAccountId` / `GetAdGroupsByCampaignId` with objects built by the SDK's own factory
    (the WSDL's types), as suds hands a parsed reply to its caller."""
    listed = campaigns(world, "microsoft_ads")
    if method == "GetCampaignsByAccountId":
        if str(arguments.get("AccountId")) != PLATFORM_CUSTOMER_IDS["microsoft_ads"]:
            raise ValueError(f"account {arguments.get('AccountId')} is not the demo's Microsoft Advertising account")
        array = factory.create("ArrayOfCampaign")
        for c in listed:
            campaign = factory.create("Campaign")
            scheme = factory.create("ManualCpcBiddingScheme")
            scheme.Type = "ManualCpc"
            campaign.Id, campaign.Name, campaign.Status = c["id"], c["name"], "Active"
            campaign.BiddingScheme, campaign.DailyBudget = scheme, c["budget"]
            campaign.BudgetType, campaign.BudgetId, campaign.CampaignType = "DailyBudgetStandard", None, ["Search"]
            array.Campaign.append(campaign)
        return array
    if method == "GetAdGroupsByCampaignId":
        array = factory.create("ArrayOfAdGroup")
        for c in listed:
            if int(arguments.get("CampaignId", 0)) == c["id"]:
                ad_group, bid = factory.create("AdGroup"), factory.create("Bid")
                bid.Amount = c["bid"]
                ad_group.Id, ad_group.Name, ad_group.Status = int(c["bid_id"]), c["name"], "Active"
                ad_group.CpcBid = bid
                array.AdGroup.append(ad_group)
        return array
    raise ValueError(f"the demo's Microsoft Advertising account does not answer {method}")
