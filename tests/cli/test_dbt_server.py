"""The warm dbt (cli/dbt_server.py) behaves as the dbt executable it stands in for: arguments, working directory,
environment, output and exit code pass through; Ctrl-C stops the dbt it forked; without a server it is dbt itself.
The loop-day tests (test_plan_unchanged, test_closed_loop) run their builds through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.dbt_server import CLIENT, HEADER, warm_dbt
from orchestration.resources import dbt_executable

PROFILE = """sleepy:
  target: local
  outputs:
    local:
      type: duckdb
      path: {path}
      threads: 1
"""


def run(client: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([client, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_arguments_environment_output_and_exit_code_pass_through(tmp_path):
    with warm_dbt(dbt_executable()) as client:
        profiles = tmp_path / "elsewhere"
        profiles.mkdir()
        env = {**os.environ, "DBT_PROFILES_DIR": str(profiles)}
        shown = run(client, "debug", "--config-dir", cwd=tmp_path, env=env)
        assert shown.returncode == 0, shown.stderr
        assert str(profiles) in shown.stdout  # the client's environment, on the client's stdout

        wrong = run(client, "no-such-command", cwd=tmp_path)
        assert wrong.returncode == 2
        assert "No such command 'no-such-command'" in wrong.stderr

        started = time.perf_counter()
        again = run(client, "--help", cwd=tmp_path)
        assert again.returncode == 0 and "build" in again.stdout
        assert time.perf_counter() - started < 1.0  # forked from a warm dbt, not a new Python importing it
    assert not Path(client).exists()  # the server's socket and client are gone with the block


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_to_the_client_stops_the_forked_dbt(tmp_path, signum):
    """SIGINT, then SIGTERM, to the client (what dagster-dbt sends on cancel) reach dbt, which stops and exits; a
    client killed outright hangs up, and the server stops its dbt."""
    (tmp_path / "dbt_project.yml").write_text("name: sleepy\nversion: '1.0'\nprofile: sleepy\n")
    (tmp_path / "profiles.yml").write_text(PROFILE.format(path=tmp_path / "s.duckdb"))
    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "forever.sql").write_text(
        "{% macro forever() %}{{ log('looping forever', info=True) }}"
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endmacro %}"
    )
    with warm_dbt(dbt_executable()) as client:
        dbt = subprocess.Popen(
            [client, "run-operation", "forever", "--profiles-dir", str(tmp_path)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # wait until dbt is inside the macro (past its start-up, which takes longer on a busy machine)
        for line in dbt.stdout:
            if "looping forever" in line:
                break
        time.sleep(0.5)
        dbt.send_signal(signum)
        try:
            code = dbt.wait(timeout=30)
        finally:
            dbt.kill()
        assert code != 0
        # dbt's processes (the fork, multiprocessing's resource tracker it started) end within moments
        deadline = time.monotonic() + 10
        while forked_dbt_running(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not forked_dbt_running(tmp_path)


def forked_dbt_running(project: Path) -> bool:
    """Whether a process still runs dbt on `project` (its working directory)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd") == str(project):
                return True
        except OSError:
            continue
    return False


def test_without_a_server_the_client_is_dbt(tmp_path):
    client = tmp_path / "dbt"
    client.write_text(
        CLIENT.format(
            python=sys.executable, socket_path=str(tmp_path / "gone.sock"), real_dbt=dbt_executable(), header=HEADER
        )
    )
    client.chmod(0o755)
    shown = run(str(client), "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "build" in shown.stdout


@pytest.mark.parametrize("closed", [0, 2])
def test_a_closed_standard_stream_becomes_dev_null(tmp_path, closed):
    """dagster-dbt gives dbt all three; a caller that closed one still gets dbt and its output."""
    with warm_dbt(dbt_executable()) as client:
        shown = subprocess.run(
            [client, "--help"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
            timeout=120,
            preexec_fn=lambda: os.close(closed),  # noqa: PLW1509 (nothing else runs in the test process)
        )
    assert shown.returncode == 0 and "build" in shown.stdout
