"""A two-year backfill of the demo market in one Dagster run: ingestion of every daily partition into DuckDB.

    .venv/bin/python -m benchmarks.backfill [--days 730]

Runs in a fresh temporary data directory and Dagster instance, so it measures everything a first backfill does:
simulating the world's history, answering the GA4 and GAQL reports, keeping raw responses, checking and writing.
Human-readable lines first; the LAST line is one JSON object with days, rows, wall_s and peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory and print where")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gaelp-backfill-"))
    os.environ.update({"GAELP_ENV": "demo", "GAELP_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home")})
    (root / "home").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "orchestration" / "instance" / "dagster.yaml", root / "home")

    import dagster as dg
    import duckdb

    from cli.demo import partition_range, run_job
    from orchestration.resources import warehouse_path

    first, last = partition_range(args.days)
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = run_job("ingestion_job", first, last, instance)
    wall = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"backfill failed: see run {result.run_id} under {root}")
    con = duckdb.connect(warehouse_path(), read_only=True)
    counts = {
        t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
        for t in ("ga4_sessions", "ga4_conversions", "ad_performance", "ad_conversion_lag")
    }
    (n_days,) = con.execute("SELECT count(DISTINCT date) FROM raw.ga4_sessions").fetchone()
    con.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for table, n in counts.items():
        print(f"raw.{table:<18} {n:>9,} rows")
    print(f"{first} .. {last}: {n_days} days in {wall:.1f} s, peak RSS {peak_mb:.0f} MB")
    if args.keep:
        print(f"kept: {root}")
    else:
        shutil.rmtree(root)
    line = {
        "benchmark": "backfill",
        "days": int(n_days),
        "rows": int(sum(counts.values())),
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_mb),
        "first": first,
        "last": last,
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
