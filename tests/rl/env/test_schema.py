"""The schema is fixed and versioned, follows the registry, and refuses a market it does not describe."""

from __future__ import annotations

import numpy as np
import pytest

from rl.campaign_registry import CampaignRegistry
from rl.env import BiddingEnv, ObservationSchema
from rl.env.schema import CAMPAIGN_FEATURES, GLOBAL_FEATURES, SCHEMA_VERSION
from rl.market.params import MarketParams


def test_schema_follows_the_registry_order(schema):
    registry = CampaignRegistry.load()
    assert list(schema.campaign_ids) == [c.campaign_id for c in registry.campaigns]
    assert schema.version == SCHEMA_VERSION
    assert schema.obs_size == schema.n_campaigns * len(CAMPAIGN_FEATURES) + len(GLOBAL_FEATURES)
    assert len(schema.observation_names()) == schema.obs_size == len(set(schema.observation_names()))
    assert schema.action_names()[: schema.n_campaigns] == [f"{c}.budget_share" for c in schema.campaign_ids]


def test_json_round_trip_and_compatibility(schema):
    back = ObservationSchema.from_json(schema.to_json())
    assert back == schema
    back.check_compatible(schema)
    other = ObservationSchema(schema.campaign_ids[::-1], schema.platforms[::-1])
    with pytest.raises(ValueError, match="campaign_ids"):
        other.check_compatible(schema)
    with pytest.raises(ValueError, match="not an observation schema"):
        ObservationSchema.from_json('{"version": 1}')


def test_unknown_campaign_is_an_error_naming_it(schema, small_params):
    data = small_params.model_dump()
    extra = dict(data["campaigns"][0], id=999, name="Search | Brand copy")
    data["campaigns"].append(extra)
    params = MarketParams.model_validate(data)
    with pytest.raises(ValueError, match=r"unknown campaign 999 \('Search \| Brand copy'"):
        schema.align(params)
    with pytest.raises(ValueError, match="unknown campaign 999"):
        BiddingEnv(params, schema=schema)


def test_missing_campaign_and_wrong_platform_are_errors(schema, small_params):
    data = small_params.model_dump()
    data["campaigns"] = [c for c in data["campaigns"] if c["id"] != 202]
    data["competitors"] = [dict(k, campaigns=[i for i in k["campaigns"] if i != 202]) for k in data["competitors"]]
    data["competitors"] = [k for k in data["competitors"] if k["campaigns"]]
    with pytest.raises(ValueError, match="registry campaign 202 .* missing"):
        schema.align(MarketParams.model_validate(data))
    moved = ObservationSchema(schema.campaign_ids, ("meta",) + schema.platforms[1:])
    with pytest.raises(ValueError, match="campaign 101 .* google_ads in the market but meta"):
        moved.align(small_params)


def test_market_in_another_order_is_reordered_to_the_registry(schema, small_params):
    data = small_params.model_dump()
    data["campaigns"] = data["campaigns"][::-1]
    shuffled = MarketParams.model_validate(data)
    aligned = schema.align(shuffled)
    assert [c.id for c in aligned.campaigns] == list(schema.campaign_ids)
    assert aligned.params_hash() == schema.align(small_params).params_hash()
    # the same episode from either file gives the same observations
    a, _ = BiddingEnv(small_params, schema=schema).reset(seed=3)
    b, _ = BiddingEnv(shuffled, schema=schema).reset(seed=3)
    np.testing.assert_array_equal(a, b)
