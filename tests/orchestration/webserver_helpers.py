"""A `dagster-webserver` in a subprocess for end-to-end tests, and a minimal GraphQL client for it.

The server runs in its own process group (its code server, run workers and their log tailers inherit it), so one
signal to the group stops everything it started; `stop` escalates from SIGTERM to SIGKILL and reports anything that
outlived it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class WebserverError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webserver_command() -> list[str]:
    """`dagster-webserver` from the interpreter's own environment (the venv running the tests, wherever it lives)."""
    script = Path(sys.executable).parent / "dagster-webserver"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dagster_webserver"]


def _tail(path: Path, chars: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return text[-chars:] if len(text) > chars else text


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def processes_with_env(name: str, value: str) -> list[int]:
    """Live processes of this user whose environment has `name=value` (catches any that left the group)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@dataclass
class Webserver:
    process: subprocess.Popen
    url: str
    log_path: Path
    timeout: float = 30.0
    _stopped: bool = field(default=False, init=False)

    def log(self) -> str:
        return _tail(self.log_path)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST a query; return `data`, raising with the server's message on a GraphQL or HTTP error."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise WebserverError(f"GraphQL HTTP {e.code}: {e.read().decode(errors='replace')[:2000]}") from e
        if payload.get("errors"):
            raise WebserverError(f"GraphQL errors: {json.dumps(payload['errors'], indent=2)[:4000]}")
        return payload["data"]

    def wait_ready(self, deadline_s: float) -> None:
        """Poll /server_info until it answers; fail early (with the server's output) if the process exits."""
        deadline = time.monotonic() + deadline_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebserverError(
                    f"dagster-webserver exited with {self.process.returncode} before answering; its output:\n"
                    + self.log()
                )
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        json.loads(response.read())
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as e:
                last_error = e
            time.sleep(0.5)
        raise WebserverError(
            f"dagster-webserver did not answer {self.url}/server_info within {deadline_s:.0f} s "
            f"(last error: {last_error!r}); its output:\n{self.log()}"
        )

    def stop(self, grace_s: float = 20.0) -> list[int]:
        """Stop the server and everything in its process group; return the pids that needed SIGKILL."""
        if self._stopped:
            return []
        self._stopped = True
        pgid = self.process.pid  # start_new_session: the server leads its own group
        # The server first, so it shuts its code server down in order; then whatever is left in the group.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        if group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace_s
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
        killed = group_members(pgid)
        if killed:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=grace_s)
        deadline = time.monotonic() + 10
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = group_members(pgid)
        if left:
            raise WebserverError(f"processes {left} of the webserver's group survived SIGKILL")
        return killed


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM if the test process dies without its finalizers (e.g. killed by CI)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_webserver(workspace: Path, env: dict[str, str], log_path: Path, cwd: Path) -> Webserver:
    """Start `dagster-webserver` on a free local port in its own process group (not yet waited for)."""
    port = free_port()
    command = [*webserver_command(), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)]
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        log.close()  # the child holds its own descriptor
    return Webserver(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)


# -- an instance that launches at once, and the GraphQL calls the UI makes to launch and follow a run -------------

# The run coordinator that submits straight to the run launcher (the default, queued one waits for the daemon).
IMMEDIATE_RUN_COORDINATOR = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

WORKSPACE_QUERY = """
{ workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
        __typename ... on PythonError { message stack } } } }
    ... on PythonError { message }
} }
"""
REPOSITORIES_QUERY = """
{ repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
} }
"""
LAUNCH_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message className }
    ... on Error { message }
  }
}
"""
RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } assetMaterializations { assetKey { path } partition } }
    ... on Error { message }
  }
}
"""
RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!, $cursor: String) {
  runOrError(runId: $runId) {
    ... on Run { eventConnection(afterCursor: $cursor, limit: 1000) {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on ErrorEvent { error { message stack errorChain { error { message stack } } } }
      }
    } }
  }
}
"""


def write_instance(home: Path, template: Path) -> Path:
    """DAGSTER_HOME/dagster.yaml: the project's instance template with the immediate run coordinator."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(template.read_text().rstrip("\n") + "\n" + IMMEDIATE_RUN_COORDINATOR)
    return path


def find_job(server: Webserver, job: str, deadline_s: float) -> tuple[str, str]:
    """(location name, repository name) of the repository serving `job`, once the code location has loaded."""
    deadline = time.monotonic() + deadline_s
    while True:
        workspace = server.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise WebserverError(f"workspace: {workspace}")
        for entry in workspace["locationEntries"]:
            error = entry["locationOrLoadError"]
            if error and error["__typename"] == "PythonError":
                raise WebserverError(
                    f"code location {entry['name']} failed to load:\n{error['message']}{''.join(error['stack'])}"
                )
        repositories = server.graphql(REPOSITORIES_QUERY)["repositoriesOrError"]
        for node in repositories.get("nodes", []):
            if job in {j["name"] for j in node["jobs"]}:
                return node["location"]["name"], node["name"]
        if time.monotonic() > deadline:
            raise WebserverError(
                f"no repository serves {job}: {json.dumps(repositories)}\nserver output:\n{server.log()}"
            )
        time.sleep(1)


def launch_partition(
    server: Webserver, location: str, repository: str, job: str, partition: str, run_config: dict | None = None
) -> dict:
    """Launch `job` for one partition as the UI's launchpad does (with its run config, if any); returns the
    `launchRun` answer."""
    params = {
        "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": job},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        "runConfigData": run_config or {},
    }
    return server.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchRun"]


def run_events(server: Webserver, run_id: str) -> list[dict]:
    events, cursor = [], None
    while True:
        page = server.graphql(RUN_EVENTS_QUERY, {"runId": run_id, "cursor": cursor})["runOrError"]["eventConnection"]
        events += page["events"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


def run_errors(server: Webserver, run_id: str) -> str:
    """Every error of the run's event log with its causes (the step's own error is a wrapper), one block per event."""
    blocks = []
    for event in run_events(server, run_id):
        error = event.get("error")
        if not error:
            continue
        chain = [error, *(link["error"] for link in error["errorChain"])]
        text = "\n".join(e["message"].rstrip() + "\n" + "".join(e["stack"]) for e in chain)
        blocks.append(f"[{event['__typename']} {event.get('stepKey') or ''}] {event['message']}\n{text}")
    return "\n\n".join(blocks)


def wait_for_run(server: Webserver, run_id: str, deadline_s: float) -> dict:
    """Poll the run until it is terminal; on running out of time, fail with its events and the server's output."""
    deadline = time.monotonic() + deadline_s
    while True:
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if run["__typename"] != "Run":
            raise WebserverError(f"run {run_id}: {run}")
        if run["status"] in TERMINAL_STATUSES:
            return run
        if time.monotonic() > deadline:
            messages = "\n".join(f"  {e['__typename']}: {e.get('message', '')}" for e in run_events(server, run_id))
            raise WebserverError(
                f"run {run_id} still {run['status']} after {deadline_s:.0f} s; its events:\n{messages}\n"
                f"server output:\n{server.log()}"
            )
        time.sleep(1)


def dismiss_community_dialog(server: Webserver) -> None:
    """Mark the UI's first-visit "Join the Dagster community" dialog as seen (it would cover every page)."""
    server.graphql("mutation { setNuxSeen }")
