"""An ad account's structure as discovery found it: per campaign, its status, bidding strategy, the object holding
its daily budget and the objects holding its bid, and whether GAELP can manage it (and if not, why).

The same shape for every platform, whatever the platform calls things: `budget_target` and `bid_targets` mean what
they mean in a plan row (`rl.bidding.plan`): a Google Ads campaign budget and ad groups, a Microsoft Advertising
campaign and ad groups, Meta ad sets, TikTok ad groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("enabled", "paused", "removed")


class DiscoveryError(RuntimeError):
    """A platform could not be read, or answered with something that is not its API's answer; the message names the
    platform, the account and the call."""


@dataclass(frozen=True)
class Utm:
    """The UTM parameters a campaign's own URL suffix or tracking template carries (None: not set there)."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None


@dataclass(frozen=True)
class DiscoveredCampaign:
    """One campaign as its platform holds it now.

    `status`: enabled, paused or removed. `bidding_strategy`: the platform's own name for it (MANUAL_CPC,
    MAXIMIZE_CONVERSIONS, LOWEST_COST_WITH_BID_CAP...). `manageable`: GAELP can set its daily budget and its bid
    (the strategy takes manual bids or a bid cap, one object holds the daily budget, at least one holds a bid);
    otherwise `reason` says why not. `budget_shared`: the budget object also funds other campaigns."""

    platform: str
    account: str
    campaign_id: int
    name: str
    status: str
    bidding_strategy: str
    manageable: bool
    reason: str | None = None
    budget_target: str | None = None
    budget_amount: float | None = None
    budget_shared: bool = False
    bid_targets: tuple[str, ...] = ()
    bid: float | None = None
    utm: Utm = field(default_factory=Utm)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"{self.platform} campaign {self.campaign_id}: status {self.status!r} not in {STATUSES}")
        if not self.manageable and not self.reason:
            raise ValueError(f"{self.platform} campaign {self.campaign_id}: not manageable needs a reason")

    @property
    def key(self) -> tuple[str, int]:
        return self.platform, self.campaign_id


@dataclass(frozen=True)
class DiscoveredAccount:
    """Every campaign of one platform account, in the platform's id order."""

    platform: str
    account: str
    campaigns: tuple[DiscoveredCampaign, ...]

    def by_id(self) -> dict[int, DiscoveredCampaign]:
        return {c.campaign_id: c for c in self.campaigns}


def campaign_id(value: object, where: str) -> int:
    """A platform's campaign id as GAELP keys it (a positive integer); a DiscoveryError naming `where` otherwise."""
    try:
        number = int(str(value))
    except ValueError:
        raise DiscoveryError(f"{where}: campaign id {value!r} is not a number") from None
    if number <= 0:
        raise DiscoveryError(f"{where}: campaign id {value!r} is not a positive number")
    return number
