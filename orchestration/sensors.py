"""Sensors: retrain when the simulator or the account's patterns drift, the CPA kill switch, and a record of
every failed run.

  * `retrain_on_failed_checks`: the `calibration_backtest` check (market_calibration) or discovery's
    `drift_within_bounds` check (discovered_patterns) failed since the sensor last looked → request `retrain_job`.
  * `cpa_kill_switch`: the account's CPA (paid spend / GA4 key events by conversion date, from the published
    warehouse copy) was above 1.5 × target on each of the last 3 days (`rl.bidding.kill_switch`) → request
    `safe_push_job` for the latest day: the static reference settings planned and pushed, tagged
    `gaelp/kill_switch`. The planner applies the same rule every morning, so the daily plan stays safe while the
    breach lasts.
  * `record_run_failures`: every failed run is logged and appended to <data dir>/run_failures.jsonl.
"""

import datetime as dt
import json

import dagster as dg
import duckdb

from assets.bidding import KILL_SWITCH_TAG
from assets.partitions import DAILY_PARTITIONS
from orchestration.environment import account_settings, data_dir, published_warehouse_path
from orchestration.jobs import retrain_job, safe_push_job
from rl.bidding import kill_switch
from rl.bidding.audit import redact

RETRAIN_CHECKS = (
    dg.AssetCheckKey(dg.AssetKey("market_calibration"), "calibration_backtest"),
    dg.AssetCheckKey(dg.AssetKey("discovered_patterns"), "drift_within_bounds"),
)


@dg.sensor(job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def retrain_on_failed_checks(context: dg.SensorEvaluationContext):
    """Request a recalibrate-and-retrain run for each new failure of the backtest or drift check."""
    seen = json.loads(context.cursor) if context.cursor else {}
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(list(RETRAIN_CHECKS))
    requests = []
    for key in RETRAIN_CHECKS:
        record = latest.get(key)
        name = key.to_user_string()
        if record is None or record.id <= seen.get(name, 0):
            continue
        seen[name] = record.id
        if record.status.value == "FAILED":
            requests.append(
                dg.RunRequest(
                    run_key=f"retrain-{key.name}-{record.id}",
                    tags={"gaelp/retrain_reason": f"{name} failed in run {record.run_id}"},
                )
            )
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return requests or dg.SkipReason("no new failure of calibration_backtest or drift_within_bounds")


def account_days(database: str, last: dt.date, days: int) -> list[kill_switch.DayFigures]:
    """The account's daily paid spend and GA4 key events for the `days` days to `last` (read-only)."""
    con = duckdb.connect(database, read_only=True)
    try:
        rows = con.execute(
            "SELECT date, sum(spend), sum(key_events) FROM fct_campaign_daily WHERE date BETWEEN ? AND ? "
            "GROUP BY date ORDER BY date",
            [last - dt.timedelta(days=days - 1), last],
        ).fetchall()
    finally:
        con.close()
    return [kill_switch.DayFigures(d, float(s or 0), float(k or 0)) for d, s, k in rows]


@dg.sensor(job=safe_push_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.STOPPED)
def cpa_kill_switch(context: dg.SensorEvaluationContext):
    """Push the safe plan when the CPA has been far above target for days (see the module docstring)."""
    database = published_warehouse_path()
    if not database.exists():
        return dg.SkipReason(f"no published warehouse at {database} yet")
    last_key = DAILY_PARTITIONS.get_last_partition_key()
    if last_key is None:
        return dg.SkipReason("no daily partitions yet")
    last = dt.date.fromisoformat(last_key)
    target = account_settings().target_cpa
    figures = account_days(str(database), last, kill_switch.DEFAULT_DAYS)
    if figures:  # judge the latest day the warehouse holds (the last complete day may not be loaded yet)
        last = max(f.date for f in figures)
    decision = kill_switch.evaluate(figures, target, as_of=last)
    if not decision.fire:
        return dg.SkipReason(f"kill switch not fired: {decision.reason}")
    context.log.warning(f"kill switch fired: {decision.reason}")
    return dg.RunRequest(
        run_key=f"kill-switch-{last.isoformat()}",
        partition_key=last.isoformat(),
        tags={KILL_SWITCH_TAG: decision.reason[:200]},
    )


@dg.run_failure_sensor(name="record_run_failures", default_status=dg.DefaultSensorStatus.STOPPED)
def record_run_failures(context: dg.RunFailureSensorContext):
    """Log each failed run and append it to <data dir>/run_failures.jsonl (messages redacted)."""
    run = context.dagster_run
    message = redact(context.failure_event.message or "")
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {message}")
    record = {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "failed_at_utc": dt.datetime.now(dt.UTC).isoformat(),
        "message": message,
    }
    path = data_dir() / "run_failures.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


SENSORS = [retrain_on_failed_checks, cpa_kill_switch, record_run_failures]
