"""`gaelp accounts check`: the reviewed file against the platforms as they are now, and what it compiles to.

Every managed campaign must exist on its platform (not removed), run on a strategy that takes GAELP's manual bids or
bid caps, name its own budget object and bid objects (the ids discovery found, or a subset of the bid ones), not
share its budget unless the sharing is declared (`allow_shared_budget`), and map to GA4. Two campaigns may not push
the same budget object, nor share a GA4 mapping, nor (across platforms) an id: the learner keys campaigns by id.
Every error names the file, line and column.

A file that passes compiles to what the pipeline reads:
  * the campaign registry (`campaign_registry.csv` in the account seeds directory, `rl.campaign_registry`): every
    campaign, `enabled` when managed, `paused` when not (still ingested and reported, never planned or pushed);
  * the push targets (`GAELP_TARGETS_CSV`): budget and bid object ids of the managed campaigns only;
  * the GA4 mapping overrides (`campaign_ga4_mapping.csv`, next to the registry): the campaigns whose GA4 source /
    medium or campaign name differ from the platform's convention (dim_campaign applies them).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from rl.accounts.drift import campaign_problems, index
from rl.accounts.model import DiscoveredAccount
from rl.accounts.naming import conventional_mapping, platform_channels
from rl.accounts.review import ReviewRow

REGISTRY_COLUMNS = ("platform", "campaign_id", "campaign_name", "product", "intent", "status")
TARGET_COLUMNS = ("platform", "campaign_id", "budget_target", "bid_targets")
MAPPING_COLUMNS = ("platform", "campaign_id", "ga4_source_medium", "ga4_campaign_name")
SOURCE_MEDIUM = re.compile(r"[^/\s][^/]*\s/\s[^/]*[^/\s]")


@dataclass
class CheckResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(rows: list[ReviewRow], accounts: list[DiscoveredAccount], path: str | Path) -> CheckResult:
    """Every problem of the reviewed rows against the discovered accounts (errors block; warnings inform)."""
    result = CheckResult()
    found = index(accounts)
    connected = {a.platform for a in accounts}

    def error(row: ReviewRow, column: str, text: str) -> None:
        result.errors.append(f"{path}:{row.line}: {column}: {row.platform}/{row.campaign_id}: {text}")

    by_id: dict[int, ReviewRow] = {}
    budgets: dict[tuple[str, str], ReviewRow] = {}
    mappings: dict[tuple[str, str], ReviewRow] = {}
    for row in rows:
        if row.campaign_id in by_id and by_id[row.campaign_id].platform != row.platform:
            other = by_id[row.campaign_id]
            text = f"the same id as {other.platform} on line {other.line}; GAELP keys campaigns by id"
            error(row, "campaign_id", text)
        by_id.setdefault(row.campaign_id, row)
        mapping = (row.ga4_source_medium.lower(), row.ga4_campaign_name.strip().lower())
        if mapping in mappings:
            other = mappings[mapping]
            error(row, "ga4_campaign_name", f"GA4 traffic {mapping} is also mapped to line {other.line}")
        mappings.setdefault(mapping, row)
        if not SOURCE_MEDIUM.fullmatch(row.ga4_source_medium):
            error(row, "ga4_source_medium", f"{row.ga4_source_medium!r} is not 'source / medium'")
        if not row.ga4_campaign_name:
            error(row, "ga4_campaign_name", "empty: GA4 traffic could not be tied to this campaign")
        c = found.get(row.key)
        if c is not None and c.name != row.campaign_name:
            result.warnings.append(
                f"{path}:{row.line}: campaign_name: {row.platform}/{row.campaign_id} is now named {c.name!r} on the "
                "platform; run `gaelp accounts discover` to take the new name"
            )
        if not row.managed:
            continue
        if row.platform not in connected:
            error(row, "platform", f"{row.platform} was not read (no account configured?): a managed campaign needs it")
            continue
        if not row.budget_target:
            error(row, "budget_target", "empty: a managed campaign needs the object holding its daily budget")
        if not row.bid_targets:
            error(row, "bid_targets", "empty: a managed campaign needs the objects holding its bid")
        for column, text in campaign_problems(
            row.platform, row.campaign_id, row.budget_target, row.bid_targets, c, row.allow_shared_budget
        ):
            error(row, column, text)
        if row.budget_target and (row.platform, row.budget_target) in budgets:
            other = budgets[(row.platform, row.budget_target)]
            error(row, "budget_target", f"{row.budget_target} is also the budget target on line {other.line}")
        budgets.setdefault((row.platform, row.budget_target), row)
        if c is not None and c.status == "paused":
            result.warnings.append(
                f"{path}:{row.line}: {row.platform}/{row.campaign_id} is managed but paused on the platform: its "
                "budget is planned and pushed but not spent"
            )
        if c is not None and set(c.bid_targets) - set(row.bid_targets):
            left = ";".join(sorted(set(c.bid_targets) - set(row.bid_targets)))
            result.warnings.append(f"{path}:{row.line}: bid_targets: {left} on the platform will keep their own bids")
    listed = {r.key for r in rows}
    for a in accounts:
        for c in a.campaigns:
            if c.key not in listed and c.status != "removed":
                result.warnings.append(
                    f"{c.platform}/{c.campaign_id} ({c.name}, {c.status}) is on the platform but not in {path}: run "
                    "`gaelp accounts discover` to add it (unmanaged); ingestion refuses reports of unknown campaigns"
                )
    return result


def registry_rows(rows: list[ReviewRow]) -> list[dict[str, str]]:
    return [
        {
            "platform": r.platform,
            "campaign_id": str(r.campaign_id),
            "campaign_name": r.campaign_name,
            "product": r.product,
            "intent": r.intent,
            "status": "enabled" if r.managed else "paused",
        }
        for r in rows
    ]


def target_rows(rows: list[ReviewRow]) -> list[dict[str, str]]:
    return [
        {
            "platform": r.platform,
            "campaign_id": str(r.campaign_id),
            "budget_target": r.budget_target,
            "bid_targets": ";".join(r.bid_targets),
        }
        for r in rows
        if r.managed
    ]


def mapping_rows(rows: list[ReviewRow], channels: dict[str, str] | None = None) -> list[dict[str, str]]:
    channels = platform_channels() if channels is None else channels
    out = []
    for r in rows:
        mine = (r.ga4_source_medium.lower(), r.ga4_campaign_name.strip().lower())
        if mine != conventional_mapping(r.platform, r.campaign_name, channels):
            source_medium, campaign = mine
            out.append(
                {
                    "platform": r.platform,
                    "campaign_id": str(r.campaign_id),
                    "ga4_source_medium": source_medium,
                    "ga4_campaign_name": campaign,
                }
            )
    return out


def write_csv(path: str | Path, columns: tuple[str, ...], records: list[dict[str, str]]) -> None:
    """A CSV in the csv module's default dialect (as the seeds are), replaced atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    tmp.replace(path)
