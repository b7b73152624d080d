"""The demo's console: Dagster's run events and what libraries print to stderr go to the log file, the reader's
lines to the terminal (and the log); `verbose` streams everything."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from cli.console import Console


@dg.asset
def chatty(context) -> None:
    context.log.info("a line only the log should hold")


def test_quiet_keeps_dagster_and_warnings_in_the_log_and_says_to_the_terminal(tmp_path, capsys):
    console = Console(tmp_path / "logs", "demo")
    with console.quiet():
        result = dg.materialize([chatty], instance=dg.DagsterInstance.ephemeral())
        print("a library's warning", file=sys.stderr)  # as warnings.warn writes it (pytest intercepts warn)
        console.say("day 1/2 ok")
        console.detail("a table for the log")
    assert result.success
    out = capsys.readouterr()
    assert out.out == "day 1/2 ok\n" and out.err == ""
    log = console.log_path.read_text()
    for line in ("a line only the log should hold", "STEP_SUCCESS", "a library's warning", "day 1/2 ok", "a table"):
        assert line in log
    assert console.log_path.parent == tmp_path / "logs" and console.log_path.name.startswith("demo-")


def test_verbose_streams_everything(tmp_path, capsys):
    console = Console(tmp_path, "demo", verbose=True)
    with console.quiet():
        dg.materialize([chatty], instance=dg.DagsterInstance.ephemeral())
        console.say("day 1/2 ok")
        console.detail("a table for the terminal")
    out = capsys.readouterr()
    assert "a line only the log should hold" in out.err and "day 1/2 ok" in out.out and "a table" in out.out


def test_quiet_sends_other_processes_output_to_the_log(tmp_path, capfd):
    """A process started inside (the retrain job's step processes) prints to the log too; the reader's lines
    still reach the terminal, and the terminal is back afterwards."""
    console = Console(tmp_path, "demo")
    with console.quiet():
        subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"])
        console.say("day 1/2 ok")
    print("after")
    out = capfd.readouterr()
    assert out.out == "day 1/2 ok\nafter\n" and out.err == ""
    log = console.log_path.read_text()
    assert "child out" in log and "child err" in log and "day 1/2 ok" in log
