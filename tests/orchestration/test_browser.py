"""The Dagster UI and the daily report in a real browser: `dagster-webserver` serves workspace.yaml, a GraphQL client
launches `daily_bidding_job` for one day (as the UI's launchpad would), and headless Chromium loads the asset graph,
the report asset's page and the report that run wrote, checks what they show and saves screenshots under
test-artifacts/browser/ (the paths are printed and recorded as test properties).

Setup. Debian's `chromium` is installed if missing. A fresh instance (the project's dagster.yaml with the
immediate run coordinator, so no daemon is needed) and a small demo world (the reference account at 30% volume:
at 10% a channel group's tablets may not convert at all, which discovery's device chart does not survive). The
daily job rediscovers the account's patterns, which needs mature conversion lags (click dates 30 days old), so the
40 days before the day are first ingested and built into the warehouse by a separate Python process (an ephemeral
instance, the same data directory) while the webserver starts. Everything started (backfill, webserver, code
server, run worker, every Chromium) is stopped at the end, whatever happened.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.orchestration.webserver_helpers import (
    WebserverError,
    die_with_parent,
    dismiss_community_dialog,
    find_job,
    group_members,
    launch_partition,
    processes_with_env,
    run_errors,
    start_webserver,
    wait_for_run,
    write_instance,
)
from tests.system_packages import ensure_debian_packages, find_executable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
JOB = "daily_bidding_job"
# The world's history starts 2024-11-26; 40 days of it before the day give discovery 10 mature click dates.
HISTORY = ("2024-11-26", "2025-01-04")
DAY = "2025-01-05"
SCALE, SEED = 0.3, "3"
STARTUP_DEADLINE_S = 120
BACKFILL_DEADLINE_S = 180
RUN_DEADLINE_S = 180
# All steps in the run worker: the default multiprocess executor starts a Python process per step (~11 s each here,
# and the DuckDB pool runs them one at a time anyway), which would triple the run; test_webserver.py covers it.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
GRAPH_ASSETS = ("daily_bid_plan", "bid_push", "daily_performance_report", "fct_campaign_daily", "dim_campaign")

BACKFILL = """
import sys
import dagster as dg
from assets.ingestion import INGESTION_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.resources import build_resources

tags = {"dagster/asset_partition_range_start": sys.argv[1], "dagster/asset_partition_range_end": sys.argv[2]}
result = dg.materialize([*INGESTION_ASSETS, *WAREHOUSE_ASSETS], resources=build_resources(), tags=tags,
                        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
sys.exit(0 if result.success else 1)
"""

REPORT_MATERIALIZATION = """
query Report($partitions: [String!]) {
  assetOrError(assetKey: {path: ["daily_performance_report"]}) {
    __typename
    ... on Asset { assetMaterializations(partitions: $partitions) {
        runId partition
        metadataEntries { label __typename ... on PathMetadataEntry { path } ... on MarkdownMetadataEntry { mdStr } }
    } }
  }
}
"""


# -- headless Chromium -----------------------------------------------------------------------------------------


class BrowserError(RuntimeError):
    pass


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces it does not get
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB; renderers crash on big pages without this
    "--hide-scrollbars",
)


@dataclass
class Chromium:
    """Headless Chromium from the command line: each call a fresh browser with a fresh profile under `profiles`,
    in its own process group, which is gone (SIGKILL if need be) when the call returns."""

    executable: Path
    profiles: Path
    timeout_s: float = 90.0
    _calls: int = field(default=0, init=False)

    def _run(self, args: list[str]) -> str:
        self._calls += 1
        profile = self.profiles / f"profile-{self._calls}"
        command = [str(self.executable), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        try:
            out, err = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired as timeout:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            message = f"chromium timed out after {self.timeout_s:.0f} s: {command}\n{err.decode()[-3000:]}"
            raise BrowserError(message) from timeout
        finally:
            if group_members(process.pid):  # helpers (zygote, GPU/network services) that outlived the browser
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if process.returncode != 0:
            raise BrowserError(f"chromium exited {process.returncode}: {command}\n{err.decode()[-3000:]}")
        return out.decode(errors="replace")

    def dump_dom(self, url: str, budget_ms: int = 20_000, window: str = "1600,1000") -> str:
        """The DOM after `budget_ms` of virtual time (enough for a single-page app to fetch and render)."""
        return self._run([f"--window-size={window}", f"--virtual-time-budget={budget_ms}", "--dump-dom", url])

    def screenshot(self, url: str, path: Path, budget_ms: int = 20_000, window: str = "1600,1000") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run([f"--window-size={window}", f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url])
        if not path.exists() or path.stat().st_size == 0:
            raise BrowserError(f"chromium wrote no screenshot of {url} to {path}")
        return path


def _processes_with_argument(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (a browser that escaped its process group)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _chromium() -> Path:
    ensure_debian_packages("chromium")
    found = find_executable("chromium", ("/usr/lib/chromium/chromium",)) or find_executable("chromium-browser")
    if found is None:
        pytest.fail("chromium is installed but no chromium executable was found on PATH or in /usr/lib/chromium")
    return found


def _text(dom: str) -> str:
    """The visible text of a DOM dump (scripts and styles dropped), whitespace collapsed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


@pytest.fixture(scope="module")
def stack(tmp_path_factory, reference_params):
    """Chromium, a backfilled demo warehouse, and a webserver over it; everything stopped at the end."""
    started = time.monotonic()
    chromium = _chromium()
    tmp = tmp_path_factory.mktemp("browser")
    home = tmp / "dagster_home"
    write_instance(home, REPO / "orchestration" / "instance" / "dagster.yaml")
    world_file = tmp / "world.yaml"
    world_file.write_text(scaled(reference_params, SCALE).to_yaml())
    data = tmp / "data"
    env = dict(os.environ)
    env.pop("GAELP_HISTORY_START", None)  # the partitions start where the world file's history starts
    env.update(
        DAGSTER_HOME=str(home),
        GAELP_ENV="demo",
        GAELP_DATA_DIR=str(data),
        GAELP_WORLD_FILE=str(world_file),
        GAELP_WORLD_SEED=SEED,
    )
    backfill_log = tmp / "backfill.log"
    with open(backfill_log, "wb") as log:
        backfill = subprocess.Popen(
            [sys.executable, "-c", BACKFILL, *HISTORY], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = start_webserver(REPO / "workspace.yaml", env, tmp / "webserver.log", cwd=REPO)
    try:
        server.wait_ready(STARTUP_DEADLINE_S)
        location, repository = find_job(server, JOB, STARTUP_DEADLINE_S)
        try:
            code = backfill.wait(timeout=BACKFILL_DEADLINE_S)
        except subprocess.TimeoutExpired:
            backfill.kill()
            backfill.wait()
            code = "timeout"
        assert code == 0, f"backfill {HISTORY} failed ({code}):\n{backfill_log.read_text(errors='replace')[-5000:]}"
        print(f"\nsetup (chromium, backfill {HISTORY[0]}..{HISTORY[1]}, webserver): {time.monotonic() - started:.0f} s")
        yield {
            "server": server,
            "data": data,
            "location": location,
            "repository": repository,
            "browser": Chromium(chromium, tmp / "chromium"),
        }
    finally:
        try:
            if backfill.poll() is None:
                backfill.kill()
                backfill.wait()
            server.stop()
        finally:
            leftovers = processes_with_env("DAGSTER_HOME", str(home)) + _processes_with_argument(str(tmp / "chromium"))
            for pid in leftovers:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        assert not leftovers, (
            f"processes {leftovers} outlived the webserver's or a browser's process group (killed now)"
        )


def _report_metadata(server) -> dict:
    answer = server.graphql(REPORT_MATERIALIZATION, {"partitions": [DAY]})["assetOrError"]
    assert answer["__typename"] == "Asset", answer
    (materialization,) = [m for m in answer["assetMaterializations"] if m["partition"] == DAY]
    return {e["label"]: e for e in materialization["metadataEntries"]}


def test_the_daily_run_and_its_report_render_in_a_browser(stack, record_property, capsys):
    server, browser = stack["server"], stack["browser"]
    started = time.monotonic()
    launched = launch_partition(server, stack["location"], stack["repository"], JOB, DAY, IN_PROCESS)
    assert launched["__typename"] == "LaunchRunSuccess", f"launchRun refused {DAY}: {launched}"
    run_id = launched["run"]["runId"]
    try:
        run = wait_for_run(server, run_id, RUN_DEADLINE_S)
    except WebserverError as e:
        pytest.fail(str(e))
    assert run["status"] == "SUCCESS", (
        f"run {run_id} ended {run['status']}; errors:\n{run_errors(server, run_id)}\nserver output:\n{server.log()}"
    )
    materialized = {(m["assetKey"]["path"][-1], m["partition"]) for m in run["assetMaterializations"]}
    assert {(a, DAY) for a in ("daily_bid_plan", "bid_push", "daily_performance_report")} <= materialized
    run_s = time.monotonic() - started

    # the report's materialization links the file it wrote
    metadata = _report_metadata(server)
    link = metadata["report_path"]
    assert link["__typename"] == "PathMetadataEntry", link
    report = Path(link["path"])
    assert report == stack["data"] / "reports" / "daily" / DAY / "report.html" and report.exists()
    assert "|---" in metadata["summary"]["mdStr"] and "data:image/png;base64," in metadata["chart"]["mdStr"]

    dismiss_community_dialog(server)
    for old in ARTIFACTS.glob("*"):  # a failure below must not leave an earlier run's pictures looking current
        old.unlink()
    shots = {}
    # the asset graph: the bidding group with its neighbours, the report among them
    graph_url = f"{server.url}/locations/{stack['location']}/asset-groups/bidding"
    graph = _text(browser.dump_dom(graph_url))
    missing = [a for a in GRAPH_ASSETS if a not in graph]
    if missing:  # a slow machine: give the app more virtual time once
        graph = _text(browser.dump_dom(graph_url, budget_ms=60_000))
        missing = [a for a in GRAPH_ASSETS if a not in graph]
    assert not missing, f"the asset graph at {graph_url} does not show {missing}; its text:\n{graph[:3000]}"
    assert "Join the Dagster community" not in graph
    shots["asset_graph"] = browser.screenshot(graph_url, ARTIFACTS / "asset_graph.png")

    # the report asset's page for the day: its metadata (summary table, chart, link) as the UI shows it
    asset_url = f"{server.url}/assets/daily_performance_report?view=partitions&partition={DAY}"
    asset_page = _text(browser.dump_dom(asset_url))
    assert "report_path" in asset_page and str(report) in asset_page, asset_page[:3000]
    shots["report_asset"] = browser.screenshot(asset_url, ARTIFACTS / "report_asset.png")

    # the report itself, opened from the file the run wrote
    page = _text(browser.dump_dom(report.as_uri(), budget_ms=2_000))
    for heading in (f"Daily performance report — {DAY}", "By platform", "Spend and pacing", "CPA vs target"):
        assert heading in page, heading
    assert "The plan pushed and why" in page and "all platforms" in page
    shots["report"] = browser.screenshot(report.as_uri(), ARTIFACTS / "report.png", budget_ms=2_000, window="1280,3400")

    kept = (
        ARTIFACTS / "report.html"
    )  # the run's data directory is a temporary one; the report is kept with its pictures
    shutil.copyfile(report, kept)
    record_property("report", str(kept))
    for name, path in shots.items():
        record_property(f"screenshot_{name}", str(path))
    with capsys.disabled():
        browser_s = time.monotonic() - started - run_s
        print(f"\nrun {run_id} ({JOB}, {DAY}): SUCCESS in {run_s:.0f} s; browser checks {browser_s:.0f} s")
        print(f"report: {kept} (written by the run to {report})")
        for name, path in shots.items():
            print(f"screenshot {name}: {path}")
