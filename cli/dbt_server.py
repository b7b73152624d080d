"""dbt with its Python already loaded, for commands that run many builds in one process (the demo's loop days).

Every `dbt build` starts a new Python that spends about 1.2 s importing dbt before it reads a file: on a loop day of
about 9 s that is the largest cost left outside the build itself. `warm_dbt()` starts one server process that
imports dbt once, then forks a copy of itself per dbt command. dagster-dbt still runs an executable per build, as
it always does: a small client script (`dbt_executable`) that hands the server its arguments, working directory,
environment and its stdin/stdout/stderr (passed over the Unix socket, so dbt's JSON lines go straight to
dagster-dbt's pipe), forwards SIGINT/SIGTERM to the forked dbt, and exits with dbt's exit code. Nothing else
changes: each command is a fresh fork, so no state passes from one build to the next, and dbt still checks its
partial parse against the project files as usual.

When the server is not there (not started yet, stopped, failed to start) the client runs the real dbt itself, so
a build never depends on it. The server exits when the process that started it closes its stdin (or dies).

    python -m cli.dbt_server SOCKET     # serves until stdin closes; warm_dbt() does this
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HEADER = 8  # bytes: the length of the JSON request that follows

# The client: stdlib only, started with -IS (no site packages: it starts in ~20 ms). {python}, {socket_path} and
# {real_dbt} are filled in by warm_dbt().
CLIENT = '''#!{python} -IS
"""dbt through the GAELP dbt server (cli/dbt_server.py); the real dbt when the server is not there."""
import json, os, signal, socket, sys

SOCKET, REAL_DBT = {socket_path!r}, {real_dbt!r}


def main():
    for fd in (0, 1, 2):  # the server needs all three: an unset one becomes /dev/null, as it would for dbt
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.connect(SOCKET)
    except OSError:
        os.execv(REAL_DBT, [REAL_DBT, *sys.argv[1:]])
    request = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
    socket.send_fds(server, [len(request).to_bytes({header}, "big")], [0, 1, 2])
    server.sendall(request)
    replies = server.makefile("rb")
    pid = replies.readline()
    if pid:
        def forward(signum, _frame):
            try:
                os.kill(int(pid), signum)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        code = replies.readline()
        if code:
            sys.exit(int(code))
    print("error: the dbt server (cli/dbt_server.py) stopped before dbt finished", file=sys.stderr)
    sys.exit(1)


main()
'''


# What every `dbt build` on the DuckDB warehouse imports: dbt's CLI, its build task and parser, the duckdb adapter.
WARM_MODULES = (
    "agate",
    "dbt.adapters.duckdb",
    "dbt.adapters.factory",
    "dbt.cli.main",
    "dbt.parser.manifest",
    "dbt.task.build",
)


def warm_up() -> None:
    """Import `WARM_MODULES`, so that each fork starts with them loaded."""
    for name in WARM_MODULES:
        importlib.import_module(name)


def run_dbt(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """In the forked child: dbt's own entry point (`dbt = dbt.cli.main:cli`) on `argv`, in `cwd` with `env`."""
    from dbt.cli.main import cli  # loaded by warm_up() before the fork: only looked up here

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["dbt", *argv]
    try:
        code = cli.main(args=argv, prog_name="dbt", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """A client's request (argv, cwd, env) and its stdin/stdout/stderr."""
    data, fds, _flags, _addr = socket.recv_fds(conn, HEADER, 3)
    while len(data) < HEADER:
        data += conn.recv(HEADER - len(data))
    size, body = int.from_bytes(data, "big"), b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the dbt client went away mid-request")
        body += chunk
    if len(fds) != 3:
        raise ConnectionError(f"the dbt client passed {len(fds)} file descriptors, not its stdin/stdout/stderr")
    return json.loads(body), fds


def start(request: dict, fds: list[int], listener: socket.socket) -> int:
    """Fork one dbt command with the client's stdin/stdout/stderr; returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    code = 1
    try:
        listener.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        code = run_dbt(request["argv"], request["cwd"], request["env"])
    except BaseException as error:  # noqa: BLE001 (the child must end in os._exit, whatever happened)
        print(f"error: dbt failed in the dbt server: {error!r}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def serve(socket_path: str) -> None:
    """Accept clients until stdin closes: fork dbt per request, answer each client with the child's pid, then its
    exit code; a client that hangs up before its dbt has finished takes its dbt with it (SIGTERM)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the forked dbt itself; the server stops with stdin
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(8)
    warm_up()  # clients that connect meanwhile wait in the backlog
    running: dict[int, socket.socket | None] = {}  # forked dbt → its client's connection (None: hung up)
    while True:
        waiting = [listener, sys.stdin, *(conn for conn in running.values() if conn is not None)]
        readable, _, _ = select.select(waiting, [], [], 0.05)
        for ready in readable:
            if ready is sys.stdin:
                if not os.read(sys.stdin.fileno(), 1024):  # the starting process closed it or died
                    for pid in running:
                        os.kill(pid, signal.SIGTERM)
                    return
            elif ready is listener:
                conn, _ = listener.accept()
                try:
                    request, fds = receive(conn)
                except (ConnectionError, ValueError, OSError) as error:
                    print(f"dbt server: bad request: {error}", file=sys.stderr)
                    conn.close()
                    continue
                pid = start(request, fds, listener)
                conn.sendall(f"{pid}\n".encode())
                running[pid] = conn
            else:  # a client's connection said something: it only ever hangs up
                for pid, conn in running.items():
                    if conn is ready and not conn.recv(1):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
                        conn.close()  # at EOF it would stay readable and spin this loop until dbt is reaped
                        running[pid] = None
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            conn = running.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(f"{exit_code(status)}\n".encode())
                conn.close()


def _stderr() -> int | None:
    """Where the server says what went wrong: this process's sys.stderr as it is now (the demo's log file while it
    is quiet), else the process's stderr."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a file (pytest's capture)
        return None


@contextlib.contextmanager
def warm_dbt(real_dbt: str) -> Iterator[str]:
    """Start a dbt server for the block; yields the path of the client executable to use as `dbt_executable`.
    The server is stopped (and its socket and client removed) on leaving."""
    home = Path(tempfile.mkdtemp(prefix="gaelp-dbt-"))  # short: a Unix socket path has ~100 bytes at most
    socket_path, client = home / "dbt.sock", home / "dbt"
    client.write_text(
        CLIENT.format(python=sys.executable, socket_path=str(socket_path), real_dbt=real_dbt, header=HEADER)
    )
    client.chmod(0o755)
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.dbt_server", str(socket_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # each dbt writes to its own client's stdout, never to the server's
        stderr=_stderr(),
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        yield str(client)
    finally:
        server.stdin.close()  # the server's signal to stop
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1])
