"""Bidding: the day's plan from the promoted policy (`daily_bid_plan`, with blocking guardrail checks) and its push
to the ad platforms (`bid_push`, audited).

Partition D is the data day: the plan is computed from the marts up to D (yesterday, on the morning it runs) and
is for day D + 1. The planning and the checks are `rl.bidding.planner` and `rl.bidding.checks`; the push is the
`BidPlatform` resources'. Both write the warehouse (pool `duckdb_writer`).
"""

import csv
import dataclasses
import datetime as dt

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets import _preview
from assets._io import query_frame as _frame
from assets.partitions import DAILY_PARTITIONS
from orchestration import accounts as account_wiring
from orchestration.environment import TARGETS_CSV_VAR, Environment, current_environment, data_dir, targets_csv
from orchestration.resources.account import AccountResource
from orchestration.resources.platforms import BidPlatform, DemoBidPlatform, LivePushRefused
from rl.account import AccountSettings
from rl.accounts.drift import blocked_rows
from rl.accounts.model import DiscoveryError
from rl.bidding import history as mart_history
from rl.bidding import planner, policy_choice
from rl.bidding.audit import PROBLEM_STATUSES, PushAudit
from rl.bidding.checks import CHECKS, CheckFailure, run_checks
from rl.bidding.plan import PLATFORMS
from rl.bidding.plan_store import PLAN_TABLE, PlanStore
from rl.bidding.plots import plan_diff, plan_total, push_audit, push_problems
from rl.bidding.reference_store import ReferenceStore
from rl.env.guardrails import ActionCodec
from rl.env.schema import ObservationSchema

KILL_SWITCH_TAG = "gaelp/kill_switch"
POLICY_EVALUATION = dg.AssetKey("policy_evaluation")
ONE_PLAN_PER_RUN = dg.BackfillPolicy.multi_run(1)  # each day's plan reads the push of the day before
PLATFORM_RESOURCES = {p: f"bid_{p}" for p in PLATFORMS}  # plan platform -> resource key


class BidPlanConfig(dg.Config):
    """The planning limits beyond the account's own settings (the `account` resource), and which policy to use."""

    history_days: int = 56
    policy: str | None = None  # a baseline name (e.g. "static_reference") instead of the promoted model
    fallback_baseline: str | None = None  # when there is no promoted model: default the registry's best, else static
    kill_switch: bool = True
    targets_csv: str | None = None  # prod: platform, campaign_id, budget_target, bid_targets ("id1;id2")
    episode_days: int | None = None  # the cycle of the episode features (None: the promoted model's, baselines 28)

    def plan_settings(self, account: AccountSettings) -> planner.PlanSettings:
        return planner.PlanSettings(
            account=account,
            history_days=self.history_days,
            kill_switch=self.kill_switch,
        )


class BidPushConfig(dg.Config):
    """Live switches per platform, for one run. None: the environment's default — demo pushes to the demo market
    (mode "demo"); prod pushes live exactly where the platform's own switch is on (`GAELP_LIVE_PUSH_<PLATFORM>`,
    the resource's `live_pushing_enabled`), so the daily schedule goes live per platform by that switch alone.
    False forces validate-only for the run; True on a platform whose switch is off is refused and recorded."""

    live_google_ads: bool | None = None
    live_meta: bool | None = None
    live_tiktok: bool | None = None
    live_microsoft_ads: bool | None = None

    def live(self, platform: str, environment: Environment, armed: bool) -> bool:
        value = getattr(self, f"live_{platform}")
        if value is not None:
            return bool(value)
        return True if environment is Environment.DEMO else armed


def _marts(conn, first: dt.date, last: dt.date) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
    """fct_campaign_daily and dim_campaign, and the device, hourly and modifier marts of the window (the
    observation's breakdowns and the modifiers in force)."""

    def window(table: str, columns) -> pl.DataFrame:
        cols = ", ".join(columns)
        return _frame(conn, f"SELECT {cols} FROM {table} WHERE date BETWEEN ? AND ? ORDER BY date", [first, last])

    marts = window("fct_campaign_daily", mart_history.MART_COLUMNS)
    dim = _frame(conn, "SELECT platform, campaign_id, campaign_name, status FROM dim_campaign")
    breakdowns = {
        "devices": window("fct_campaign_device_daily", mart_history.DEVICE_COLUMNS),
        "hourly": window("fct_campaign_hourly", mart_history.HOURLY_COLUMNS),
        "modifiers": window("fct_campaign_modifiers_daily", mart_history.MODIFIER_COLUMNS),
    }
    return marts, dim, breakdowns


def _gate_failure(context: dg.AssetExecutionContext) -> str | None:
    """Why the promoted policy may not be used: a failed check of the latest `policy_evaluation` (None if passed or
    there is no such asset yet)."""
    try:
        keys = [k for k in context.repository_def.asset_graph.asset_check_keys if k.asset_key == POLICY_EVALUATION]
        if not keys:
            return None
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    except Exception:  # no repository (direct invocation) or a storage without checks: no gate to consult
        return None
    failed = sorted(k.name for k, rec in latest.items() if rec is not None and rec.status.value == "FAILED")
    return f"the policy gate failed ({', '.join(failed)} on policy_evaluation)" if failed else None


def _targets(config: BidPlanConfig):
    path = config.targets_csv or targets_csv()
    if current_environment() is Environment.DEMO and not path:
        return planner.demo_targets_for
    if not path:
        raise ValueError(
            f"daily_bid_plan: in prod set {TARGETS_CSV_VAR} (or the run config's targets_csv) to a CSV of platform, "
            "campaign_id, budget_target, bid_targets: the ids of the platform objects that hold each campaign's "
            "budget and bids"
        )
    with open(path, newline="") as f:
        return planner.targets_from_rows(list(csv.DictReader(f)))


def _campaign_status(conn) -> dict[tuple[str, int], str]:
    rows = conn.execute("SELECT platform, campaign_id, status FROM dim_campaign").fetchall()
    return {(p, int(c)): s for p, c, s in rows}


def _drifted(resource: BidPlatform, platform: str, rows: list, declared: set) -> dict[tuple[str, int], str]:
    """(platform, campaign id) -> why its changes must not be sent: the campaign as the platform holds it right
    before the push (removed, switched to an automated strategy, targets no longer its own: `rl.accounts.drift`)."""
    try:
        account = resource.discover(platform)
    except DiscoveryError as e:
        return {(r.platform, r.campaign_id): f"the account could not be read before the push ({e})" for r in rows}
    return blocked_rows(rows, [account], declared)


def _failures_md(failures: list[CheckFailure]) -> dg.MetadataValue:
    return _preview.bullets([f.message for f in failures], "none")


@dg.asset(
    partitions_def=DAILY_PARTITIONS,
    deps=[dg.AssetKey("fct_campaign_daily"), dg.AssetKey("dim_campaign"), dg.AssetKey("bidding_policy")],
    group_name="bidding",
    kinds={"python", "duckdb"},
    pool="duckdb_writer",
    backfill_policy=ONE_PLAN_PER_RUN,
    check_specs=[dg.AssetCheckSpec(name, asset="daily_bid_plan", blocking=True) for name in CHECKS],
)
def daily_bid_plan(
    context: dg.AssetExecutionContext, config: BidPlanConfig, duckdb: DuckDBResource, account: AccountResource
) -> dg.MaterializeResult:
    """Tomorrow's daily budget and bid (max CPC / CPM bid cap) per campaign: the promoted policy (or the fallback
    baseline, said so) applied to the marts up to the partition day, through the guardrails; stored in `bid_plan`
    (the partition's rows replaced) with the policy version, and checked by blocking guardrail checks."""
    partition = context.partition_key
    last = dt.date.fromisoformat(partition)
    settings = config.plan_settings(account.settings())
    schema = ObservationSchema.from_registry()
    first = last - dt.timedelta(days=settings.history_days - 1)
    kill_tag = context.run.tags.get(KILL_SWITCH_TAG) if context.run else None
    with duckdb.get_connection() as conn:
        marts, dim, breakdowns = _marts(conn, first, last)
        campaigns = mart_history.campaigns_in_schema_order(schema, dim)
        history = mart_history.history_from_marts(
            marts, campaigns, last, settings.history_days, hour_blocks=settings.hour_blocks, **breakdowns
        )
        reference = ReferenceStore(conn).reference(history, settings.hour_blocks)
        promoted = policy_choice.PromotedPolicy(reason="a baseline was asked for")
        if not config.policy:
            promoted = policy_choice.promoted_policy(conn, str(data_dir() / "models"))
        codec = ActionCodec.for_schema(schema, settings.bid_range)
        choice = policy_choice.choose_policy(
            schema,
            codec,
            reference,
            settings.daily_budget,
            promoted,
            gate_failed=None if config.policy else _gate_failure(context),
            override=config.policy,
            fallback=config.fallback_baseline,
        )
        if config.episode_days is not None:
            settings = dataclasses.replace(settings, episode_days=config.episode_days)
            choice = dataclasses.replace(choice, episode_days=None)
        if kill_tag:
            choice.source, choice.reason = "kill_switch", f"kill switch sensor: {kill_tag}"
        plan = planner.make_plan(history, reference, settings, schema, choice, partition, _targets(config))
        plans = PlanStore(conn)
        plans.write(partition, plan)
        stored, limits = plans.read(partition)  # the checks judge what was stored, not what was computed
        results = run_checks(stored, limits, _campaign_status(conn))
    if plan.fallback_reason:
        context.log.warning(f"plan from {plan.choice_version} ({plan.choice_source}): {plan.fallback_reason}")
    total = sum(e.daily_budget for e in stored)
    metadata = {
        "plan": dg.MetadataValue.md(
            _preview.md_table(plan_diff(stored), f"no campaign planned for {partition}", max_rows=100)
            + "\n\n"
            + plan_total(stored)
        ),
        "plan_date": (last + dt.timedelta(days=1)).isoformat(),
        "policy_version": plan.choice_version,
        "policy_source": plan.choice_source,
        "fallback": plan.fallback_reason or "none (the promoted model)",
        "reference": reference.source,
        "total_budget": dg.MetadataValue.float(round(total, 2)),
        "kill_switch": dg.MetadataValue.md(
            (("**FIRED** — " if plan.kill_switch.fire else "not fired — ") + plan.kill_switch.reason)
            + "\n\n"
            + plan.kill_switch.table()
            if plan.kill_switch
            else "off"
        ),
        "dagster/row_count": dg.MetadataValue.int(len(stored)),
    }
    checks = [
        dg.AssetCheckResult(
            check_name=name,
            passed=not results[name],
            metadata={"failures": _failures_md(results[name]), "count": len(results[name])},
        )
        for name in CHECKS
    ]
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


@dg.asset(
    partitions_def=DAILY_PARTITIONS,
    deps=[daily_bid_plan],
    group_name="bidding",
    kinds={"python", "duckdb"},
    pool="duckdb_writer",
    backfill_policy=ONE_PLAN_PER_RUN,
)
def bid_push(
    context: dg.AssetExecutionContext,
    config: BidPushConfig,
    duckdb: DuckDBResource,
    bid_google_ads: BidPlatform,
    bid_meta: BidPlatform,
    bid_tiktok: BidPlatform,
    bid_microsoft_ads: BidPlatform,
) -> dg.MaterializeResult:
    """Push the partition's plan to each platform: validate-only unless live is switched on (demo: the demo market,
    audit mode "demo"). Every attempt goes to `bid_push_audit` with a truthful status; pushing the same partition
    again sends nothing already in force, and reads back what an earlier attempt left unknown before sending it.
    Each platform's account is read first: a campaign it no longer holds as planned (removed, on an automated
    strategy, its budget or ad groups no longer its own) is not sent to. The run fails when a change was refused,
    left unknown or not sent."""
    partition = context.partition_key
    environment = current_environment()
    platforms = {
        "google_ads": bid_google_ads,
        "meta": bid_meta,
        "tiktok": bid_tiktok,
        "microsoft_ads": bid_microsoft_ads,
    }
    if environment is Environment.DEMO:
        for name, resource in platforms.items():
            if not isinstance(resource, DemoBidPlatform):
                raise LivePushRefused(
                    f"bid_push: the demo environment pushes to the demo market only, but resource "
                    f"{PLATFORM_RESOURCES[name]} is a {type(resource).__name__}; set GAELP_ENV=prod to push to real "
                    "accounts"
                )
    results = []
    with duckdb.get_connection() as conn:
        entries, limits = PlanStore(conn).read(partition)
        if not entries:
            raise dg.Failure(f"bid_push: no plan in {PLAN_TABLE} for partition {partition}; materialize daily_bid_plan")
        failed = {k: v for k, v in run_checks(entries, limits, _campaign_status(conn)).items() if v}
        if failed:  # the blocking checks stop a run; this stops a push launched on its own
            raise dg.Failure(
                f"bid_push: the plan for {partition} fails the guardrail checks {sorted(failed)}; nothing was pushed",
                metadata={k: _failures_md(v) for k, v in failed.items()},
            )
        audit = PushAudit(conn)
        modes, declared, drifted = {}, account_wiring.declared_shared(), {}
        for platform, resource in platforms.items():
            rows = [e.to_plan_row() for e in entries if e.platform == platform]
            if not rows:
                continue
            live = config.live(platform, environment, armed=resource.live_pushing_enabled)
            modes[platform] = resource._mode(live)
            blocked = _drifted(resource, platform, rows, declared)
            drifted.update(blocked)
            context.log.info(f"{platform}: pushing {len(rows)} campaign(s), {modes[platform]}")
            results.extend(resource.push(rows, live=live, audit=audit, blocked=blocked))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    metadata = {
        "audit": _preview.table(push_audit(results), f"no change to push for {partition}"),
        "modes": ", ".join(f"{p}: {m}" for p, m in modes.items()),
        "policy_version": entries[0].policy_version,
        **{f"changes_{status}": dg.MetadataValue.int(n) for status, n in sorted(counts.items())},
    }
    problems = [r for r in results if r.status in PROBLEM_STATUSES]
    if problems:
        drift = "; ".join(f"{p}/{c}: {why}" for (p, c), why in drifted.items())
        detail = f" Not sent, as the platforms hold them now: {drift}." if drift else ""
        raise dg.Failure(push_problems(problems) + detail, metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)


BIDDING_ASSETS = [daily_bid_plan, bid_push]
