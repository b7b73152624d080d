"""The warehouse on two years of demo data: `dbt build` (through the Dagster assets, tests included) and discovery.

    .venv/bin/python -m benchmarks.warehouse [--days 730]

Ingests the days first (not timed here: see benchmarks.backfill) in a fresh temporary data directory, then times
the warehouse job in Dagster (dbt build, checks, published copy: one materialization per model, the dbt models
being unpartitioned over the daily raw partitions), `dbt build` on its own, and `rl.discovery.discover` on the
published marts.
Human-readable lines first; the LAST line is one JSON object with days, dbt_build_wall_s,
dagster_warehouse_run_wall_s, discovery_wall_s and peak_rss_mb (this process or any child, such as dbt, whichever
peaked higher).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=730)
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gaelp-warehouse-"))
    os.environ.update({"GAELP_ENV": "demo", "GAELP_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home")})
    (root / "home").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "orchestration" / "instance" / "dagster.yaml", root / "home")

    import dagster as dg
    import duckdb

    from cli.demo import partition_range, run_job
    from rl.discovery.engine import discover

    first, last = partition_range(args.days)
    try:
        with dg.DagsterInstance.get() as instance:
            if not run_job("ingestion_job", first, last, instance).success:
                raise SystemExit("ingestion failed")
            started = time.perf_counter()
            result = run_job("warehouse_job", first, last, instance)
            run_wall = time.perf_counter() - started
            if not result.success:
                raise SystemExit("warehouse build failed")
        # dbt itself, as the asset runs it, without Dagster's per-partition bookkeeping around it
        project = Path(__file__).resolve().parents[1] / "dbt_project"
        dbt = Path(sys.executable).parent / "dbt"
        started = time.perf_counter()
        subprocess.run(
            [
                str(dbt),
                "build",
                "--quiet",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--target-path",
                str(root / "dbt_target"),
            ],
            check=True,
        )
        dbt_wall = time.perf_counter() - started
        con = duckdb.connect(str(root / "data" / "published" / "warehouse.duckdb"), read_only=True)
        ((n_days,),) = con.execute("SELECT count(DISTINCT date) FROM fct_campaign_daily").fetchall()
        started = time.perf_counter()
        discover(con)
        discovery_wall = time.perf_counter() - started
        con.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(
        f"{first} .. {last}: {n_days} days; dbt build {dbt_wall:.1f} s; the Dagster warehouse run around it "
        f"(one materialization per model) {run_wall:.1f} s; discovery {discovery_wall:.1f} s; "
        f"peak RSS {peak_mb:.0f} MB"
    )
    line = {
        "benchmark": "warehouse",
        "days": int(n_days),
        "dbt_build_wall_s": round(dbt_wall, 1),
        "dagster_warehouse_run_wall_s": round(run_wall, 1),
        "discovery_wall_s": round(discovery_wall, 1),
        "peak_rss_mb": round(peak_mb),
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
