"""`make demo` end to end on a small world: it prints the campaign table and the oracle comparison, and a re-run
gives the same output without re-simulating."""

from __future__ import annotations

from rl.world import demo
from tests.conftest import scaled


def test_demo_prints_reports_and_is_idempotent(tmp_path, capsys, reference_params):
    world_file = tmp_path / "w.yaml"
    world_file.write_text(scaled(reference_params, 0.1).to_yaml())
    args = ["--world", str(world_file), "--seed", "4", "--days", "3", "--state-dir", str(tmp_path / "state")]
    assert demo.main(args) == 0
    first = capsys.readouterr().out
    for expected in (
        "Search | Brand",
        "Microsoft | Search | Parental Controls",
        "Total",
        "Paid Social",
        "clairvoyant oracle",
        "LP bound",
    ):
        assert expected in first
    plot = tmp_path / "state" / "demo.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert demo.main(args) == 0
    assert capsys.readouterr().out == first


def test_demo_reports_a_bad_world_file_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndaily_budget: -5\n")
    assert demo.main(["--world", str(bad), "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "daily_budget" in err and "-5" in err
