"""A TikTok advertiser's campaigns and ad groups (Marketing API v1.3 through the Business API SDK: `/campaign/get/`
and `/adgroup/get/`, paged by `page` until `page_info.total_page`) turned into `DiscoveredCampaign`s.

GAELP's TikTok push sets an ad group's `budget` and `bid_price` (a CPM bid cap). So a campaign is manageable when
exactly one of its ad groups has a daily budget (`BUDGET_MODE_DAY` / `BUDGET_MODE_DYNAMIC_DAILY_BUDGET`: the budget
target) and at least one bids a custom CPM (`billing_event` CPM, `bid_type` not `BID_TYPE_NO_BID`: the bid targets).
Campaign budget optimization (the budget on the campaign) and lowest-cost bidding (TikTok sets the bids) are not
manageable. Amounts are in the account currency. Deleted ad groups are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign, DiscoveryError, campaign_id

CAMPAIGN_FIELDS = ("campaign_id", "campaign_name", "operation_status", "budget_mode", "budget", "budget_optimize_on")
AD_GROUP_FIELDS = (
    "adgroup_id",
    "campaign_id",
    "operation_status",
    "budget_mode",
    "budget",
    "bid_type",
    "bid_price",
    "billing_event",
)
DAILY_BUDGET_MODES = ("BUDGET_MODE_DAY", "BUDGET_MODE_DYNAMIC_DAILY_BUDGET")
STATUS = {"ENABLE": "enabled", "DISABLE": "paused", "DELETE": "removed"}
PAGE_SIZE = 1000
MAX_PAGES = 10_000

# one SDK get call: (kind "campaign" | "adgroup", fields, page, page_size) -> the decoded answer
TikTokGet = Callable[[str, tuple[str, ...], int, int], dict]


def pages(get: TikTokGet, kind: str, fields: tuple[str, ...], advertiser_id: str) -> Iterator[dict]:
    """Every object of a get endpoint, page 1 to `page_info.total_page`."""
    page = 1
    while page <= MAX_PAGES:
        answer = get(kind, fields, page, PAGE_SIZE)
        data = answer.get("data") if isinstance(answer, dict) else None
        listed = data.get("list") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise DiscoveryError(f"TikTok {kind}/get (advertiser {advertiser_id}): no list in {str(answer)[:200]}")
        yield from listed
        total = (data.get("page_info") or {}).get("total_page") or 1
        if page >= int(total):
            return
        page += 1
    raise DiscoveryError(f"TikTok {kind}/get (advertiser {advertiser_id}): more than {MAX_PAGES} pages")


def _amount(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _bids(ad_group: dict) -> bool:
    return ad_group.get("billing_event") == "CPM" and ad_group.get("bid_type") not in (None, "BID_TYPE_NO_BID")


def discover(get: TikTokGet, advertiser_id: str) -> DiscoveredAccount:
    advertiser_id = str(advertiser_id)
    groups: dict[str, list[dict]] = {}
    for ad_group in pages(get, "adgroup", AD_GROUP_FIELDS, advertiser_id):
        if ad_group.get("operation_status") != "DELETE":
            groups.setdefault(str(ad_group.get("campaign_id")), []).append(ad_group)
    campaigns = []
    for c in pages(get, "campaign", CAMPAIGN_FIELDS, advertiser_id):
        cid = campaign_id(c.get("campaign_id"), f"TikTok advertiser {advertiser_id}")
        mine = sorted(groups.get(str(cid), []), key=lambda g: int(g["adgroup_id"]))
        daily = [g for g in mine if g.get("budget_mode") in DAILY_BUDGET_MODES]
        bidding = [g for g in mine if _bids(g)]
        types = sorted({str(g.get("bid_type")) for g in mine}) or ["?"]
        reason = None
        if c.get("budget_optimize_on"):
            reason = "campaign budget optimization (the budget is on the campaign); GAELP sets ad group budgets"
        elif not bidding:
            reason = f"no ad group bids a custom CPM ({'/'.join(types)}): TikTok sets the bids; GAELP sets bid caps"
        elif len(daily) != 1:
            held = ", ".join(g["adgroup_id"] for g in daily) or "none"
            reason = f"one ad group must hold the campaign's daily budget; ad groups with one: {held}"
        budget = daily[0] if len(daily) == 1 else None
        campaigns.append(
            DiscoveredCampaign(
                platform="tiktok",
                account=advertiser_id,
                campaign_id=cid,
                name=str(c.get("campaign_name", "")),
                status=STATUS.get(str(c.get("operation_status")), "paused"),
                bidding_strategy="/".join(types),
                manageable=reason is None,
                reason=reason,
                budget_target=str(budget["adgroup_id"]) if budget else None,
                budget_amount=_amount(budget.get("budget")) if budget else None,
                bid_targets=tuple(str(g["adgroup_id"]) for g in bidding),
                bid=_amount(bidding[0].get("bid_price")) if bidding else None,
            )
        )
    campaigns.sort(key=lambda c: c.campaign_id)
    return DiscoveredAccount("tiktok", advertiser_id, tuple(campaigns))
