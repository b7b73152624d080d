"""The review file's guesses (product, intent, GA4 mapping) and what a second discovery keeps of a review."""

from __future__ import annotations

from dataclasses import replace

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign, Utm
from rl.accounts.naming import ga4_mapping, guess_intent, guess_products
from rl.accounts.review import NOT_FOUND, propose

CHANNELS = {"google_ads": "google / cpc", "meta": "facebook / paid_social"}


def campaign(cid, name, platform="google_ads", status="enabled", **kwargs):
    fields = dict(bidding_strategy="MANUAL_CPC", manageable=True, budget_target=f"{cid}9", bid_targets=(f"{cid}8",))
    return DiscoveredCampaign(platform, "1234567890", cid, name, status, **{**fields, **kwargs})


def test_names_give_product_and_intent_and_the_rest_is_a_marked_guess():
    names = [
        ("google_ads", "Search | Antivirus | Generic"),
        ("google_ads", "Search - Brand"),
        ("google_ads", "Search_Conquesting"),
        ("meta", "FB | Remarketing | Cat Food"),
        ("meta", "FB | Cat Food"),
    ]
    assert [guess_intent(p, n) for p, n in names] == [
        ("generic", True),
        ("brand", True),
        ("competitor", True),
        ("retargeting", True),
        ("prospecting", False),  # social, no intent named: prospecting, said to be a guess
    ]
    products = guess_products(names)
    assert [p for p, _ in products] == ["antivirus", "brand", "cat_food", "cat_food", "cat_food"]
    assert products[2][1] and "most common is cat_food" in products[2][1] and products[3][1] is None


def test_utm_tags_win_over_the_platforms_convention_and_placeholders_mean_the_name():
    assert ga4_mapping("google_ads", "Search | X", Utm(), CHANNELS) == ("google / cpc", "search | x")
    tagged = Utm(source="Newsletter", medium="Email", campaign="spring_sale")
    assert ga4_mapping("google_ads", "Search | X", tagged, CHANNELS) == ("newsletter / email", "spring_sale")
    placeholder = Utm(source="facebook", medium="paid_social", campaign="{{campaign.name}}")
    assert ga4_mapping("meta", "Meta | Y", placeholder, CHANNELS) == ("facebook / paid_social", "meta | y")


def test_a_second_discovery_keeps_the_review_follows_renames_and_marks_what_is_gone():
    first = DiscoveredAccount("google_ads", "1234567890", (campaign(1, "Search | A"), campaign(2, "Search | B")))
    meta = DiscoveredAccount("meta", "act_5", (campaign(7, "Meta | C", platform="meta"),))
    rows = propose([first, meta], channels=CHANNELS)
    reviewed = [replace(rows[0], managed=True, product="alpha"), replace(rows[1], ga4_campaign_name="b_utm"), rows[2]]
    later = DiscoveredAccount(
        "google_ads",
        "1234567890",
        (
            campaign(1, "Search | A2", bid_targets=("18", "19")),  # renamed, an ad group added
            campaign(3, "Search | New"),
            campaign(4, "Search | Gone", status="removed"),
        ),
    )
    again = propose([later], reviewed, channels=CHANNELS)  # meta not read this time
    assert [r.key for r in again] == [("google_ads", 1), ("google_ads", 2), ("meta", 7), ("google_ads", 3)]
    renamed, gone, untouched, new = again
    assert (renamed.managed, renamed.product, renamed.campaign_name) == (True, "alpha", "Search | A2")
    assert renamed.ga4_campaign_name == "search | a2" and renamed.bid_targets == ("18",)  # reviewed targets kept
    assert "bid targets on the platform not in bid_targets: 19" in renamed.notes
    assert gone.platform_status == NOT_FOUND and not gone.manageable and gone.ga4_campaign_name == "b_utm"
    assert untouched == reviewed[2]  # a platform that was not read says nothing about its campaigns
    assert not new.managed and new.budget_target == "39"
    with_removed = propose([later], reviewed, include_removed=True, channels=CHANNELS)
    assert with_removed[-1].key == ("google_ads", 4) and with_removed[-1].platform_status == "removed"
