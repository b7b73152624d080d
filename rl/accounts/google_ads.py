"""A Google Ads account's campaigns, budgets and ad groups, read with three GAQL queries (API v26,
`GoogleAdsService.Search`, page by page) and turned into `DiscoveredCampaign`s.

GAELP sets a campaign budget's daily amount and its ad groups' max CPC (`cpc_bid_micros`), which only Manual CPC
uses (and Enhanced CPC, which adjusts it): a campaign on any other strategy (Maximize Conversions, Target CPA,
Target ROAS, Maximize Clicks...) sets its own bids and is not manageable. A budget is shared when it is explicitly
shared or funds more than one campaign. Removed ad groups are not bid targets; paused ones are (so a re-enabled ad
group does not come back with a stale bid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign, DiscoveryError, campaign_id
from rl.accounts.naming import parse_utm

CAMPAIGNS_QUERY = (
    "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type, "
    "campaign.bidding_strategy_type, campaign.campaign_budget, campaign.final_url_suffix "
    "FROM campaign ORDER BY campaign.id"
)
BUDGETS_QUERY = (
    "SELECT campaign_budget.id, campaign_budget.amount_micros, campaign_budget.explicitly_shared, "
    "campaign_budget.reference_count, campaign_budget.status FROM campaign_budget ORDER BY campaign_budget.id"
)
AD_GROUPS_QUERY = (
    "SELECT campaign.id, ad_group.id, ad_group.name, ad_group.status, ad_group.cpc_bid_micros "
    "FROM ad_group WHERE ad_group.status != 'REMOVED' ORDER BY campaign.id, ad_group.id"
)
MANUAL_STRATEGIES = ("MANUAL_CPC", "ENHANCED_CPC")
STATUS = {"ENABLED": "enabled", "PAUSED": "paused", "REMOVED": "removed"}
MAX_PAGES = 10_000  # a guard against a server that keeps answering with a page token

# one Search call: (SearchGoogleAdsRequest) -> a page (SearchGoogleAdsResponse, or the SDK's pager over it)
SearchPage = Callable[[Any], Any]


def rows(search_page: SearchPage, customer_id: str, query: str) -> Iterator[Any]:
    """Every `GoogleAdsRow` of a query, page after page (`next_page_token`)."""
    # deferred: a prod SDK, loaded on first use
    from google.ads.googleads.v26.services.types.google_ads_service import SearchGoogleAdsRequest

    token = ""
    for _ in range(MAX_PAGES):
        page = search_page(SearchGoogleAdsRequest(customer_id=customer_id, query=query, page_token=token))
        yield from page.results
        token = page.next_page_token
        if not token:
            return
    raise DiscoveryError(f"Google Ads customer {customer_id}: more than {MAX_PAGES} pages for {query!r}")


def discover(search_page: SearchPage, customer_id: str) -> DiscoveredAccount:
    """The account's campaigns (removed ones included, status "removed") with their budget and ad groups."""
    budgets = {}
    for row in rows(search_page, customer_id, BUDGETS_QUERY):
        b = row.campaign_budget
        budgets[str(b.id)] = (b.amount_micros / 1e6, bool(b.explicitly_shared) or b.reference_count > 1, b.status.name)
    ad_groups: dict[int, list[tuple[str, str, float]]] = {}
    for row in rows(search_page, customer_id, AD_GROUPS_QUERY):
        g = row.ad_group
        ad_groups.setdefault(row.campaign.id, []).append((str(g.id), g.status.name, g.cpc_bid_micros / 1e6))
    campaigns = []
    for row in rows(search_page, customer_id, CAMPAIGNS_QUERY):
        c = row.campaign
        where = f"Google Ads customer {customer_id}, campaign {c.id}"
        cid = campaign_id(c.id, where)
        budget_id = c.campaign_budget.rsplit("/", 1)[-1] if c.campaign_budget else None
        amount, shared, budget_status = budgets.get(budget_id or "", (None, False, None))
        groups = ad_groups.get(c.id, [])
        strategy = c.bidding_strategy_type.name
        reason = None
        if strategy not in MANUAL_STRATEGIES:
            reason = f"bidding strategy {strategy} sets bids itself; GAELP sets max CPC bids (Manual CPC)"
        elif budget_id is None or budget_status != "ENABLED":
            reason = "no campaign budget GAELP can read (none, removed or not visible to this login)"
        elif not groups:
            reason = "no ad group to set a max CPC on"
        campaigns.append(
            DiscoveredCampaign(
                platform="google_ads",
                account=customer_id,
                campaign_id=cid,
                name=c.name,
                status=STATUS.get(c.status.name, "paused"),
                bidding_strategy=strategy,
                manageable=reason is None,
                reason=reason,
                budget_target=budget_id,
                budget_amount=amount,
                budget_shared=shared,
                bid_targets=tuple(g[0] for g in groups),
                bid=groups[0][2] if groups else None,
                utm=parse_utm(c.final_url_suffix),
            )
        )
    return DiscoveredAccount("google_ads", customer_id, tuple(campaigns))
