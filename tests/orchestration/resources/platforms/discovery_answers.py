"""Account structures as each platform puts them on the wire, for discovery tests at the SDKs' lowest layer: Google
Ads `SearchGoogleAdsResponse` pages (gRPC), Meta Graph JSON pages (`requests` adapter), TikTok Marketing API JSON
pages (urllib3), Microsoft Advertising SOAP envelopes (suds transport). Each account has a manageable campaign, a
paused one, one on an automated strategy, and its platform's special cases (a shared budget, a removed campaign,
campaign-level budgets), served in small pages so that every answer needs more than one call."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from google.ads.googleads.v26.resources.types.ad_group import AdGroup
from google.ads.googleads.v26.resources.types.campaign import Campaign
from google.ads.googleads.v26.resources.types.campaign_budget import CampaignBudget
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsResponse

from tests.orchestration.resources.platforms.fake_google_ads_mutate import SEARCH

CUSTOMER = "1234567890"
MS_NS = "https://bingads.microsoft.com/CampaignManagement/v13"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


# -- Google Ads -------------------------------------------------------------------------------------------------
def google_campaign(cid, name, status, strategy, budget, suffix=""):
    campaign = Campaign(
        resource_name=f"customers/{CUSTOMER}/campaigns/{cid}",
        id=cid,
        name=name,
        status=status,
        advertising_channel_type="SEARCH",
        bidding_strategy_type=strategy,
        campaign_budget=f"customers/{CUSTOMER}/campaignBudgets/{budget}",
        final_url_suffix=suffix,
    )
    return GoogleAdsRow(campaign=campaign)


def google_structure(removed: tuple[int, ...] = ()) -> dict[str, list[GoogleAdsRow]]:
    """101 manageable (two ad groups, UTM suffix), 102 paused, 103 Maximize Conversions, 104 and 105 on one
    explicitly shared budget, 106 removed; budgets 9001..9004 (micros), ad groups 7001..7006."""
    suffix = "utm_source=google&utm_medium=cpc&utm_campaign=brand_q1"
    campaigns = [
        google_campaign(101, "Search | Brand", "ENABLED", "MANUAL_CPC", 9001, suffix),
        google_campaign(102, "Search | Parental Controls | Generic", "PAUSED", "MANUAL_CPC", 9002),
        google_campaign(103, "Search | Competitor Terms", "ENABLED", "MAXIMIZE_CONVERSIONS", 9003),
        google_campaign(104, "Search | Identity Theft | Generic", "ENABLED", "MANUAL_CPC", 9004),
        google_campaign(105, "Search | Antivirus | Generic", "ENABLED", "MANUAL_CPC", 9004),
        google_campaign(106, "Search | Old", "REMOVED", "MANUAL_CPC", 9001),
    ]
    for row in campaigns:
        if row.campaign.id in removed:
            row.campaign.status = "REMOVED"
    budgets = [
        GoogleAdsRow(
            campaign_budget=CampaignBudget(
                id=b, amount_micros=amount, explicitly_shared=shared, reference_count=refs, status="ENABLED"
            )
        )
        for b, amount, shared, refs in [
            (9001, 50_000_000, False, 1),
            (9002, 80_000_000, False, 1),
            (9003, 30_000_000, False, 1),
            (9004, 45_000_000, True, 2),
        ]
    ]
    ad_groups = [
        GoogleAdsRow(campaign=Campaign(id=cid), ad_group=AdGroup(id=gid, name=f"{gid}", status=s, cpc_bid_micros=m))
        for cid, gid, s, m in [
            (101, 7001, "ENABLED", 2_000_000),
            (101, 7002, "PAUSED", 2_000_000),
            (102, 7003, "ENABLED", 3_000_000),
            (103, 7004, "ENABLED", 1_000_000),
            (104, 7005, "ENABLED", 4_000_000),
            (105, 7006, "ENABLED", 4_500_000),
        ]
    ]
    return {"campaign": campaigns, "campaign_budget": budgets, "ad_group": ad_groups}


def google_search(structure: dict[str, list[GoogleAdsRow]], page_size: int = 2):
    """An answer to `GoogleAdsService.Search` serving the structure query's resource `page_size` rows a page."""

    def answer(method, request):
        assert method == SEARCH, method
        query = request.query
        resource = query.split(" FROM ")[1].split()[0]
        rows = structure[resource]
        if resource == "ad_group" and "!= 'REMOVED'" in query:
            rows = [r for r in rows if r.ad_group.status.name != "REMOVED"]
        start = int(request.page_token or 0)
        more = start + page_size < len(rows)
        return SearchGoogleAdsResponse(
            results=rows[start : start + page_size], next_page_token=str(start + page_size) if more else ""
        )

    return answer


# -- Meta -------------------------------------------------------------------------------------------------------
def _meta_campaign(cid, name, status, **more):
    return {"id": cid, "name": name, "status": status, **more}


def _meta_ad_set(sid, cid, strategy, daily=None, bid=None, status="ACTIVE"):
    ad_set = {"id": sid, "campaign_id": cid, "status": status, "bid_strategy": strategy}
    return ad_set | ({"daily_budget": daily} if daily else {}) | ({"bid_amount": bid} if bid else {})


CAP, NO_CAP = "LOWEST_COST_WITH_BID_CAP", "LOWEST_COST_WITHOUT_CAP"
META_CAMPAIGNS = [
    _meta_campaign("201", "Meta | Prospecting | Parental Controls", "ACTIVE"),
    _meta_campaign("202", "Meta | Retargeting", "PAUSED"),
    _meta_campaign("203", "Meta | Prospecting | Antivirus", "ACTIVE", bid_strategy=NO_CAP),
    _meta_campaign("204", "Meta | Advantage", "ACTIVE", daily_budget="9000", bid_strategy=CAP),
]
META_AD_SETS = [
    _meta_ad_set("2201", "201", CAP, daily="4000", bid=1200),
    _meta_ad_set("2202", "202", CAP, daily="3000", bid=2000),
    _meta_ad_set("2203", "203", NO_CAP, daily="2500"),
    _meta_ad_set("2204", "204", CAP, bid=900),
    _meta_ad_set("2299", "201", CAP, daily="100", status="DELETED"),
]


def meta_graph(page_size: int = 2):
    """An answer to Graph GETs of act_555/campaigns and act_555/adsets, cursor-paged."""

    def answer(wire):
        edge = wire.path.rstrip("/").split("/")[-1]
        objects = META_CAMPAIGNS if edge == "campaigns" else META_AD_SETS
        after = wire.query.get("after", ["0"])[0]
        start = int(after)
        page = objects[start : start + page_size]
        paging = {"cursors": {"before": str(start), "after": str(start + len(page))}}
        if start + page_size < len(objects):
            paging["next"] = f"https://graph.facebook.com/v26.0/act_555/{edge}?after={start + page_size}"
        return 200, {"data": page, "paging": paging}, {"x-fb-trace-id": f"T-{edge}-{start}"}

    return answer


# -- TikTok -----------------------------------------------------------------------------------------------------
def _tiktok_campaign(cid, name, status):
    return {
        "campaign_id": cid,
        "campaign_name": name,
        "operation_status": status,
        "budget_mode": "BUDGET_MODE_INFINITE",
    }


def _tiktok_ad_group(gid, cid, budget, bid_type, bid=None):
    common = {"operation_status": "ENABLE", "budget_mode": "BUDGET_MODE_DAY", "billing_event": "CPM"}
    return {"adgroup_id": gid, "campaign_id": cid, "budget": budget, "bid_type": bid_type, **common} | (
        {"bid_price": bid} if bid else {}
    )


TIKTOK_CAMPAIGNS = [
    _tiktok_campaign("301", "TikTok | Prospecting | Wellbeing App", "ENABLE"),
    _tiktok_campaign("302", "TikTok | Retargeting", "DISABLE"),
    _tiktok_campaign("303", "TikTok | Lowest Cost", "ENABLE"),
]
TIKTOK_AD_GROUPS = [
    _tiktok_ad_group("3301", "301", 50.0, "BID_TYPE_CUSTOM", 12.0),
    _tiktok_ad_group("3302", "302", 60.0, "BID_TYPE_CUSTOM", 9.0),
    _tiktok_ad_group("3303", "303", 40.0, "BID_TYPE_NO_BID"),
]


def tiktok_pages(page_size: int = 2):
    """An answer to /campaign/get/ and /adgroup/get/ for advertiser 7000, `page_size` objects a page."""

    def answer(sent):
        kind = "campaign" if "/campaign/get/" in sent["path"] else "adgroup"
        objects = TIKTOK_CAMPAIGNS if kind == "campaign" else TIKTOK_AD_GROUPS
        fields = json.loads(sent["query"]["fields"])
        page = int(sent["query"].get("page", 1))
        chunk = objects[(page - 1) * page_size : page * page_size]
        listed = [{k: v for k, v in o.items() if k in fields} for o in chunk]
        total = -(-len(objects) // page_size)
        info = {"page": page, "page_size": page_size, "total_number": len(objects), "total_page": total}
        data = {"list": listed, "page_info": info}
        return 200, {"code": 0, "message": "OK", "request_id": f"r-{kind}-{page}", "data": data}

    return answer


# -- Microsoft Advertising --------------------------------------------------------------------------------------
MS_SUFFIX = "utm_source=bing&amp;utm_medium=cpc"  # XML-escaped, as on the wire


def _ms_campaign(cid, name, status, scheme, budget, budget_id=None, suffix=None):
    budget_id_xml = f"<BudgetId>{budget_id}</BudgetId>" if budget_id else '<BudgetId i:nil="true"/>'
    suffix_xml = f"<FinalUrlSuffix>{suffix}</FinalUrlSuffix>" if suffix else ""
    return (
        f'<Campaign><BiddingScheme i:type="{scheme}BiddingScheme"><Type>{scheme}</Type></BiddingScheme>'
        f"<BudgetType>DailyBudgetStandard</BudgetType><DailyBudget>{budget}</DailyBudget>{suffix_xml}"
        f"<Id>{cid}</Id><Name>{name}</Name><Status>{status}</Status><CampaignType>Search</CampaignType>"
        f"{budget_id_xml}</Campaign>"
    )


MS_CAMPAIGNS = [
    _ms_campaign(401, "Microsoft | Search | Parental Controls", "Active", "ManualCpc", 50.0, suffix=MS_SUFFIX),
    _ms_campaign(402, "Microsoft | Search | Brand", "Paused", "ManualCpc", 20.0),
    _ms_campaign(403, "Microsoft | Search | Max Conv", "Active", "MaxConversions", 30.0),
    _ms_campaign(404, "Microsoft | Search | Shared", "Active", "ManualCpc", 0.0, budget_id=777),
    _ms_campaign(405, "Microsoft | Search | New", "Active", "ManualCpc", 10.0),  # no ad group yet
]
MS_AD_GROUPS = {
    "401": [(4401, "Active", 2.5), (4402, "Paused", 2.5), (4409, "Deleted", 1.0)],
    "402": [(4403, "Active", 1.5)],
    "403": [(4404, "Active", 1.0)],
    "404": [(4405, "Active", 2.0)],
}


def ms_envelope(body: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<s:Header><h:TrackingId xmlns:h="{MS_NS}">trk-disc</h:TrackingId></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def microsoft_soap(method: str, xml: str):
    """An answer to GetCampaignsByAccountId and GetAdGroupsByCampaignId for account 111."""
    if method == "GetCampaignsByAccountId":
        inner = f"<Campaigns>{''.join(MS_CAMPAIGNS)}</Campaigns>"
    else:
        campaign = xml.split("CampaignId>")[1].split("<")[0]
        groups = "".join(
            f"<AdGroup><CpcBid><Amount>{bid}</Amount></CpcBid><Id>{gid}</Id><Name>ad group {gid}</Name>"
            f"<Status>{status}</Status></AdGroup>"
            for gid, status, bid in MS_AD_GROUPS.get(campaign, [])
        )
        inner = f"<AdGroups>{groups}</AdGroups>" if groups else "<AdGroups/>"
    body = f'<{method}Response xmlns="{MS_NS}" xmlns:i="{XSI}">{inner}</{method}Response>'
    return 200, ms_envelope(body)


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
