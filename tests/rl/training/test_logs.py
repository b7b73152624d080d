"""Training leaves no litter: whatever Stable-Baselines3 logs goes under the run's own directory (inside the data
directory in GAELP), never into the system temp dir (SB3's default for a `learn` without TensorBoard is an empty
`SB3-<time>` directory there, one per call)."""

from __future__ import annotations

import tempfile

import pytest

from rl.training.train import train
from tests.rl.training.conftest import tiny_config


@pytest.mark.parametrize("tensorboard", [False, True])
def test_training_logs_only_under_its_run_directory(tmp_path, tiny_params, monkeypatch, tensorboard):
    # The system temp dir as every library sees it (`tempfile.gettempdir()`, which SB3 asks), private to this test:
    # other processes on the machine may be creating SB3-* directories in the real one at the same time.
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    assert tempfile.gettempdir() == str(system_tmp)
    run_dir = tmp_path / "data" / "models" / "runs" / "tiny"
    result = train(tiny_params, tiny_config(tensorboard=tensorboard), run_dir)
    assert result.timesteps >= 96 and result.model_path.exists()
    assert not list(system_tmp.glob("SB3-*")), sorted(p.name for p in system_tmp.iterdir())
    events = list(run_dir.rglob("events.out.tfevents.*"))
    if tensorboard:
        assert events and all(e.is_relative_to(run_dir / "tensorboard" / "ppo_1") for e in events), events
    else:
        assert not events and not (run_dir / "tensorboard").exists()
    outside = [p for p in tmp_path.iterdir() if p.name not in ("data", "system-tmp")]
    assert not outside, outside
