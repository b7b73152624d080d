"""The `gaelp` console script: subcommands that run what orchestration/ wires, holding no wiring and no business
math (`gaelp accounts discover`, `gaelp accounts check`)."""

import os

# `make demo` runs two processes on the machine's cores at once: training in this one and the best baseline's
# comparison run beside it (`python -m cli.comparison`, which imports this package too), each loop day with a dbt
# build. NumPy's OpenBLAS starts a thread per core in every process, and a thread waiting for one that is not
# scheduled spins: with the other core busy, the calibration's response models took 124 s instead of 15 s. One BLAS
# thread per process. It has to be set before NumPy loads: here, before any command imports it (export
# OPENBLAS_NUM_THREADS to choose otherwise).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
