"""The demo market's account structure as Google Ads' Search answers it: the selected fields only, pages with
tokens, the API's query errors, and the budgets and bids in force (a push shows)."""

from __future__ import annotations

import pytest
from google.ads.googleads.v26.services.types.google_ads_service import SearchGoogleAdsRequest

from rl.accounts import google_ads
from rl.world.gaql import GaqlError
from rl.world.structure import google_ads_search
from rl.world.world import PLATFORM_CUSTOMER_IDS, DemoWorld
from tests.conftest import scaled

CUSTOMER = PLATFORM_CUSTOMER_IDS["google_ads"]


@pytest.fixture
def world(tmp_path, reference_params) -> DemoWorld:
    world_file = tmp_path / "small.yaml"
    world_file.write_text(scaled(reference_params, 0.05).to_yaml())
    return DemoWorld.open(tmp_path / "state", world_file, seed=1)


def search(world, query, token="", page_size=3):
    return google_ads_search(
        world, SearchGoogleAdsRequest(customer_id=CUSTOMER, query=query, page_token=token), page_size
    )


def test_the_demo_answers_structure_queries_with_selected_fields_in_pages(world):
    first = search(world, "SELECT campaign.id, campaign.status FROM campaign WHERE campaign.status != 'REMOVED'")
    assert [r.campaign.id for r in first.results] == [101, 102, 103] and first.next_page_token
    assert first.results[0].campaign.status.name == "ENABLED" and first.results[0].campaign.name == ""  # not selected
    assert list(first.field_mask.paths) == ["campaign.id", "campaign.status"]
    rest = search(world, "SELECT campaign.id, campaign.status FROM campaign", first.next_page_token)
    assert [r.campaign.id for r in rest.results] == [104] and not rest.next_page_token
    budgets = search(world, google_ads.BUDGETS_QUERY, page_size=10)
    assert [(r.campaign_budget.id, r.campaign_budget.explicitly_shared) for r in budgets.results][0] == (10100, False)


def test_the_demo_refuses_what_the_api_refuses(world):
    with pytest.raises(GaqlError, match="UNRECOGNIZED_FIELD"):
        search(world, "SELECT campaign.labels FROM campaign")
    with pytest.raises(GaqlError, match="PROHIBITED_FIELD_IN_SELECT_CLAUSE"):
        search(world, "SELECT ad_group.id FROM campaign")
    with pytest.raises(GaqlError, match="BAD_VALUE"):
        search(world, "SELECT campaign.id FROM campaign WHERE campaign.status = 'SLEEPING'")


def test_discovery_shows_the_settings_in_force(world):
    world.push(102, daily_budget=95.5, bid=3.3, source="test")
    account = google_ads.discover(lambda request: google_ads_search(world, request), CUSTOMER)
    c = account.by_id()[102]
    assert (c.budget_target, c.bid_targets, c.budget_amount, c.bid) == ("10200", ("10201",), 95.5, 3.3)
