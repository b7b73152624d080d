"""The patterns plot is a PNG with the four panels."""

from __future__ import annotations

import matplotlib.image

from rl.discovery.engine import discover_marts
from rl.discovery.plots import plot_patterns
from tests.rl.discovery.synthetic import synthetic_marts


def test_plot_patterns_writes_a_png(tmp_path):
    p = discover_marts(synthetic_marts(60, seed=0), n_bootstrap=20)
    out = plot_patterns(p, tmp_path / "sub" / "patterns.png")
    assert out == tmp_path / "sub" / "patterns.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(out)
    assert img.shape[0] > 600 and img.shape[1] > 900


def test_a_device_without_a_rate_but_with_an_interval_still_plots(tmp_path):
    """No sessions converted on a device: its rate is drawn at 0 while its interval lies above 0 (it used to fail
    with negative error bars, and `discovered_patterns` with it)."""
    p = discover_marts(synthetic_marts(60, seed=0), n_bootstrap=20)
    group = p.devices.get()
    first = group.devices[0]
    assert first.interval is not None and first.interval.lo > 0
    group.devices[0] = first.model_copy(update={"conversion_rate": None})
    out = plot_patterns(p, tmp_path / "patterns.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
