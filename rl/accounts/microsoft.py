"""A Microsoft Advertising account's campaigns and ad groups (Campaign Management API v13 through the bingads SDK:
`GetCampaignsByAccountId`, then `GetAdGroupsByCampaignId` per campaign; neither is paged) turned into
`DiscoveredCampaign`s.

Microsoft holds a campaign's daily budget on the campaign itself (`Campaign.DailyBudget`), so the budget target is
the campaign's id; the bid targets are its ad groups (`AdGroup.CpcBid`). A campaign on a shared budget
(`BudgetId` set) cannot have its own daily budget set, and a bidding scheme other than Manual CPC or Enhanced CPC
(Maximize Conversions, Target CPA...) sets the bids itself: neither is manageable. Deleted ad groups are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign, DiscoveryError, campaign_id
from rl.accounts.naming import parse_utm

# CampaignType is a list of flags, sent as one space-separated value (the SOAP form Microsoft documents)
CAMPAIGN_TYPES = "Search Shopping Audience PerformanceMax"
MANUAL_SCHEMES = ("ManualCpc", "EnhancedCpc")
STATUS = {
    "Active": "enabled",
    "Paused": "paused",
    "BudgetPaused": "paused",
    "BudgetAndManualPaused": "paused",
    "Suspended": "paused",
    "Deleted": "removed",
}

# one SOAP call of the Campaign Management service: (operation, **arguments) -> the SDK's response object
SoapCall = Callable[..., Any]


def items(value: Any, name: str) -> list:
    """A suds array (`ArrayOfX` holding a list under `name`, '' or None when empty), or a response wrapping one
    under its plural (suds unwraps a response with a single element), as a Python list."""
    if value is None or isinstance(value, str):
        return []
    inner = getattr(value, f"{name}s", None)
    if inner is not None and not isinstance(inner, list):
        value = inner
    found = getattr(value, name, None)
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _scheme(campaign: Any) -> str:
    scheme = getattr(campaign, "BiddingScheme", None)
    kind = getattr(scheme, "Type", None) if scheme is not None else None
    if not kind and scheme is not None:  # a typed scheme without Type: its class name (ManualCpcBiddingScheme)
        kind = type(scheme).__name__.removesuffix("BiddingScheme")
    return str(kind or "?")


def discover(call: SoapCall, account_id: str) -> DiscoveredAccount:
    account_id = str(account_id)
    response = call("GetCampaignsByAccountId", AccountId=int(account_id), CampaignType=CAMPAIGN_TYPES)
    campaigns = []
    for c in items(response, "Campaign"):
        where = f"Microsoft Advertising account {account_id}"
        if getattr(c, "Id", None) is None:
            raise DiscoveryError(f"{where}: a campaign without an Id in GetCampaignsByAccountId's answer")
        cid = campaign_id(c.Id, where)
        groups = [
            g
            for g in items(call("GetAdGroupsByCampaignId", CampaignId=cid), "AdGroup")
            if getattr(g, "Id", None) is not None and str(getattr(g, "Status", "")) != "Deleted"
        ]
        groups.sort(key=lambda g: int(g.Id))
        scheme = _scheme(c)
        shared = getattr(c, "BudgetId", None) not in (None, "", 0)
        kind = getattr(c, "CampaignType", None) or "Search"
        kind = " ".join(map(str, kind)) if isinstance(kind, list) else str(kind)
        reason = None
        if scheme not in MANUAL_SCHEMES:
            reason = f"bidding scheme {scheme} sets bids itself; GAELP sets max CPC bids (Manual CPC)"
        elif shared:
            reason = f"uses shared budget {c.BudgetId}: Microsoft does not take a daily budget for the campaign alone"
        elif not groups:
            reason = "no ad group to set a max CPC on"
        bid = getattr(groups[0], "CpcBid", None) if groups else None
        campaigns.append(
            DiscoveredCampaign(
                platform="microsoft_ads",
                account=account_id,
                campaign_id=cid,
                name=str(getattr(c, "Name", "") or ""),
                status=STATUS.get(str(getattr(c, "Status", "")), "paused"),
                bidding_strategy=scheme if kind == "Search" else f"{scheme} ({kind})",
                manageable=reason is None,
                reason=reason,
                budget_target=str(cid),
                budget_amount=_number(getattr(c, "DailyBudget", None)),
                budget_shared=shared,
                bid_targets=tuple(str(g.Id) for g in groups),
                bid=_number(getattr(bid, "Amount", None)),
                utm=parse_utm(getattr(c, "FinalUrlSuffix", None), getattr(c, "TrackingUrlTemplate", None)),
            )
        )
    campaigns.sort(key=lambda c: c.campaign_id)
    return DiscoveredAccount("microsoft_ads", account_id, tuple(campaigns))
