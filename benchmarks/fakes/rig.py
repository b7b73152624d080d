"""Each platform's real push resource wired to its fake server at the SDK's lowest network layer, with a small
account of two campaigns and plan rows over it.

The platform object ids differ from GAELP's campaign ids on purpose (Microsoft campaign 9401 is GAELP campaign
401), as they do in a real account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.fakes.server import FakeServer
from orchestration.resources.platforms.base import BidPlatform
from rl.bidding.plan import PlanRow

PLATFORMS = ("google_ads", "meta", "tiktok", "microsoft_ads")
SECRETS = ("dev-token-DO-NOT-LOG", "client-secret-DO-NOT-LOG", "refresh-token-DO-NOT-LOG", "access-token-DO-NOT-LOG")


@dataclass(frozen=True)
class Campaign:
    """One campaign of the fake account: its GAELP id and the platform objects holding its budget and bid."""

    campaign_id: int
    budget_target: str
    bid_targets: tuple[str, ...]
    budget: float
    bid: float


ACCOUNTS: dict[str, tuple[Campaign, ...]] = {
    "google_ads": (Campaign(101, "9001", ("7001", "7002"), 50.0, 2.0), Campaign(102, "9002", ("7003",), 80.0, 3.0)),
    "meta": (Campaign(201, "2201", ("2201",), 40.0, 12.0), Campaign(202, "2202", ("2202",), 30.0, 20.0)),
    "tiktok": (Campaign(301, "3301", ("3301",), 50.0, 12.0), Campaign(302, "3302", ("3302",), 60.0, 9.0)),
    "microsoft_ads": (Campaign(401, "9401", ("4401", "4402"), 50.0, 2.5), Campaign(402, "9402", ("4403",), 40.0, 2.0)),
}


@dataclass
class Rig:
    """A platform resource and the fake server it talks to (`server.values` is what the platform holds)."""

    platform: str
    resource: BidPlatform
    server: FakeServer
    wire: Any  # the fake transport (channel, adapter, urlopen or suds transport), with its recorded calls
    campaigns: tuple[Campaign, ...] = field(default=())

    def rows(self, partition: str, budgets: dict[int, float], bids: dict[int, float], policy: str = "p1") -> list:
        """Plan rows setting these budgets and bids (by GAELP campaign id); `current_*` are what the server held
        when the plan was made (as the warehouse would report it)."""
        out = []
        for c in self.campaigns:
            out.append(
                PlanRow(
                    platform=self.platform,
                    campaign_id=c.campaign_id,
                    daily_budget=budgets.get(c.campaign_id),
                    bid=bids.get(c.campaign_id),
                    current_budget=self.server.values[("budget", c.budget_target)],
                    current_bid=self.server.values[("bid", c.bid_targets[0])],
                    policy_version=policy,
                    data_partition=partition,
                    budget_target=c.budget_target,
                    bid_targets=c.bid_targets,
                )
            )
        return out

    def state(self) -> dict[tuple[str, str], float]:
        return dict(self.server.values)

    def reset(self) -> Rig:
        """A fresh account on the same resource and wire (building SDK clients again is slow, and suds runs out
        of namespace prefixes after some hundreds of clients over one cached WSDL)."""
        self.server.values.clear()
        self.server.values.update(initial_values(self.platform))
        self.server.owners.clear()
        self.server.log.clear()
        self.server.faults = lambda call, op: None
        return self


def initial_values(platform: str) -> dict[tuple[str, str], float]:
    values = {}
    for c in ACCOUNTS[platform]:
        values[("budget", c.budget_target)] = c.budget
        for target in c.bid_targets:
            values[("bid", target)] = c.bid
    return values


def make_rig(platform: str, *, live: bool = True, retry_attempts: int = 3, timeout: float = 30.0) -> Rig:
    """The platform's resource (no retry waits) over a fresh fake server holding `ACCOUNTS[platform]`."""
    server = FakeServer(values=initial_values(platform))
    common = {"live_pushing_enabled": live, "retry_attempts": retry_attempts, "retry_base_seconds": 0.0}
    common["timeout_seconds"] = timeout
    if platform == "google_ads":
        from benchmarks.fakes.google_ads import FakeGoogleAdsServer, sdk_client, serving
        from orchestration.resources.platforms.google_ads import GoogleAdsBidPlatform

        wire = FakeGoogleAdsServer(server)
        resource = GoogleAdsBidPlatform(
            developer_token=SECRETS[0],
            client_id="client-id.apps.googleusercontent.com",
            client_secret=SECRETS[1],
            refresh_token=SECRETS[2],
            customer_id="123-456-7890",
            **common,
        ).with_client(sdk_client())
        with serving(wire):  # the services are built (and bound to the fake channel) now
            for name in ("CampaignBudgetService", "AdGroupService", "GoogleAdsService"):
                resource._service(name)
    elif platform == "meta":
        from benchmarks.fakes.meta import FakeMetaServer
        from orchestration.resources.platforms.meta import MetaBidPlatform

        wire = FakeMetaServer(server)
        resource = MetaBidPlatform(
            app_id="1234", app_secret=SECRETS[1], access_token=SECRETS[3], ad_account_id="act_555", **common
        )
        resource.http_session().mount("https://", wire)
    elif platform == "tiktok":
        from benchmarks.fakes.tiktok import FakeTikTokServer
        from orchestration.resources.platforms.tiktok import TikTokBidPlatform

        resource = TikTokBidPlatform(advertiser_id="7000", access_token=SECRETS[3], **common)
        wire = FakeTikTokServer(server).install(resource.api_client())
    elif platform == "microsoft_ads":
        from bingads.authorization import AuthorizationData, OAuthDesktopMobileAuthCodeGrant, OAuthTokens

        from benchmarks.fakes.microsoft import FakeMicrosoftServer
        from orchestration.resources.platforms.microsoft import MicrosoftAdsBidPlatform

        parents = {t: c.budget_target for c in ACCOUNTS[platform] for t in c.bid_targets}
        wire = FakeMicrosoftServer(server, parents)
        tokens = OAuthTokens(access_token=SECRETS[3], access_token_expires_in_seconds=3600, refresh_token=SECRETS[2])
        auth = OAuthDesktopMobileAuthCodeGrant(client_id="ms-client", oauth_tokens=tokens)
        data = AuthorizationData(account_id=111, customer_id=222, developer_token=SECRETS[0], authentication=auth)
        resource = MicrosoftAdsBidPlatform(
            developer_token=SECRETS[0],
            client_id="ms-client",
            refresh_token=SECRETS[2],
            customer_id="222",
            account_id="111",
            **common,
        ).with_authorization(data, transport=wire)
    else:
        raise ValueError(f"no fake server for platform {platform!r}")
    return Rig(platform, resource, server, wire, ACCOUNTS[platform])
