"""Account discovery through each platform's real SDK, with only its lowest network layer faked (gRPC channel,
`requests` adapter, urllib3 `urlopen`, suds transport): real response shapes, paging, a shared budget, a paused
campaign, an automated bidding strategy; the retry and timeout policy of the pushes; and `check` refusing what
discovery shows cannot be pushed."""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
    GoogleAdsServiceGrpcTransport,
)

from orchestration.resources.platforms.google_ads import GoogleAdsBidPlatform
from orchestration.resources.platforms.meta import MetaBidPlatform
from rl.accounts.check import validate
from rl.accounts.model import DiscoveryError
from rl.accounts.review import propose, read_review, write_review
from tests.orchestration.resources.fake_google_ads import DEV_TOKEN, sdk_client
from tests.orchestration.resources.platforms import discovery_answers as answers
from tests.orchestration.resources.platforms.fake_google_ads_mutate import FakeMutateChannel, ads_error
from tests.orchestration.resources.platforms.fake_http import FakeHttp
from tests.orchestration.resources.platforms.test_microsoft import resource_factory  # noqa: F401 (a fixture)
from tests.orchestration.resources.platforms.test_tiktok import make as make_tiktok

CHANNELS = {"google_ads": "google / cpc", "meta": "facebook / paid_social", "tiktok": "tiktok / paid_social"}
CHANNELS["microsoft_ads"] = "bing / cpc"


def google(monkeypatch, answer, timeout=7.0) -> tuple[GoogleAdsBidPlatform, FakeMutateChannel]:
    channel = FakeMutateChannel(answer=answer)
    monkeypatch.setattr(GoogleAdsServiceGrpcTransport, "create_channel", classmethod(lambda cls, *a, **k: channel))
    resource = GoogleAdsBidPlatform(
        developer_token=DEV_TOKEN,
        client_id="client-id.apps.googleusercontent.com",
        client_secret="client-secret-DO-NOT-LOG",
        refresh_token="refresh-token-DO-NOT-LOG",
        customer_id="123-456-7890",
        retry_base_seconds=0.0,
        timeout_seconds=timeout,
    ).with_client(sdk_client())
    return resource, channel


def test_google_ads_discovery_reads_every_page_of_campaigns_budgets_and_ad_groups(monkeypatch):
    resource, channel = google(monkeypatch, answers.google_search(answers.google_structure(), page_size=2))
    account = resource.discover("google_ads")
    queries = [(s.request.query.split(" FROM ")[1].split()[0], s.request.page_token) for s in channel.sent]
    assert queries == [
        ("campaign_budget", ""),
        ("campaign_budget", "2"),
        ("ad_group", ""),
        ("ad_group", "2"),
        ("ad_group", "4"),
        ("campaign", ""),
        ("campaign", "2"),
        ("campaign", "4"),
    ]
    # the resource's 7 s on every page (the SDK passes what is left of it when the machine is slow)
    assert all(6.0 < s.timeout <= 7.0 for s in channel.sent), [s.timeout for s in channel.sent]
    assert {s.request.customer_id for s in channel.sent} == {"1234567890"}
    c = account.by_id()
    assert [k for k in c] == [101, 102, 103, 104, 105, 106]
    brand = c[101]
    assert (brand.status, brand.manageable, brand.budget_target) == ("enabled", True, "9001")
    assert brand.bid_targets == ("7001", "7002")  # a paused ad group keeps getting the bid
    assert (brand.budget_amount, brand.bid, brand.budget_shared) == (50.0, 2.0, False)
    assert (brand.utm.source, brand.utm.medium, brand.utm.campaign) == ("google", "cpc", "brand_q1")
    assert c[102].status == "paused" and c[102].manageable
    automated = c[103]
    assert not automated.manageable and "MAXIMIZE_CONVERSIONS sets bids itself" in automated.reason
    assert c[104].budget_shared and c[105].budget_shared and c[104].budget_target == c[105].budget_target == "9004"
    assert c[106].status == "removed"


def test_google_ads_discovery_retries_unavailable_and_names_a_refusal(monkeypatch):
    structure = answers.google_structure()
    serve = answers.google_search(structure, page_size=10)
    calls = {"n": 0}

    def flaky(method, request):
        calls["n"] += 1
        if calls["n"] == 1:
            return ads_error(grpc.StatusCode.UNAVAILABLE, None, "req-unavailable")
        return serve(method, request)

    resource, channel = google(monkeypatch, flaky)
    assert len(resource.discover("google_ads").campaigns) == 6 and len(channel.sent) == 4  # one retry, then 3 reads

    resource, _ = google(monkeypatch, lambda m, r: ads_error(grpc.StatusCode.PERMISSION_DENIED, None, "req-denied"))
    denied = r"Google Ads discovery for customer 1234567890 \(campaign_budget\) failed \(PERMISSION_DENIED\)"
    with pytest.raises(DiscoveryError, match=denied):
        resource.discover("google_ads")
    with pytest.raises(ValueError, match="reads \\('google_ads',\\), not 'meta'"):
        resource.discover("meta")


def test_meta_discovery_follows_the_cursor_and_tells_bid_caps_from_automated_bidding():
    fake = FakeHttp(answers.meta_graph(page_size=2))
    resource = MetaBidPlatform(app_id="1234", app_secret="app-secret-DO-NOT-LOG", access_token="token-DO-NOT-LOG",
                               ad_account_id="act_555", retry_base_seconds=0.0, timeout_seconds=9.0)  # fmt: skip
    resource.http_session().mount("https://", fake)
    account = resource.discover("meta")
    paths = [(w.method, w.path.split("/v26.0/")[-1], w.query.get("after", [""])[0]) for w in fake.sent]
    assert paths == [
        ("GET", "act_555/adsets", ""),
        ("GET", "act_555/adsets", "2"),
        ("GET", "act_555/adsets", "4"),
        ("GET", "act_555/campaigns", ""),
        ("GET", "act_555/campaigns", "2"),
    ]
    assert "bid_amount" in fake.sent[0].query["fields"][0] and "daily_budget" in fake.sent[3].query["fields"][0]
    c = account.by_id()
    assert account.account == "act_555" and list(c) == [201, 202, 203, 204]
    assert (c[201].manageable, c[201].budget_target, c[201].bid_targets, c[201].budget_amount, c[201].bid) == (
        True, "2201", ("2201",), 40.0, 12.0,
    )  # fmt: skip
    assert c[202].status == "paused" and c[202].manageable
    assert not c[203].manageable and "(LOWEST_COST_WITHOUT_CAP): Meta sets the bids" in c[203].reason
    assert not c[204].manageable and "Advantage campaign budget" in c[204].reason


def test_tiktok_discovery_reads_page_by_page_and_refuses_lowest_cost():
    resource, fake = make_tiktok(answer=answers.tiktok_pages(page_size=2))
    account = resource.discover("tiktok")
    calls = [(s["path"], s["query"].get("page")) for s in fake.sent]
    assert calls == [
        ("/open_api/v1.3/adgroup/get/", "1"),
        ("/open_api/v1.3/adgroup/get/", "2"),
        ("/open_api/v1.3/campaign/get/", "1"),
        ("/open_api/v1.3/campaign/get/", "2"),
    ]
    assert all(s["headers"]["Access-Token"] for s in fake.sent) and fake.timeouts[0].read_timeout == 60.0
    c = account.by_id()
    assert (c[301].manageable, c[301].budget_target, c[301].bid_targets, c[301].bid) == (True, "3301", ("3301",), 12.0)
    assert c[302].status == "paused" and c[302].manageable
    assert not c[303].manageable and "BID_TYPE_NO_BID" in c[303].reason


def test_microsoft_discovery_reads_campaigns_then_ad_groups_and_finds_shared_budgets(resource_factory):  # noqa: F811
    resource, transport = resource_factory(answer=answers.microsoft_soap)
    account = resource.discover("microsoft_ads")
    methods = [x.split("Request")[0].split("<")[-1].split(":")[-1] for x in transport.sent]
    assert methods == ["GetCampaignsByAccountId", *["GetAdGroupsByCampaignId"] * 5]
    request = transport.sent[0].replace("ns0:", "ns1:")
    assert "<ns1:AccountId>111</ns1:AccountId>" in request
    assert "<ns1:CampaignType>Search Shopping Audience PerformanceMax</ns1:CampaignType>" in request
    c = account.by_id()
    assert list(c) == [401, 402, 403, 404, 405]
    assert (c[401].manageable, c[401].budget_target, c[401].bid_targets, c[401].budget_amount) == (
        True, "401", ("4401", "4402"), 50.0,
    )  # fmt: skip
    assert (c[401].utm.source, c[401].utm.medium) == ("bing", "cpc")
    assert c[402].status == "paused" and c[402].manageable
    assert not c[403].manageable and "MaxConversions sets bids itself" in c[403].reason
    assert c[404].budget_shared and not c[404].manageable and "shared budget 777" in c[404].reason
    assert c[405].bid_targets == () and c[405].reason == "no ad group to set a max CPC on"  # an empty answer


def test_check_refuses_an_id_the_platform_does_not_have_and_an_automated_strategy(monkeypatch, tmp_path):
    resource, _ = google(monkeypatch, answers.google_search(answers.google_structure(), page_size=3))
    account = resource.discover("google_ads")
    path = tmp_path / "accounts.csv"
    write_review(path, propose([account], channels=CHANNELS))
    proposed = read_review(path)
    assert [r.campaign_id for r in proposed] == [101, 102, 103, 104, 105]  # 106 is removed: not proposed
    assert not any(r.managed for r in proposed)
    # the review: manage 101 (with an ad group id that is not its own), 103 (automated) and 104 (shared budget)
    edited = [replace(r, managed=r.campaign_id in (101, 103, 104)) for r in proposed]
    edited[0] = replace(edited[0], bid_targets=("7001", "7999"))
    write_review(path, edited + [replace(edited[0], campaign_id=999, bid_targets=("7001",), ga4_campaign_name="x")])
    result = validate(read_review(path), [account], path)
    assert result.errors == [
        f"{path}:2: bid_targets: google_ads/101: bid target(s) 7999 do not hold this campaign's bid (the platform's: "
        "7001;7002)",
        f"{path}:4: managed: google_ads/103: not manageable: bidding strategy MAXIMIZE_CONVERSIONS sets bids itself; "
        "GAELP sets max CPC bids (Manual CPC)",
        f"{path}:5: allow_shared_budget: google_ads/104: budget 9004 is shared with other campaigns and its sharing is "
        "not declared",
        f"{path}:7: campaign_id: google_ads/999: not found on google_ads (removed, or not visible to GAELP's login)",
        f"{path}:7: budget_target: google_ads/999: 9001 is also the budget target on line 2",
    ]
    fixed = [replace(r, managed=r.campaign_id in (101, 104), allow_shared_budget=r.campaign_id == 104) for r in edited]
    fixed[0] = replace(fixed[0], bid_targets=("7001",))  # a subset of the campaign's ad groups
    write_review(path, fixed)
    assert validate(read_review(path), [account], path).ok
