"""Accounts: the ad accounts' structure as the platforms list it every day (`account_structure`), compared with what
GAELP manages.

It writes the day's proposal (the review file as `gaelp accounts discover` would make it, next to the review file,
never over it) and shows in the UI the campaigns the platforms list, the new ones (proposals: never managed until
someone sets `managed` and runs `gaelp accounts check --write`) and the managed campaigns that drifted (removed,
switched to an automated strategy, their budget or ad groups no longer their own): its check fails for those, and
the push does not send their changes (`bid_push`).
"""

import dagster as dg
import polars as pl

from assets import _preview
from orchestration import accounts as wiring
from orchestration.resources.platforms import BidPlatform
from rl.accounts import drift as drifting
from rl.accounts.review import ReviewError, propose, read_review, write_review
from rl.bidding.plan import PlanError
from rl.campaign_registry import CampaignRegistry

DRIFT_CHECK = "managed_campaigns_match_platforms"


def _managed(registry: CampaignRegistry) -> tuple[list[tuple], list[str]]:
    """The registry's managed (enabled) campaigns with the targets the plan pushes to; and those without targets."""
    lookup = wiring.targets_lookup()
    managed, missing = [], []
    for c in registry.campaigns:
        if c.status != "enabled":
            continue
        budget_target, bid_targets = None, ()
        if lookup is not None:
            try:
                budget_target, bid_targets = lookup(c.platform, c.campaign_id)
            except PlanError as e:
                missing.append(str(e))
        managed.append((c.platform, c.campaign_id, budget_target, tuple(bid_targets)))
    return managed, missing


@dg.asset(
    group_name="accounts",
    kinds={"python"},
    check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset="account_structure")],
)
def account_structure(
    context: dg.AssetExecutionContext,
    bid_google_ads: BidPlatform,
    bid_meta: BidPlatform,
    bid_tiktok: BidPlatform,
    bid_microsoft_ads: BidPlatform,
) -> dg.MaterializeResult:
    """Every campaign of the connected ad accounts with its status, bidding strategy and whether GAELP can manage it;
    the new campaigns as proposals; the managed campaigns the platforms no longer hold as GAELP's registry says
    (the check fails for them, and their pushes are not sent)."""
    resources = {"google_ads": bid_google_ads, "meta": bid_meta, "tiktok": bid_tiktok}
    accounts, failed = wiring.discover({**resources, "microsoft_ads": bid_microsoft_ads})
    if not accounts:
        raise dg.Failure("account_structure: no platform could be read", metadata=failed)
    registry = CampaignRegistry.load()
    status = {(c.platform, c.campaign_id): c.status for c in registry.campaigns}
    managed, no_targets = _managed(registry)
    drifted = drifting.managed_drift(managed, accounts, wiring.declared_shared())
    new = drifting.proposals(status, accounts)
    review = wiring.accounts_file()
    try:
        existing = read_review(review) if review.exists() else None
    except ReviewError as e:
        existing = None
        context.log.warning(f"the review file does not read; the proposal starts from the registry's view: {e}")
    proposal = wiring.proposal_file()
    write_review(proposal, propose(accounts, existing))
    listed = pl.DataFrame(
        [
            {
                "platform": c.platform,
                "campaign_id": c.campaign_id,
                "name": c.name,
                "status": c.status,
                "bidding_strategy": c.bidding_strategy,
                "in_registry": status.get(c.key, "new"),
                "manageable": c.manageable,
                "why_not": c.reason or "",
            }
            for a in accounts
            for c in a.campaigns
        ]
    )
    problems = [d.message for d in drifted] + no_targets
    problems += [f"{platform}: could not be read: {why}" for platform, why in failed.items()]
    paused = drifting.paused_but_managed({k for k, v in status.items() if v == "enabled"}, accounts)
    metadata = {
        "campaigns": _preview.table(listed, "no campaign on the connected platforms", max_rows=500),
        "proposals": _preview.bullets(
            [f"{c.platform}/{c.campaign_id} {c.name} ({c.status}; {c.reason or 'manageable'})" for c in new],
            "no new campaign: every campaign the platforms list is in the registry",
        ),
        "drift": _preview.bullets(problems, "no drift: every managed campaign is as the registry says"),
        "managed_but_paused": _preview.bullets(
            [f"{c.platform}/{c.campaign_id} {c.name}" for c in paused], "no managed campaign is paused on its platform"
        ),
        "proposal_file": dg.MetadataValue.path(str(proposal)),
        "accounts": ", ".join(f"{a.platform}: {a.account} ({len(a.campaigns)})" for a in accounts),
        "dagster/row_count": dg.MetadataValue.int(listed.height),
    }
    check = dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not problems,
        metadata={"failures": _preview.bullets(problems, "none"), "count": len(problems)},
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


ACCOUNT_ASSETS = [account_structure]
