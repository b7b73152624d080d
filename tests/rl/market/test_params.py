"""`MarketParams`: the default world loads, hashes stably, round-trips through YAML, and every kind of bad input
fails with a `MarketParamsError` that names the offending field path and value."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from rl.market.params import MarketParams, MarketParamsError, load_market_params, parse_market_params
from rl.world.paths import DEFAULT_WORLD_FILE


@pytest.fixture()
def raw() -> dict:
    """The default world as a plain, mutable mapping (exactly what the YAML file holds)."""
    return yaml.safe_load(DEFAULT_WORLD_FILE.read_text())


def _write(tmp_path: Path, data: object, name: str = "world.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(data: object) -> str:
    with pytest.raises(MarketParamsError) as info:
        parse_market_params(data, "test-world")
    return str(info.value)


def _campaign_index(raw: dict, campaign_id: int) -> int:
    return next(i for i, c in enumerate(raw["campaigns"]) if c["id"] == campaign_id)


# -- loading, hashing, round trip ------------------------------------------------------------------------------


def test_default_world_loads(reference_params: MarketParams) -> None:
    p = reference_params
    assert p.name == "reference-account"
    assert p.campaign_ids == [101, 102, 103, 104, 201, 202, 301, 401]
    assert [pl.name for pl in p.platforms] == ["google_ads", "meta", "tiktok", "microsoft_ads"]
    assert [pl.kind for pl in p.platforms] == ["search", "social", "social", "search"]
    assert len(p.segments) == 4 and len(p.competitors) == 20
    assert p.device_shares == [0.62, 0.35, 0.03]
    # YAML anchors were expanded into full 24-value profiles.
    assert all(len(pl.hour_profile) == 24 for pl in p.platforms)
    assert p.platform("meta").hour_profile == p.platform("tiktok").hour_profile
    assert p.campaign(102).current_bid == 4.0
    with pytest.raises(KeyError, match="999"):
        p.campaign(999)


def test_params_hash_is_stable_across_loads(reference_params: MarketParams) -> None:
    h = reference_params.params_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert load_market_params(DEFAULT_WORLD_FILE).params_hash() == h
    assert load_market_params(str(DEFAULT_WORLD_FILE)).params_hash() == h


def test_params_hash_ignores_key_order_and_number_spelling(raw: dict, reference_params: MarketParams) -> None:
    reordered = dict(reversed(list(raw.items())))
    reordered["daily_budget"] = int(raw["daily_budget"])  # 500 vs 500.0: same value, same hash
    reordered["campaigns"] = [dict(reversed(list(c.items()))) for c in raw["campaigns"]]
    assert parse_market_params(reordered).params_hash() == reference_params.params_hash()


def _rename_segment(d: dict) -> None:
    d["segments"][2]["name"] = "researcher2"
    for c in d["campaigns"]:
        c["segment_mix"]["researcher2"] = c["segment_mix"].pop("researcher")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("daily_budget", 501.0),
        lambda d: d["campaigns"][1].__setitem__("current_bid", 4.01),
        lambda d: d["competitors"][0].__setitem__("sigma", 0.36),
        _rename_segment,
        lambda d: d["platforms"][0]["hour_profile"].__setitem__(0, 0.36),
    ],
    ids=["top-level", "campaign-bid", "competitor-sigma", "segment-name", "hour-profile-entry"],
)
def test_params_hash_changes_when_a_value_changes(raw: dict, reference_params: MarketParams, mutate) -> None:
    changed = copy.deepcopy(raw)
    mutate(changed)
    p = parse_market_params(changed)
    assert p != reference_params
    assert p.params_hash() != reference_params.params_hash()


def test_yaml_round_trip_gives_equal_params(reference_params: MarketParams, tmp_path: Path) -> None:
    text = reference_params.to_yaml()
    back = parse_market_params(yaml.safe_load(text))
    assert back == reference_params
    assert back.params_hash() == reference_params.params_hash()
    # ... and through a file on disk, and again (the dump is a fixed point).
    path = tmp_path / "round.yaml"
    path.write_text(text)
    from_file = load_market_params(path)
    assert from_file == reference_params
    assert from_file.to_yaml() == text


def test_json_file_loads(reference_params: MarketParams, tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    path.write_text(json.dumps(reference_params.model_dump(mode="json")))
    assert load_market_params(path) == reference_params


def test_params_are_frozen(reference_params: MarketParams) -> None:
    with pytest.raises(Exception, match="frozen"):
        reference_params.daily_budget = 1.0  # type: ignore[misc]


# -- invalid parameters: each message names the field path and the bad value ------------------------------------


def test_negative_campaign_bid_names_path_and_value(raw: dict, tmp_path: Path) -> None:
    raw["campaigns"][2]["current_bid"] = -1
    path = _write(tmp_path, raw)
    with pytest.raises(MarketParamsError) as info:
        load_market_params(path)
    msg = str(info.value)
    assert str(path) in msg  # the source file is named
    line = next(x for x in msg.splitlines() if "campaigns.2.current_bid" in x)
    assert "greater than 0" in line
    assert "(got -1)" in line
    # Only the bad field is reported.
    assert len([x for x in msg.splitlines() if x.strip().startswith("- ")]) == 1


def test_every_bad_field_is_reported(raw: dict) -> None:
    raw["campaigns"][2]["current_bid"] = -1
    raw["segments"][0]["cvr"] = 1.5
    raw["platforms"][1]["session_rate"] = 0
    msg = _error(raw)
    assert "campaigns.2.current_bid" in msg and "(got -1)" in msg
    assert "segments.0.cvr" in msg and "(got 1.5)" in msg
    assert "platforms.1.session_rate" in msg and "(got 0)" in msg


def test_segment_mix_not_summing_to_one(raw: dict, tmp_path: Path) -> None:
    raw["campaigns"][0]["segment_mix"]["price_sensitive"] = 0.3  # 0.15 + 0.35 + 0.3 + 0.3 = 1.1
    with pytest.raises(MarketParamsError) as info:
        load_market_params(_write(tmp_path, raw))
    msg = str(info.value)
    assert "campaigns.0.segment_mix" in msg
    assert "summing to 1" in msg
    assert "'price_sensitive': 0.3" in msg


def test_negative_segment_share(raw: dict) -> None:
    raw["campaigns"][3]["segment_mix"] = {"crisis_parent": 1.2, "researcher": -0.2}
    msg = _error(raw)
    assert "campaigns.3.segment_mix" in msg and "-0.2" in msg


def test_unknown_segment_in_mix(raw: dict) -> None:
    mix = raw["campaigns"][1]["segment_mix"]
    mix["researchers"] = mix.pop("researcher")
    msg = _error(raw)
    assert "campaigns.1.segment_mix" in msg and "researchers" in msg


def test_unknown_platform_on_campaign(raw: dict) -> None:
    raw["campaigns"][4]["platform"] = "facebook"
    msg = _error(raw)
    assert "campaigns.4.platform" in msg
    assert "'facebook'" in msg
    assert "google_ads" in msg  # lists the known platforms


def test_competitor_references_unknown_campaign(raw: dict, tmp_path: Path) -> None:
    raw["competitors"][3]["campaigns"] = [102, 999]
    with pytest.raises(MarketParamsError) as info:
        load_market_params(_write(tmp_path, raw))
    msg = str(info.value)
    assert "competitors.3.campaigns" in msg
    assert "unknown campaign id 999" in msg


def test_competitor_references_campaign_on_another_platform(raw: dict) -> None:
    assert raw["competitors"][0]["platform"] == "google_ads"
    raw["competitors"][0]["campaigns"] = [101, 201]
    msg = _error(raw)
    assert "competitors.0.campaigns" in msg
    assert "campaign 201 is on 'meta', not 'google_ads'" in msg


def test_competitor_on_unknown_platform(raw: dict) -> None:
    raw["competitors"][5]["platform"] = "yahoo"
    msg = _error(raw)
    assert "competitors.5.platform" in msg and "'yahoo'" in msg


def test_hour_profile_with_23_values(raw: dict, tmp_path: Path) -> None:
    raw["platforms"][2]["hour_profile"] = raw["platforms"][2]["hour_profile"][:23]
    with pytest.raises(MarketParamsError) as info:
        load_market_params(_write(tmp_path, raw))
    msg = str(info.value)
    assert "platforms.2.hour_profile" in msg
    assert "exactly 24 values, got 23" in msg


def test_competitor_hour_mult_with_25_values(raw: dict) -> None:
    raw["competitors"][1]["hour_mult"] = [1.0] * 25
    msg = _error(raw)
    assert "competitors.1.hour_mult" in msg and "exactly 24 values, got 25" in msg


def test_increasing_position_ctr(raw: dict) -> None:
    raw["platforms"][3]["position_ctr"] = [0.06, 0.03, 0.04]
    msg = _error(raw)
    assert "platforms.3.position_ctr" in msg
    assert "must not increase" in msg
    assert "[0.06, 0.03, 0.04]" in msg


def test_position_ctr_out_of_range(raw: dict) -> None:
    raw["platforms"][0]["position_ctr"] = [1.2, 0.5]
    msg = _error(raw)
    assert "platforms.0.position_ctr" in msg and "1.2" in msg


def test_social_platform_with_two_slots(raw: dict) -> None:
    assert raw["platforms"][1]["kind"] == "social"
    raw["platforms"][1]["position_ctr"] = [0.009, 0.005]
    msg = _error(raw)
    assert "platforms.1" in msg
    assert "exactly one slot" in msg


def test_unknown_platform_kind(raw: dict) -> None:
    raw["platforms"][1]["kind"] = "display"
    msg = _error(raw)
    assert "platforms.1.kind" in msg and "'display'" in msg


def test_lag_days_max_below_min(raw: dict, tmp_path: Path) -> None:
    raw["segments"][1]["lag_days_min"] = 5
    raw["segments"][1]["lag_days_max"] = 4
    with pytest.raises(MarketParamsError) as info:
        load_market_params(_write(tmp_path, raw))
    msg = str(info.value)
    assert "segments.1" in msg
    assert "lag_days_max (4) < lag_days_min (5)" in msg


def test_device_shares_not_summing_to_one(raw: dict) -> None:
    raw["device_shares"] = [0.6, 0.35, 0.03]
    msg = _error(raw)
    assert "device_shares" in msg and "sum to 1" in msg and "0.98" in msg


def test_current_bid_above_max_bid(raw: dict) -> None:
    raw["campaigns"][0]["current_bid"] = 9.0  # max_bid 8.0
    msg = _error(raw)
    assert "campaigns.0.current_bid" in msg and "9.0 exceeds max_bid 8.0" in msg


def test_duplicate_campaign_ids(raw: dict) -> None:
    raw["campaigns"][1]["id"] = 101
    msg = _error(raw)
    assert "ids must be unique" in msg and "101" in msg


def test_typo_top_level_key_is_named(raw: dict, tmp_path: Path) -> None:
    raw["daily_budgt"] = 400.0
    with pytest.raises(MarketParamsError) as info:
        load_market_params(_write(tmp_path, raw))
    msg = str(info.value)
    line = next(x for x in msg.splitlines() if "daily_budgt" in x)
    assert "Extra inputs are not permitted" in line and "400.0" in line


def test_typo_nested_key_is_named(raw: dict) -> None:
    raw["campaigns"][5]["curent_bid"] = raw["campaigns"][5].pop("current_bid")
    msg = _error(raw)
    assert "campaigns.5.curent_bid" in msg and "Extra inputs are not permitted" in msg
    assert "campaigns.5.current_bid" in msg and "Field required" in msg  # ... and the real key is now missing


def test_missing_required_field(raw: dict) -> None:
    del raw["target_cpa"]
    msg = _error(raw)
    assert "target_cpa: Field required" in msg


def test_wrong_schema_version(raw: dict) -> None:
    raw["schema_version"] = 2
    msg = _error(raw)
    assert "schema_version" in msg and "(got 2)" in msg


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "world.yaml"
    with pytest.raises(MarketParamsError, match="not found") as info:
        load_market_params(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int"), ("", "NoneType")],
)
def test_non_mapping_yaml(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(text)
    with pytest.raises(MarketParamsError) as info:
        load_market_params(path)
    msg = str(info.value)
    assert f"expected a mapping, got {kind}" in msg
    assert str(path) in msg


def test_non_mapping_object() -> None:
    assert "expected a mapping, got list" in _error([1, 2])


@pytest.mark.parametrize("text", ["name: [unclosed\n", "a: 1\n  b: 2\n", "key: value\n\t- tab\n"])
def test_malformed_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(MarketParamsError, match="not valid YAML/JSON") as info:
        load_market_params(path)
    assert str(path) in str(info.value)


def test_error_is_a_value_error(raw: dict) -> None:
    raw["campaigns"][2]["current_bid"] = -1
    with pytest.raises(ValueError, match=r"campaigns\.2\.current_bid"):
        parse_market_params(raw)
