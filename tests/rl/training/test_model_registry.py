"""Registry round trip, the promotion gate, and schema checks on load."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pytest

from rl.env import ObservationSchema
from rl.evaluation.evaluate import Evaluation
from rl.policies.sb3 import SB3Policy
from rl.training.model_registry import IncompatibleModelError, ModelRegistry, ModelRegistryError, gate
from rl.training.train import train
from tests.rl.training.conftest import tiny_config


def make_eval(policy_scores, baselines: dict[str, list[float]], over=0) -> Evaluation:
    n = len(policy_scores)

    def res(scores, days_over=0):
        return {
            "score": list(scores),
            "conversions": list(scores),
            "spend": [50.0] * n,
            "cpa": [10.0] * n,
            "days_over_budget": [days_over] + [0] * (n - 1),
            "return": list(scores),
        }

    results = {"policy": res(policy_scores, over)} | {b: res(s) for b, s in baselines.items()}
    return Evaluation("policy", list(baselines), [1, 2], 2, 7, "hash", results)


def test_gate_passes_a_policy_that_beats_every_baseline():
    ev = make_eval([10, 11, 12, 13], {"static": [5, 6, 6, 7], "pacer": [8, 9, 10, 10]})
    d = gate(ev)
    assert d.passed, d.reasons


def test_gate_refuses_a_model_that_loses_to_a_baseline():
    ev = make_eval([10, 11, 12, 13], {"static": [5, 6, 6, 7], "pacer": [11, 12, 13, 14]})
    d = gate(ev)
    assert not d.passed and any("pacer" in r for r in d.reasons) and not any("static" in r for r in d.reasons)


def test_gate_refuses_an_interval_touching_zero_and_budget_overruns():
    assert not gate(make_eval([10, 9, 11, 10], {"static": [9, 10, 10, 10]})).passed
    d = gate(make_eval([10, 11, 12, 13], {"static": [1, 1, 1, 1]}, over=1))
    assert not d.passed and any("budget" in r for r in d.reasons)
    assert gate(make_eval([10, 11, 12, 13], {"static": [1, 1, 1, 1]}).to_dict()).passed  # from the stored dict


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, reference_params):
    from rl.training.params import scale_market

    out = tmp_path_factory.mktemp("model")
    return train(scale_market(reference_params, 0.05), tiny_config(total_timesteps=32), out).model_path


def test_registry_round_trip(tmp_path, model_file):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    reg = ModelRegistry(con, tmp_path / "models")
    schema = ObservationSchema.from_registry()
    assert reg.promoted() is None and reg.best_baseline() is None
    good = make_eval([10, 11, 12, 13], {"static": [5, 6, 6, 7], "pacer": [8, 9, 10, 10]})
    bad = make_eval([1, 1, 2, 1], {"static": [5, 6, 6, 7], "online_lp": [8, 9, 10, 12]})
    e1 = reg.register(model_file, schema, "h1", ("2025-01-01", "2025-06-30"), good, algo="ppo", timesteps=32)
    e2 = reg.register(model_file, schema, "h2", (None, None), bad, algo="ppo")
    assert (e1.version, e2.version) == (1, 2) and e1.gate_passed and not e2.gate_passed
    assert e1.model_path.exists() and e1.model_path.parent == tmp_path / "models"
    assert e1.schema == schema and e1.params_hash == "h1" and str(e1.window_first) == "2025-01-01"
    assert e1.evaluation["table"]["policy"]["score"] == pytest.approx(11.5)
    assert reg.best_baseline() == "online_lp"  # the latest evaluation's best baseline
    with pytest.raises(ModelRegistryError, match="did not pass"):
        reg.promote(2)
    assert reg.promote(1).promoted and reg.promoted().version == 1
    policy = reg.load_policy(reg.promoted())
    assert isinstance(policy, SB3Policy)
    obs = np.zeros((2, schema.obs_size), dtype=np.float32)
    assert policy.act(obs).shape == (2, schema.action_size)
    # a second connection sees the same rows (it is a table, not memory)
    con.close()
    again = ModelRegistry(duckdb.connect(str(tmp_path / "w.duckdb")), tmp_path / "models")
    assert [e.version for e in again.all()] == [1, 2] and again.promoted().version == 1


def test_load_policy_refuses_an_incompatible_schema(tmp_path, model_file):
    reg = ModelRegistry(duckdb.connect(), tmp_path / "models")
    schema = ObservationSchema.from_registry()
    entry = reg.register(model_file, schema, "h", evaluation=None)
    other = dataclasses.replace(schema, campaign_ids=schema.campaign_ids[::-1], platforms=schema.platforms[::-1])
    with pytest.raises(IncompatibleModelError, match="campaign_ids"):
        reg.load_policy(entry, schema=other)
    with pytest.raises(ModelRegistryError, match="not found"):
        reg.register(tmp_path / "nope.zip", schema, "h")


def test_a_benchmark_plays_the_promoted_model_of_a_data_directory(tmp_path, model_file):
    from benchmarks.ceiling_headroom import promoted_model

    data = tmp_path / "data"
    with pytest.raises(SystemExit, match="no published warehouse"):
        promoted_model(data)
    (data / "published").mkdir(parents=True)
    published = data / "published" / "warehouse.duckdb"
    con = duckdb.connect(str(published))
    reg = ModelRegistry(con, data / "models")
    schema = ObservationSchema.from_registry()
    good = make_eval([10, 11, 12, 13], {"static": [5, 6, 6, 7]})
    reg.register(model_file, schema, "h1", evaluation=good)
    con.close()
    with pytest.raises(SystemExit, match="no promoted model"):
        promoted_model(data)
    with duckdb.connect(str(published)) as con:
        ModelRegistry(con, data / "models").promote(1)
    before = published.read_bytes()
    policy, read_schema, version = promoted_model(data)
    assert isinstance(policy, SB3Policy) and read_schema == schema and version == "v1"
    assert policy.act(np.zeros((1, schema.obs_size), dtype=np.float32)).shape == (1, schema.action_size)
    assert published.read_bytes() == before  # it reads a copy: the readers' warehouse is never written
