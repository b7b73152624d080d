"""The CLI's processes (the demo, its background comparison run) use one OpenBLAS thread each, unless told otherwise:
two processes share the machine's cores, and OpenBLAS threads spin while they wait for one another."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The number of threads OpenBLAS (as bundled with NumPy's pinned wheel) will use, asked from the library itself.
PROBE = """
import ctypes
import cli  # noqa: F401  (first, as the console script and `python -m cli.comparison` import it)
import numpy  # noqa: F401
(lib,) = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
print(ctypes.CDLL(lib).scipy_openblas_get_num_threads64_())
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("2", "2")])
def test_one_blas_thread_unless_set(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
