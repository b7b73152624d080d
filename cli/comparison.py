"""The comparison runs of the closed loop, on copies of the world and warehouse taken before the loop: the static
operator (the reference settings left in force) and the best baseline through the same daily job. The baseline's run
can go in a background process while the policy trains (`start_comparison`); `python -m cli.comparison` is that
process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from cli.loop import LoopDay, run_loop
from orchestration.environment import DATA_DIR_VAR, data_dir
from orchestration.resources import world_dir
from rl.bidding.policy_choice import promoted_policy

DEFAULT_BASELINE = "online_lp"  # the best baseline in the simulator (benchmarks.policy) when the registry names none


def copy_state(data: Path, world: Path, target: Path) -> tuple[Path, Path]:
    """Copy the warehouse and the world state into the data directory `target`, laid out as the resources expect
    (`warehouse.duckdb`, `world/seed-<seed>`), for a comparison run; returns (data directory, world directory)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copyfile(data / "warehouse.duckdb", target / "warehouse.duckdb")
    copied = target / world.relative_to(data) if world.is_relative_to(data) else target / "world" / world.name
    shutil.copytree(world, copied)
    return target, copied


def comparison_baseline(explicit: str | None) -> str:
    """The best baseline: the one asked for, else the policy registry's, else DEFAULT_BASELINE."""
    if explicit:
        return explicit
    try:
        con = duckdb.connect(str(data_dir() / "warehouse.duckdb"), read_only=True)
        try:
            best = promoted_policy(con, str(data_dir() / "models"))[3]
        finally:
            con.close()
    except Exception:
        best = None
    return best or DEFAULT_BASELINE


PROGRESS_FILE = "loop_days.jsonl"  # one line per loop day a comparison run finished (the parent reads its progress)


COMPARISON_NICE = 19  # the background comparison yields the CPU to training, the yardsticks and the loop


@dataclass
class Comparison:
    """The comparison runs, on copies of the world and warehouse taken before the loop: the static operator (the
    reference settings left in force: nothing pushed) and the best baseline through the same loop (the same job,
    resources and checks as the policy's days, on its own data directory and an ephemeral Dagster instance).

    The baseline's run depends on nothing the retrain job makes (baselines take no trained parameters), so it can
    `start` in a background process as soon as the copies exist: training runs on one core (SB3 with one torch
    thread), and the baseline's days run on the other meanwhile instead of after the policy's loop. It runs at the
    lowest CPU priority (`COMPARISON_NICE`): it has until the end of the policy's loop, while the evaluation's
    yardsticks (beside training, at a priority between the two) must be done before the loop can start, so they go
    first and the comparison takes what is left of the second core, during the loop too."""

    keys: list[str]
    best: str
    static: tuple[Path, Path]  # (data directory, world directory) of the static operator's copy
    baseline: tuple[Path, Path]  # the same for the best baseline's run
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @classmethod
    def prepare(cls, keys: list[str], best: str) -> Comparison:
        """Copy the world and warehouse as they are now (before the loop's first day) for both runs."""
        data, wdir = data_dir(), Path(world_dir())
        static = copy_state(data, wdir, data / "compare" / "static_operator")
        return cls(keys, best, static, copy_state(data, wdir, data / "compare" / f"baseline_{best}"))

    def start(self, log_path: Path) -> None:
        """Run the best baseline's loop in a background process (`python -m cli.comparison`); its Dagster and dbt
        logs go to `log_path`. It runs in a process group of its own (with the dbt builds it starts), which `cancel`
        stops as a whole: the callers cancel on every way out, Ctrl-C included."""
        self.log_path = log_path
        command = [sys.executable, "-m", "cli.comparison", "--data", str(self.baseline[0]), "--policy", self.best]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.keys],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {DATA_DIR_VAR: str(self.baseline[0])},
                start_new_session=True,
            )
        # its own session exists once Popen returns (the child called setsid before exec): lower that, not ours
        lower_priority(self.process.pid, COMPARISON_NICE)

    def days_done(self) -> int:
        path = self.baseline[0] / PROGRESS_FILE
        return len(path.read_text().splitlines()) if path.exists() else 0

    def run_baseline(self, echo: Callable[[str], None]) -> bool:
        """The best baseline's run through the loop days: waited for if it runs in the background, else run here.
        True if every day of it succeeded."""
        if self.process is None:
            echo(f"    comparison: the best baseline ({self.best}) through the same {len(self.keys)} days on a copy")
            return all(
                d.ok
                for d in run_loop(self.keys, self.baseline[0], dg.DagsterInstance.ephemeral(), {"policy": self.best})
            )
        if self.process.poll() is None:
            echo(
                f"    waiting for the best baseline's run in the background (day {self.days_done()}/{len(self.keys)}"
                f"; its log: {self.log_path})"
            )
        ok = self.process.wait() == 0
        if not ok:
            echo(f"    the best baseline's run failed (exit {self.process.returncode}); its log: {self.log_path}")
        return ok

    def cancel(self) -> None:
        """Stop the background run and the dbt build it may be in (it is not needed, or the caller is stopping).
        SIGKILL to its process group: a SIGTERM is swallowed while Dagster executes a run in process (it captures
        interrupts and clears them when the run ends), and the run only ever writes its own disposable copy."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_comparison(
    keys: list[str], baseline: str | None, log_path: Path, echo: Callable[[str], None] = print
) -> Comparison:
    """Copy the state for the comparison runs now and start the best baseline's run in the background (call it
    before training: see `Comparison`). `closed_loop(..., comparison=...)` collects it."""
    comparison = Comparison.prepare(keys, comparison_baseline(baseline))
    comparison.start(log_path)
    echo(
        f"meanwhile, in the background: the best baseline ({comparison.best}) through the same {len(keys)} loop days "
        "on a copy of the world (for the comparison)"
    )
    return comparison


def lower_priority(pid: int, nice: int) -> None:
    """Process `pid` (and what it starts from now on) at `nice` lower CPU priority. With autogroup scheduling
    (Linux's default) CPU time is shared between sessions first and a nice value counts only within its session, so
    for a process that leads a session of its own (`Comparison.start`) the session's nice is what yields the CPU."""
    os.setpriority(os.PRIO_PROCESS, pid, min(os.getpriority(os.PRIO_PROCESS, pid) + nice, 19))
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():
        with contextlib.suppress(OSError):  # not allowed here: the process's own nice still applies
            autogroup.write_text(f"{nice}\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m cli.comparison --data DIR --policy NAME DAY...`: one comparison run through the loop days on the
    copy in DIR (an ephemeral Dagster instance), a line per day on stdout and in DIR/loop_days.jsonl. Exit 1 if a
    day failed. `Comparison.start` runs it in the background."""
    ap = argparse.ArgumentParser(prog="python -m cli.comparison", description=main.__doc__)
    ap.add_argument("--data", type=Path, required=True, help="the copy's data directory (warehouse.duckdb, world/)")
    ap.add_argument("--policy", required=True, help="the baseline that plans every day")
    ap.add_argument("keys", nargs="+", help="the loop days (daily partitions), in order")
    args = ap.parse_args(argv)
    if not (args.data / "warehouse.duckdb").exists():
        print(f"error: no warehouse.duckdb in {args.data} (a comparison run needs a copy: Comparison.prepare)")
        return 2
    progress = args.data / PROGRESS_FILE
    progress.unlink(missing_ok=True)

    def on_day(day: LoopDay) -> None:
        line = json.dumps({"day": day.partition, "ok": day.ok, "wall_s": round(day.wall_s, 2), "error": day.error})
        print(line, flush=True)
        with open(progress, "a") as out:
            out.write(line + "\n")

    days = run_loop(args.keys, args.data, dg.DagsterInstance.ephemeral(), {"policy": args.policy}, on_day=on_day)
    return 0 if all(d.ok for d in days) else 1


if __name__ == "__main__":
    raise SystemExit(main())
