"""What a long command says: a few lines on the terminal (each also in the log file), and everything else —
Dagster's run events, dbt's lines, library warnings — in the log file only, unless `verbose`."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class Console:
    def __init__(self, log_dir: Path, name: str, verbose: bool = False):
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_path = log_dir / f"{name}-{stamp}.log"
        self.verbose = verbose
        self.log: TextIO = open(self.log_path, "a", buffering=1)  # noqa: SIM115 (closed by close())
        self.terminal: TextIO = sys.stdout

    def say(self, *lines: str) -> None:
        """Lines for the reader: on the terminal and in the log."""
        text = "\n".join(lines)
        print(text, file=self.terminal, flush=True)
        if not self.verbose:
            print(text, file=self.log, flush=True)

    def detail(self, *lines: str) -> None:
        """Lines for the log (and the terminal when verbose)."""
        print("\n".join(lines), file=self.terminal if self.verbose else self.log, flush=True)

    def error(self, *lines: str) -> None:
        text = "\n".join(lines)
        print(text, file=sys.__stderr__, flush=True)
        print(text, file=self.log, flush=True)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Everything printed inside goes to the log file, unless verbose: Dagster's console logger and warnings
        (they write to the current sys.stderr), and what other processes started inside print (the retrain job's
        step processes), whose stdout and stderr are this process's file descriptors 1 and 2."""
        if self.verbose:
            yield
            return
        terminal = self.terminal
        for stream in (sys.stdout, sys.stderr, terminal):
            stream.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        if _fileno(terminal) in saved:  # the reader's lines still reach the terminal
            self.terminal = os.fdopen(os.dup(saved[_fileno(terminal)]), "w", buffering=1)
        try:
            for fd in saved:
                os.dup2(self.log.fileno(), fd)
            with contextlib.redirect_stdout(self.log), contextlib.redirect_stderr(self.log):
                yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if self.terminal is not terminal:
                self.terminal.close()
                self.terminal = terminal

    def close(self) -> None:
        """Flush the log. Anything written to the process's stderr after this (at interpreter exit, by native
        libraries) goes to the log too, unless verbose."""
        self.log.flush()
        if not self.verbose:
            sys.stderr.flush()
            os.dup2(self.log.fileno(), 2)


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream (a test's capture)
        return None
