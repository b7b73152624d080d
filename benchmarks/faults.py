"""Chaos benchmark: random fault sequences against every platform's push and the GA4 report ingestion, over a
multi-day loop, each injected at the SDK's network layer in front of a stateful fake server
(`benchmarks.fakes`), and judged against what the servers hold.

Each sequence is a fresh account on the four platforms and a fresh warehouse, run for `--days` days. Every day,
per platform: a new plan (random budgets and bids the platform accepts), a push (live, or validate-only one day in
seven) whose calls meet a random fault with probability `--fault-rate` — the issue's matrix (429, 500, 502/504
with an HTML body, 503, read timeout, reset after send, malformed body, auth error, partial failure) or the
process being killed mid-call — then a plain re-run of the same push. And the day's GA4 sessions partition is
ingested through the real asset with faults on its calls (the same, plus a row dated outside the window, an hour of
"(other)" and a negative count), then re-run plainly.

Counted:
  * changes_planned — budget and bid changes planned (every platform, every day);
  * changes_lost — live changes the server does not hold after the plain re-run;
  * audit_rows_wrong — audit rows whose status is not the truth about their attempt (`benchmarks.fakes.judge`),
    plus report windows whose rows differ from what the property reports after a run that succeeded (or that
    changed after a run that failed);
  * runs_wedged — plain re-runs that did not recover (a push with a change not in force, an ingestion that failed).

    python -m benchmarks.faults [--sequences 200] [--days 3] [--fault-rate 0.35] [--seed 0]

Human lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import duckdb

from benchmarks.fakes.judge import wrong_rows
from benchmarks.fakes.rig import PLATFORMS, make_rig
from benchmarks.fakes.server import FAULTS, KILLED, Fault, fault
from rl.bidding.audit import PushAudit
from rl.bidding.platform_rules import PLATFORM_RULES

FIRST_DAY = dt.date(2025, 1, 1)


def _schedule(rng: random.Random, rate: float, injected: Counter):
    def pick(call: int, op: str):
        if rng.random() >= rate:
            return None
        kind = KILLED if rng.random() < 0.04 else rng.choice(FAULTS)
        injected[kind] += 1
        return Fault(KILLED, rng.random() < 0.5) if kind == KILLED else fault(kind, rng.random() < 0.5)

    return pick


def _plan(rig, rng: random.Random, partition: str):
    rule = PLATFORM_RULES[rig.platform]
    budgets = {c.campaign_id: round(rng.uniform(max(rule.min_budget, 1.0), 150.0), 2) for c in rig.campaigns}
    bids = {c.campaign_id: round(rng.uniform(0.2, 25.0), 2) for c in rig.campaigns}
    return rig.rows(partition, budgets, bids)


def push_day(rig, audit: PushAudit, rng: random.Random, partition: str, rate: float, injected: Counter, stats: dict):
    rows = _plan(rig, rng, partition)
    live = rng.random() >= 1 / 7
    changes = [c for row in rows for c in row.changes()]
    stats["changes_planned"] += len(changes)
    before_state, seen_rows = rig.state(), len(audit.rows())
    rig.server.faults = _schedule(rng, rate, injected)
    start = len(rig.server.log)
    killed = False
    try:
        rig.resource.push(rows, live=live, audit=audit)
    except KeyboardInterrupt:
        killed = True  # the process died mid-push; its rows may stay 'intended' until the next push
    first = audit.rows()[seen_rows:]
    wrong = wrong_rows(
        [r for r in first if not (killed and r["status"] == "intended")], rig.server.log[start:], rig.server
    )

    rig.server.faults = lambda call, op: None  # a plain re-run
    middle, seen_rows = len(rig.server.log), len(audit.rows())
    results = rig.resource.push(rows, live=live, audit=audit)
    wrong += wrong_rows(audit.rows()[seen_rows:], rig.server.log[middle:], rig.server)
    stats["audit_rows_wrong"] += len(wrong)
    stats["examples"].extend(wrong[:2])
    stats["statuses"].update(r["status"] for r in first)
    if not all(r.ok for r in results):
        stats["runs_wedged"] += 1
        stats["examples"].append(f"{rig.platform} {partition}: re-run left {[(r.target, r.status) for r in results]}")
    if live:
        lost = [c for c in changes if not rig.server.holds(c.field, c.target, c.new_value)]
    else:
        lost = [c for c in changes if rig.state()[(c.field, c.target)] != before_state[(c.field, c.target)]]
    stats["changes_lost"] += len(lost)


def ingest_day(resources: dict, db: Path, day: dt.date, rng: random.Random, rate: float, injected: Counter, stats):
    import dagster as dg

    from assets.ingestion import INGESTION_ASSETS
    from benchmarks.fakes.ga4 import CHANNELS, INGEST_FAULTS, day_rows

    asset = [a for a in INGESTION_ASSETS if a.key.path[-1] == "ga4_sessions"]
    channel = CHANNELS[resources["ga4"].channel]
    kinds = {call: rng.choice(INGEST_FAULTS) for call in range(8) if rng.random() < rate}
    injected.update(f"ga4:{k}" for k in kinds.values())
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

    def window_rows():
        if not db.exists():
            return []
        with duckdb.connect(str(db), read_only=True) as con:
            if not con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ga4_sessions'"
            ).fetchone()[0]:
                return []
            return con.execute(
                "SELECT * FROM raw.ga4_sessions WHERE date BETWEEN ? AND ? ORDER BY ALL",
                [day - dt.timedelta(days=3), day],
            ).fetchall()

    def truth(first: dt.date):
        rows = []
        for i in range((day - first).days + 1):
            d = first + dt.timedelta(days=i)
            rows += [(d, int(dims[1]), *dims[2:], *m) for dims, m in day_rows(d)]
        return sorted(rows)

    loaded_from = resources["loaded_from"]
    before = window_rows()
    channel.faults = lambda call: kinds.get(call)
    run = dg.materialize(
        asset,
        resources=resources["assets"],
        partition_key=day.isoformat(),
        run_config=quiet,
        raise_on_error=False,
        instance=resources["instance"],
    )
    after = window_rows()
    expected = truth(max(loaded_from, day - dt.timedelta(days=3)))
    if (run.success and after != expected) or (not run.success and after != before):
        stats["audit_rows_wrong"] += 1
        stats["examples"].append(
            f"ga4 {day}: window rows wrong after a {'successful' if run.success else 'failed'} run"
        )
    channel.faults = lambda call: None
    rerun = dg.materialize(
        asset,
        resources=resources["assets"],
        partition_key=day.isoformat(),
        run_config=quiet,
        raise_on_error=False,
        instance=resources["instance"],
    )
    if not rerun.success or window_rows() != expected:
        stats["runs_wedged"] += 1
        stats["examples"].append(f"ga4 {day}: a plain re-run did not recover")
    stats["ingestion_runs"] += 2


def run_sequence(number: int, args, injected: Counter, stats: dict, instance, rigs: list) -> None:
    from dagster_duckdb import DuckDBResource

    from benchmarks.fakes.ga4 import CHANNELS, FakeGA4Resource, FakeGA4Server

    rng = random.Random(args.seed * 100_003 + number)
    rigs = [rig.reset() for rig in rigs]  # a fresh account on each platform
    audit = PushAudit(duckdb.connect())
    first_day = FIRST_DAY + dt.timedelta(days=(number * args.days) % 300)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GAELP_DATA_DIR"] = tmp
        db = Path(tmp) / "warehouse.duckdb"
        CHANNELS[f"seq-{number}"] = FakeGA4Server()
        ga4 = FakeGA4Resource(
            property_id="123456789", channel=f"seq-{number}", page_size=20, max_attempts=3, initial_backoff_s=0
        )
        resources = {
            "ga4": ga4,
            "assets": {"ga4": ga4, "duckdb": DuckDBResource(database=str(db))},
            "instance": instance,
            "loaded_from": first_day,
        }
        for offset in range(args.days):
            day = first_day + dt.timedelta(days=offset)
            for rig in rigs:
                push_day(rig, audit, rng, day.isoformat(), args.fault_rate, injected, stats)
            ingest_day(resources, db, day, rng, args.fault_rate, injected, stats)
        del CHANNELS[f"seq-{number}"]
    audit.connection.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--fault-rate", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the adapters log every fault at ERROR; the counts below are the output
    import dagster as dg

    started = time.perf_counter()
    injected: Counter = Counter()
    stats = {
        "changes_planned": 0,
        "changes_lost": 0,
        "audit_rows_wrong": 0,
        "runs_wedged": 0,
        "ingestion_runs": 0,
        "statuses": Counter(),
        "examples": [],
    }
    rigs = [make_rig(p) for p in PLATFORMS]
    with dg.DagsterInstance.ephemeral() as instance:
        for number in range(args.sequences):
            run_sequence(number, args, injected, stats, instance, rigs)
            if (number + 1) % 25 == 0 or number + 1 == args.sequences:
                print(
                    f"{number + 1:4d}/{args.sequences} sequences: {stats['changes_planned']} changes planned, "
                    f"{stats['changes_lost']} lost, {stats['audit_rows_wrong']} audit rows wrong, "
                    f"{stats['runs_wedged']} runs wedged ({time.perf_counter() - started:.0f}s)",
                    flush=True,
                )
    for rig in rigs:
        rig.resource.teardown_after_execution(None)  # the TikTok SDK's thread pool, while the interpreter is alive
    wall = time.perf_counter() - started
    print(f"faults injected: {sum(injected.values())} — " + ", ".join(f"{k} {n}" for k, n in sorted(injected.items())))
    print("first-run audit statuses: " + ", ".join(f"{k} {n}" for k, n in sorted(stats["statuses"].items())))
    print(f"GA4 ingestion runs: {stats['ingestion_runs']}")
    for example in stats["examples"][:10]:
        print(f"  ! {example}")
    result = {
        "sequences": args.sequences,
        "changes_planned": stats["changes_planned"],
        "changes_lost": stats["changes_lost"],
        "audit_rows_wrong": stats["audit_rows_wrong"],
        "runs_wedged": stats["runs_wedged"],
        "faults_injected": sum(injected.values()),
        "wall_s": round(wall, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
