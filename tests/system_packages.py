"""Debian packages that some end-to-end tests need (Chromium, a PostgreSQL server), installed when missing.

A fresh CI machine has Python and pip and root; `.ci/run` installs these up front, and a test's setup calls
`ensure_debian_packages` so that `make test` on a bare machine gets them too. Where nothing can be installed (not
root, no apt), the error names the package and the command to run, rather than the test failing somewhere later.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path


class SystemPackageError(RuntimeError):
    pass


def find_executable(name: str, extra_globs: tuple[str, ...] = ()) -> Path | None:
    """`name` on PATH, else the first match of `extra_globs` (Debian keeps PostgreSQL's server tools off PATH, in
    /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for pattern in extra_globs:
        matches = sorted(glob.glob(pattern), reverse=True)  # newest version first
        if matches:
            return Path(matches[0])
    return None


def ensure_debian_packages(*packages: str, timeout_s: float = 900) -> None:
    """`apt-get install` the packages that are not installed yet (a no-op when all are)."""
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemPackageError(
            f"Debian packages {missing} are needed by this test and are not installed; "
            f"run: apt-get install -y --no-install-recommends {' '.join(missing)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise SystemPackageError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}")


def _installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return done.returncode == 0 and "install ok installed" in done.stdout
