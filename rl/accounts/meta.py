"""A Meta ad account's campaigns and ad sets (Graph API v26.0 through the Business SDK: `GET act_<id>/campaigns` and
`GET act_<id>/adsets`, cursor-paged) turned into `DiscoveredCampaign`s.

GAELP's Meta push sets an ad set's `daily_budget` and `bid_amount` (a bid cap). So a campaign is manageable when
exactly one of its ad sets holds a daily budget (the budget target) and at least one bids with a cap
(`LOWEST_COST_WITH_BID_CAP`: the bid targets). A campaign with Advantage campaign budget (the budget on the campaign)
or whose ad sets all bid without a cap (`LOWEST_COST_WITHOUT_CAP`, cost caps, minimum ROAS: Meta sets the bids) is
not. Amounts are in the account currency's minor unit (cents). Deleted and archived ad sets are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign, DiscoveryError, campaign_id

CAMPAIGN_FIELDS = ("id", "name", "status", "effective_status", "daily_budget", "lifetime_budget", "bid_strategy")
AD_SET_FIELDS = (
    "id",
    "name",
    "campaign_id",
    "status",
    "daily_budget",
    "lifetime_budget",
    "bid_strategy",
    "bid_amount",
)
BID_CAP = "LOWEST_COST_WITH_BID_CAP"
STATUS = {"ACTIVE": "enabled", "PAUSED": "paused", "DELETED": "removed", "ARCHIVED": "removed"}
PAGE_LIMIT = 500
MAX_PAGES = 10_000

# one Graph GET: (path, params) -> the JSON body
GraphGet = Callable[[str, dict], dict]


def pages(get: GraphGet, path: str, fields: tuple[str, ...]) -> Iterator[dict]:
    """Every object of an edge, following the `after` cursor while the answer has a next page."""
    params: dict = {"fields": ",".join(fields), "limit": PAGE_LIMIT}
    for _ in range(MAX_PAGES):
        body = get(path, params)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise DiscoveryError(f"Meta GET {path}: an answer without a data list: {str(body)[:200]}")
        yield from data
        paging = body.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        if not paging.get("next") or not after:
            return
        params = {**params, "after": after}
    raise DiscoveryError(f"Meta GET {path}: more than {MAX_PAGES} pages")


def _cents(value) -> float | None:
    return int(value) / 100 if value not in (None, "", "0", 0) else None


def discover(get: GraphGet, ad_account_id: str) -> DiscoveredAccount:
    account = ad_account_id if ad_account_id.startswith("act_") else f"act_{ad_account_id}"
    ad_sets: dict[str, list[dict]] = {}
    for ad_set in pages(get, f"{account}/adsets", AD_SET_FIELDS):
        if ad_set.get("status") not in ("DELETED", "ARCHIVED"):
            ad_sets.setdefault(str(ad_set.get("campaign_id")), []).append(ad_set)
    campaigns = []
    for c in pages(get, f"{account}/campaigns", CAMPAIGN_FIELDS):
        cid = campaign_id(c.get("id"), f"Meta {account}")
        sets = sorted(ad_sets.get(str(cid), []), key=lambda a: int(a["id"]))
        budgets = [a for a in sets if _cents(a.get("daily_budget"))]
        capped = [a for a in sets if a.get("bid_strategy") == BID_CAP]
        strategies = sorted({str(a.get("bid_strategy") or "?") for a in sets} or {str(c.get("bid_strategy") or "?")})
        reason = None
        if _cents(c.get("daily_budget")) or _cents(c.get("lifetime_budget")):
            reason = "Advantage campaign budget (the budget is on the campaign); GAELP's Meta push sets ad set budgets"
        elif not capped:
            reason = f"no ad set bids with a cap ({'/'.join(strategies)}): Meta sets the bids; GAELP sets bid caps"
        elif len(budgets) != 1:
            held = ", ".join(a["id"] for a in budgets) or "none (lifetime budgets only)"
            reason = f"one ad set must hold the campaign's daily budget; ad sets with one: {held}"
        budget = budgets[0] if len(budgets) == 1 else None
        campaigns.append(
            DiscoveredCampaign(
                platform="meta",
                account=account,
                campaign_id=cid,
                name=str(c.get("name", "")),
                status=STATUS.get(str(c.get("status")), "paused"),
                bidding_strategy="/".join(strategies),
                manageable=reason is None,
                reason=reason,
                budget_target=str(budget["id"]) if budget else None,
                budget_amount=_cents(budget.get("daily_budget")) if budget else None,
                budget_shared=False,  # an ad set's budget is its own
                bid_targets=tuple(str(a["id"]) for a in capped),
                bid=_cents(capped[0].get("bid_amount")) if capped else None,
            )
        )
    campaigns.sort(key=lambda c: c.campaign_id)
    return DiscoveredAccount("meta", account, tuple(campaigns))
