"""A closed-loop run's outcome from the world's facts: the spend the platforms reported and the eventual conversions
of each day's clicks, per loop day."""

from __future__ import annotations

import datetime as dt

from rl.evaluation.closed_loop import outcome
from rl.world.world import DemoWorld
from tests.conftest import scaled


def test_outcome_adds_up_the_worlds_facts_per_day_and_advances_a_world_left_behind(tmp_path, reference_params):
    params = scaled(reference_params, 0.1)
    world_file = tmp_path / "world.yaml"
    world_file.write_text(params.to_yaml())
    first = params.history_start + dt.timedelta(days=5)
    keys = [(first + dt.timedelta(days=i)).isoformat() for i in range(3)]
    result = outcome("static", tmp_path / "world", str(world_file), 4, keys)  # a new world: simulated up to the loop
    world = DemoWorld.open(tmp_path / "world", str(world_file), 4)
    assert world.today == first + dt.timedelta(days=3)
    frames = world.frames()
    for key in keys:
        day = dt.date.fromisoformat(key)
        ads = frames["ads"].filter(frames["ads"]["date"] == day)
        assert result.spend[key] == float(ads["cost_micros"].sum()) / 1e6
        assert (
            result.conversions[key] == frames["conversions"].filter(frames["conversions"]["click_date"] == day).height
        )
    assert result.total_spend > 0 and result.max_daily_spend == max(result.spend.values())
    assert result.cpa == result.total_spend / result.total_conversions
