"""The demo world: persisted, deterministic for (world file, seed, push history), pushes effective next day."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rl.market.params import MarketParams
from rl.world.world import DemoWorld, WorldError
from tests.conftest import scaled


@pytest.fixture(scope="module")
def world_file(tmp_path_factory, reference_params: MarketParams) -> Path:
    """The reference world at 10% volume, so a few weeks simulate in well under a second."""
    path = tmp_path_factory.mktemp("worlds") / "small.yaml"
    path.write_text(scaled(reference_params, 0.1).to_yaml())
    return path


def _facts(world: DemoWorld) -> dict[str, pl.DataFrame]:
    return {k: v.sort(v.columns) for k, v in world.frames().items()}


def _assert_same_facts(a: DemoWorld, b: DemoWorld) -> None:
    fa, fb = _facts(a), _facts(b)
    for name in fa:
        assert_frame_equal(fa[name], fb[name], check_exact=True)


def test_same_file_seed_and_pushes_give_identical_history(tmp_path, world_file):
    worlds = []
    for name in ("a", "b"):
        w = DemoWorld.open(tmp_path / name, world_file, seed=3)
        w.advance(5)
        w.push(102, bid=5.5, daily_budget=90.0, source="test")
        w.advance(6)
        worlds.append(w)
    _assert_same_facts(*worlds)
    other = DemoWorld.open(tmp_path / "c", world_file, seed=4)
    other.advance(11)
    assert not _facts(other)["ads"].equals(_facts(worlds[0])["ads"])


def test_history_does_not_depend_on_how_days_are_chunked(tmp_path, world_file):
    one = DemoWorld.open(tmp_path / "one", world_file, seed=1)
    one.advance(12)
    many = DemoWorld.open(tmp_path / "many", world_file, seed=1)
    for _ in range(4):
        many.advance(3)
    reopened = DemoWorld.open(tmp_path / "many", world_file, seed=1)
    assert reopened.today == one.today == one.params.history_start + dt.timedelta(days=12)
    _assert_same_facts(one, reopened)


def test_push_takes_effect_from_the_next_simulated_day_only(tmp_path, world_file):
    base = DemoWorld.open(tmp_path / "base", world_file, seed=2)
    base.advance(10)
    pushed = DemoWorld.open(tmp_path / "pushed", world_file, seed=2)
    pushed.advance(5)
    day_of_push = pushed.today
    p = pushed.push(201, bid=30.0, daily_budget=200.0, source="test")
    assert p.effective_date == day_of_push
    pushed.advance(5)
    settings = pushed.frames()["settings"].filter(pl.col("campaign_id") == 201).sort("date")
    assert settings.filter(pl.col("date") < day_of_push)["bid"].to_list() == [18.0] * 5
    assert settings.filter(pl.col("date") >= day_of_push)["bid"].to_list() == [30.0] * 5
    ads_b = base.frames()["ads"].sort(["date", "hour", "device", "campaign_id"])
    ads_p = pushed.frames()["ads"].sort(["date", "hour", "device", "campaign_id"])
    assert_frame_equal(ads_b.filter(pl.col("date") < day_of_push), ads_p.filter(pl.col("date") < day_of_push))
    spend = lambda f: f.filter((pl.col("date") >= day_of_push) & (pl.col("campaign_id") == 201))["cost_micros"].sum()  # noqa: E731
    assert spend(ads_p) > spend(ads_b)  # the bigger budget and bid bought more
    daily = ads_p.filter(pl.col("campaign_id") == 201).group_by("date").agg(pl.col("cost_micros").sum())
    assert daily["cost_micros"].max() <= 200.0 * 1e6 + 1  # the platform never overspends the pushed budget


def test_replay_reproduces_recorded_history_through_pushes(tmp_path, world_file):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=5)
    w.advance(4)
    w.push(101, bid=3.0, source="test")
    w.push(301, daily_budget=0.0, source="test")
    w.advance(4)
    costs: list[float] = []
    w.replay(lambda draws, state, result: costs.append(float(result.cost.sum())))
    recorded = w.frames()["ads"].group_by("date").agg(pl.col("cost_micros").sum()).sort("date")["cost_micros"]
    np.testing.assert_allclose(np.array(costs) * 1e6, recorded.to_numpy(), atol=8 * 24 * 3)  # micros rounding
    assert len(w.pushes()) == 2


def test_world_refuses_a_state_directory_from_another_world_or_seed(tmp_path, world_file, reference_params):
    DemoWorld.open(tmp_path / "w", world_file, seed=1).advance(1)
    with pytest.raises(WorldError, match="seed 1"):
        DemoWorld.open(tmp_path / "w", world_file, seed=2)
    other = tmp_path / "other.yaml"
    other.write_text(scaled(reference_params, 0.3).to_yaml())
    with pytest.raises(WorldError, match="another state"):
        DemoWorld.open(tmp_path / "w", other, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"campaign_id": 999, "bid": 1.0}, "unknown campaign id 999"),
        ({"campaign_id": 101, "bid": -1.0}, "bid must be a finite number >= 0, got -1.0"),
        ({"campaign_id": 101, "daily_budget": float("nan")}, "daily_budget must be a finite number"),
        ({"campaign_id": 101}, "changes nothing"),
    ],
)
def test_bad_pushes_are_refused_and_change_nothing(tmp_path, world_file, kwargs, message):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=1)
    before = dict(w.settings)
    with pytest.raises(WorldError, match=message):
        w.push(**kwargs)
    assert w.settings == before and w.pushes() == []


def test_reopen_discards_work_of_a_crashed_advance(tmp_path, world_file):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=1)
    w.advance(3)
    committed = _facts(w)
    # A crash after writing a chunk and a push line but before the commit of world.json:
    stray = tmp_path / "w" / "tables" / "ads" / f"{w.today.isoformat()}_{w.today.isoformat()}.parquet"
    committed["ads"].head(5).write_parquet(stray)
    with open(tmp_path / "w" / "pushes.jsonl", "a") as f:
        f.write(
            json.dumps(
                {
                    "seq": 0,
                    "effective_date": w.today.isoformat(),
                    "campaign_id": 101,
                    "daily_budget": None,
                    "bid": 9.0,
                    "source": "crash",
                }
            )
            + "\n"
        )
    again = DemoWorld.open(tmp_path / "w", world_file, seed=1)
    assert not stray.exists()
    assert again.pushes() == []
    for name, frame in _facts(again).items():
        assert_frame_equal(frame, committed[name])


def test_conversions_keep_their_true_dates_and_never_precede_the_click(tmp_path, world_file):
    w = DemoWorld.open(tmp_path / "w", world_file, seed=9)
    w.advance(20)
    conv = w.frames()["conversions"]
    assert conv.height > 0
    lag = (conv["conv_date"] - conv["click_date"]).dt.total_days()
    assert (lag == conv["lag_days"]).all() and (lag >= 0).all()
    same_day = conv.filter(pl.col("lag_days") == 0)
    assert (same_day["conv_hour"] >= same_day["click_hour"]).all()
    assert conv["conv_date"].max() >= w.today  # some of them have not happened yet


def _advance_in_another_process(state_dir: str, world_file: str, until: str) -> str:
    w = DemoWorld.open(state_dir, world_file, seed=6)
    w.advance_to(dt.date.fromisoformat(until))
    return w.today.isoformat()


def test_concurrent_processes_share_one_clock(tmp_path, world_file):
    """Several Dagster steps may read the demo world at once: they must not both simulate the same days."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    start = DemoWorld.open(tmp_path / "w", world_file, seed=6).params.history_start
    until = (start + dt.timedelta(days=6)).isoformat()
    # spawn, not fork: forking after polars has started its thread pool can deadlock the child
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(
            pool.map(_advance_in_another_process, [str(tmp_path / "w")] * 2, [str(world_file)] * 2, [until] * 2)
        )
    assert results == [until, until]
    w = DemoWorld.open(tmp_path / "w", world_file, seed=6)
    assert w.today.isoformat() == until
    assert w.frames()["settings"].height == 6 * len(w.params.campaigns)  # every day simulated exactly once
