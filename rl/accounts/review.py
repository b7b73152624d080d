"""The one file a marketer reviews to connect an account (`accounts.csv`): one row per campaign of every connected
platform, proposed by discovery, with `managed` false until the marketer sets it.

Columns the marketer edits:
  managed              true: GAELP sets this campaign's daily budget and bid every day; false: it never pushes to it
                       (the campaign is still reported, as paused in the registry)
  product, intent      what the campaign sells and to whom (guessed from the name; the registry's columns)
  ga4_source_medium    how its clicks show in GA4 ("google / cpc"), and under which GA4 campaign name
  ga4_campaign_name
  budget_target        the platform object holding the daily budget, and those holding the bid ("id1;id2"), as
  bid_targets          discovered (a subset of the bid targets may be kept)
  allow_shared_budget  true declares that pushing this campaign's budget, shared with other campaigns, is intended
Columns discovery refreshes and `check` ignores (it asks the platforms again): campaign_name, platform_status,
bidding_strategy, current_budget, current_bid, manageable, notes.

Discovering again keeps what was reviewed: a known campaign keeps its edited columns, a new one is appended with
`managed` false, a campaign the platform no longer lists stays, marked "not found".
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields, replace
from pathlib import Path

from rl.accounts.model import DiscoveredAccount, DiscoveredCampaign
from rl.accounts.naming import ga4_mapping, guess_intent, guess_products, platform_channels

PLATFORMS = ("google_ads", "meta", "tiktok", "microsoft_ads")
COLUMNS = (
    "platform",
    "campaign_id",
    "campaign_name",
    "managed",
    "product",
    "intent",
    "ga4_source_medium",
    "ga4_campaign_name",
    "budget_target",
    "bid_targets",
    "allow_shared_budget",
    "platform_status",
    "bidding_strategy",
    "current_budget",
    "current_bid",
    "manageable",
    "notes",
)
NOT_FOUND = "not found"
BOOLEANS = {"true": True, "false": False}


class ReviewError(ValueError):
    """The review file cannot be read; the message names the file, line and field of every problem."""


@dataclass(frozen=True)
class ReviewRow:
    platform: str
    campaign_id: int
    campaign_name: str
    managed: bool
    product: str
    intent: str
    ga4_source_medium: str
    ga4_campaign_name: str
    budget_target: str
    bid_targets: tuple[str, ...]
    allow_shared_budget: bool = False
    platform_status: str = ""
    bidding_strategy: str = ""
    current_budget: str = ""
    current_bid: str = ""
    manageable: bool = False
    notes: str = ""
    line: int = 0  # the row's line in the file it was read from (0: not read from a file)

    @property
    def key(self) -> tuple[str, int]:
        return self.platform, self.campaign_id

    def as_record(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            if f.name == "line":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ";".join(value)
            out[f.name] = str(value)
        return out


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _split(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(";") if t.strip())


def read_review(path: str | Path) -> list[ReviewRow]:
    """The review file's rows; a ReviewError listing every malformed value by file, line and column."""
    path = Path(path)
    if not path.exists():
        raise ReviewError(f"{path}: no such file; `gaelp accounts discover` writes it")
    problems: list[str] = []
    rows: list[ReviewRow] = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ReviewError(f"{path}:1: missing columns {missing} (expected {list(COLUMNS)})")
        for line, rec in enumerate(reader, start=2):
            where = f"{path}:{line}"
            values = {c: (rec.get(c) or "").strip() for c in COLUMNS}
            if values["platform"] not in PLATFORMS:
                problems.append(f"{where}: platform {values['platform']!r} is not one of {PLATFORMS}")
            try:
                cid = int(values["campaign_id"])
                if cid <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{where}: campaign_id {values['campaign_id']!r} is not a positive integer")
                cid = 0
            flags = {}
            for name in ("managed", "allow_shared_budget", "manageable"):
                flag = BOOLEANS.get(values[name].lower())
                if flag is None and (values[name] or name == "managed"):
                    problems.append(f"{where}: {name} {values[name]!r} is not true or false")
                flags[name] = bool(flag)
            for name in ("campaign_name", "product", "intent"):
                if not values[name]:
                    problems.append(f"{where}: {name} is empty")
            rows.append(
                ReviewRow(
                    platform=values["platform"],
                    campaign_id=cid,
                    campaign_name=values["campaign_name"],
                    managed=flags["managed"],
                    product=values["product"],
                    intent=values["intent"],
                    ga4_source_medium=values["ga4_source_medium"],
                    ga4_campaign_name=values["ga4_campaign_name"],
                    budget_target=values["budget_target"],
                    bid_targets=_split(values["bid_targets"]),
                    allow_shared_budget=flags["allow_shared_budget"],
                    platform_status=values["platform_status"],
                    bidding_strategy=values["bidding_strategy"],
                    current_budget=values["current_budget"],
                    current_bid=values["current_bid"],
                    manageable=flags["manageable"],
                    notes=values["notes"],
                    line=line,
                )
            )
    seen: dict[tuple[str, int], int] = {}
    for row in rows:
        if row.key in seen and row.campaign_id:
            first = seen[row.key]
            problems.append(f"{path}:{row.line}: {row.platform} campaign {row.campaign_id} is on line {first} too")
        seen.setdefault(row.key, row.line)
    if problems:
        raise ReviewError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return rows


def write_review(path: str | Path, rows: list[ReviewRow]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(r.as_record() for r in rows)
    tmp.replace(path)


def _facts(c: DiscoveredCampaign) -> dict:
    """The columns discovery refreshes on every run."""
    return {
        "campaign_name": c.name,
        "platform_status": c.status,
        "bidding_strategy": c.bidding_strategy,
        "current_budget": _money(c.budget_amount),
        "current_bid": _money(c.bid),
        "manageable": c.manageable,
    }


def propose(
    accounts: list[DiscoveredAccount],
    existing: list[ReviewRow] | None = None,
    include_removed: bool = False,
    channels: dict[str, str] | None = None,
) -> list[ReviewRow]:
    """The review file after a discovery: `existing` rows first, in their order, with the platforms' facts
    refreshed and what was reviewed kept; then every campaign the file did not have, unmanaged, with guessed
    product, intent and GA4 mapping. Removed campaigns are proposed only with `include_removed` (their past
    delivery may be in the reports ingestion reads)."""
    channels = platform_channels() if channels is None else channels
    found = {c.key: c for a in accounts for c in a.campaigns}
    listed = [c for a in accounts for c in a.campaigns]
    products = dict(zip((c.key for c in listed), guess_products([(c.platform, c.name) for c in listed]), strict=True))
    out: list[ReviewRow] = []
    known: set[tuple[str, int]] = set()
    connected = {a.platform for a in accounts}
    for row in existing or []:
        known.add(row.key)
        c = found.get(row.key)
        if c is None:
            gone = row.platform in connected  # a platform not connected in this run says nothing about it
            note = f"{NOT_FOUND} on {row.platform}" if gone else row.notes
            status = NOT_FOUND if gone else row.platform_status
            out.append(replace(row, platform_status=status, manageable=row.manageable and not gone, notes=note))
            continue
        mapping = row.ga4_campaign_name
        if mapping == row.campaign_name.strip().lower():  # the name's convention: follows a renamed campaign
            mapping = c.name.strip().lower()
        notes = [c.reason or ""]
        if row.managed and set(c.bid_targets) - set(row.bid_targets):
            extra = ";".join(sorted(set(c.bid_targets) - set(row.bid_targets)))
            notes.append(f"bid targets on the platform not in bid_targets: {extra}")
        out.append(replace(row, **_facts(c), ga4_campaign_name=mapping, notes="; ".join(n for n in notes if n), line=0))
        if not row.managed:  # unmanaged: the targets follow the platform
            out[-1] = replace(out[-1], budget_target=c.budget_target or "", bid_targets=c.bid_targets)
    for c in listed:
        if c.key in known or (c.status == "removed" and not include_removed):
            continue
        product, product_note = products[c.key]
        intent, named = guess_intent(c.platform, c.name)
        source_medium, ga4_campaign = ga4_mapping(c.platform, c.name, c.utm, channels)
        notes = [c.reason or "", product_note or "", "" if named else f"intent guessed: {intent} ({c.platform})"]
        out.append(
            ReviewRow(
                platform=c.platform,
                campaign_id=c.campaign_id,
                managed=False,
                product=product,
                intent=intent,
                ga4_source_medium=source_medium,
                ga4_campaign_name=ga4_campaign,
                budget_target=c.budget_target or "",
                bid_targets=c.bid_targets,
                allow_shared_budget=False,
                notes="; ".join(n for n in notes if n),
                **_facts(c),
            )
        )
    return out
