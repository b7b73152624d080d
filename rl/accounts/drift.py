"""What GAELP manages against what the platforms hold now: the reasons a managed campaign must not be pushed to
(removed, switched to an automated strategy, its budget or ad groups no longer its own, a shared budget nobody
declared), and the campaigns the platforms list that the registry does not (proposals, never managed silently).

Used the same way by `check` (the review file against a fresh discovery), by the push (each plan row against the
platform just before sending: a drifted campaign's changes are not sent) and by the daily `account_structure`
asset (the registry and targets against the platforms, in the UI).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign


@dataclass(frozen=True)
class Drift:
    """Why one managed campaign must not be pushed to, in words a marketer acts on."""

    platform: str
    campaign_id: int
    reasons: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"{self.platform}/{self.campaign_id}: " + "; ".join(self.reasons)


def campaign_problems(
    platform: str,
    campaign_id: int,
    budget_target: str | None,
    bid_targets: Iterable[str],
    found: DiscoveredCampaign | None,
    shared_declared: bool = False,
) -> list[tuple[str, str]]:
    """Why GAELP must not push `budget_target` and `bid_targets` for this campaign as the platform holds it now, as
    (review file column, reason) pairs (an empty list: nothing against it). `found` is the discovered campaign
    (None: the platform does not list it)."""
    if found is None:
        return [("campaign_id", f"not found on {platform} (removed, or not visible to GAELP's login)")]
    if found.status == "removed":
        return [("campaign_id", f"removed on {platform}")]
    out = []
    if not found.manageable:
        out.append(("managed", f"not manageable: {found.reason}"))
    if budget_target and found.budget_target and budget_target != found.budget_target:
        text = f"budget target {budget_target} is not this campaign's (the platform says {found.budget_target})"
        out.append(("budget_target", text))
    elif budget_target and not found.budget_target:
        text = f"budget target {budget_target}: the platform shows no budget GAELP can set for this campaign"
        out.append(("budget_target", text))
    stray = [t for t in bid_targets if t not in found.bid_targets]
    if stray:
        held = ";".join(found.bid_targets) or "none"
        text = f"bid target(s) {';'.join(stray)} do not hold this campaign's bid (the platform's: {held})"
        out.append(("bid_targets", text))
    if found.budget_shared and not shared_declared:
        text = f"budget {found.budget_target} is shared with other campaigns and its sharing is not declared"
        out.append(("allow_shared_budget", text))
    return out


def index(accounts: Iterable[DiscoveredAccount]) -> dict[tuple[str, int], DiscoveredCampaign]:
    return {c.key: c for a in accounts for c in a.campaigns}


def managed_drift(
    managed: Iterable[tuple[str, int, str | None, tuple[str, ...]]],
    accounts: Iterable[DiscoveredAccount],
    declared: set[tuple[str, str]] = frozenset(),
) -> list[Drift]:
    """The drift of each managed (platform, campaign id, budget target, bid targets) on a platform that was
    discovered; `declared`: the (platform, budget target) pairs whose sharing was declared."""
    accounts = list(accounts)
    found = index(accounts)
    connected = {a.platform for a in accounts}
    out = []
    for platform, cid, budget_target, bid_targets in managed:
        if platform not in connected:
            continue
        shared_ok = (platform, budget_target or "") in declared
        here = found.get((platform, cid))
        reasons = [text for _, text in campaign_problems(platform, cid, budget_target, bid_targets, here, shared_ok)]
        if reasons:
            out.append(Drift(platform, cid, tuple(reasons)))
    return out


def blocked_rows(rows: Iterable, accounts: Iterable[DiscoveredAccount], declared: set[tuple[str, str]]) -> dict:
    """(platform, campaign id) -> why its plan row must not be pushed, for plan rows (`rl.bidding.plan.PlanRow`)."""
    managed = [(r.platform, r.campaign_id, r.budget_target, tuple(r.bid_targets)) for r in rows]
    return {(d.platform, d.campaign_id): "; ".join(d.reasons) for d in managed_drift(managed, accounts, declared)}


def proposals(known: Iterable[tuple[str, int]], accounts: Iterable[DiscoveredAccount]) -> list[DiscoveredCampaign]:
    """Campaigns the platforms list (not removed) that are not among `known` (the registry's)."""
    known = set(known)
    return [c for a in accounts for c in a.campaigns if c.key not in known and c.status != "removed"]


def paused_but_managed(managed: Collection[tuple[str, int]], accounts: Iterable[DiscoveredAccount]) -> list:
    """Managed campaigns paused on their platform: their pushes are harmless but their budget is not spent."""
    return [c for a in accounts for c in a.campaigns if c.key in managed and c.status == "paused"]
