"""`DiscoveredPatterns` round-trips through JSON, rejects malformed sections, and its committed JSON schema is the
one the code generates."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rl.discovery.engine import discover_marts
from rl.discovery.schema import (
    JSON_SCHEMA_FILE,
    SCHEMA_VERSION,
    DiscoveredPatterns,
    HourProfile,
    Interval,
    export_json_schema,
    json_schema_text,
)
from tests.rl.discovery.synthetic import synthetic_marts


@pytest.fixture(scope="module")
def patterns() -> DiscoveredPatterns:
    return discover_marts(synthetic_marts(90, seed=11), n_bootstrap=50)


def test_json_round_trip_is_lossless(patterns, tmp_path):
    text = patterns.to_json()
    again = DiscoveredPatterns.from_json(text)
    assert again == patterns
    assert again.to_json() == text
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert set(data) >= {"segments", "hour_of_day", "day_of_week", "devices", "channels", "conversion_lag"}


def test_the_committed_json_schema_is_up_to_date(tmp_path):
    generated = export_json_schema(tmp_path / "schema.json").read_text()
    assert generated == json_schema_text()
    assert JSON_SCHEMA_FILE.read_text() == generated, "regenerate it: python -m rl.discovery.schema"
    schema = json.loads(generated)
    assert schema["title"] == "DiscoveredPatterns"
    assert {"segments", "hour_of_day", "day_of_week", "devices", "channels", "conversion_lag"} <= set(
        schema["properties"]
    )


def test_another_schema_version_is_refused(patterns):
    data = json.loads(patterns.to_json())
    data["schema_version"] = 2
    with pytest.raises(ValidationError, match="schema_version"):
        DiscoveredPatterns.model_validate(data)


def test_unknown_fields_and_non_finite_numbers_are_refused(patterns):
    data = json.loads(patterns.to_json())
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        DiscoveredPatterns.model_validate(data)
    with pytest.raises(ValidationError):
        Interval(lo=float("nan"), hi=1.0)
    with pytest.raises(ValidationError, match="hi"):
        Interval(lo=2.0, hi=1.0)


def test_hour_shares_must_be_24_and_sum_to_one(patterns):
    p = patterns.hour_of_day.profiles[0]
    with pytest.raises(ValidationError, match="24"):
        HourProfile.model_validate({**p.model_dump(), "shares": p.shares[:23]})
    with pytest.raises(ValidationError, match="summing to 1"):
        HourProfile.model_validate({**p.model_dump(), "shares": [s * 2 for s in p.shares]})


def test_segments_must_match_the_chosen_k(patterns):
    data = json.loads(patterns.to_json())
    data["segments"]["choice"]["chosen_k"] += 1
    with pytest.raises(ValidationError, match="chosen_k"):
        DiscoveredPatterns.model_validate(data)
