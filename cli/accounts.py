"""`gaelp accounts discover` and `gaelp accounts check`: connect the environment's ad accounts (the demo market, or
the real ones configured by environment variables) through one reviewed file.

    gaelp accounts discover            list every campaign, budget and ad group; write/refresh the review file
    gaelp accounts check               validate the review file against the platforms as they are now
    gaelp accounts check --write       ... and, if it passes, write the registry, GA4 mapping and push targets

Exit status: 0 done, 1 a platform could not be read or the check failed, 2 the review file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration import accounts as wiring
from rl.accounts import check as checking
from rl.accounts.review import PLATFORMS, ReviewError, propose, read_review, write_review
from rl.campaign_registry import mapping_file, registry_file


def add_commands(groups: argparse._SubParsersAction) -> None:
    group = groups.add_parser("accounts", help="connect ad accounts: discover, review, check")
    commands = group.add_subparsers(dest="command", metavar="<command>", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", type=Path, help="the review file (default: GAELP_ACCOUNTS_FILE or data/accounts/)")
    common.add_argument("--platform", action="append", choices=PLATFORMS, help="only this platform (repeatable)")
    found = commands.add_parser("discover", parents=[common], help="list the accounts' campaigns into the file")
    found.add_argument("--include-removed", action="store_true", help="also propose removed campaigns")
    found.set_defaults(run=discover)
    checked = commands.add_parser("check", parents=[common], help="validate the file against the platforms")
    checked.add_argument("--write", action="store_true", help="write the registry, mapping and targets if it passes")
    seeds = "default: in GAELP_ACCOUNT_SEEDS, else dbt_project/account_seeds/"
    checked.add_argument("--registry", type=Path, help=f"the campaign registry to write ({seeds})")
    checked.add_argument("--mapping", type=Path, help=f"the GA4 mapping overrides to write ({seeds})")
    checked.add_argument("--targets", type=Path, help="push targets (default: GAELP_TARGETS_CSV or data/accounts/)")
    checked.set_defaults(run=check)


def _say(*lines: str, err: bool = False) -> None:
    print("\n".join(lines), file=sys.stderr if err else sys.stdout)


def _read(path: Path) -> list | None:
    try:
        return read_review(path)
    except ReviewError as e:
        _say(f"error: {e}", err=True)
        return None


def _discover(platforms: tuple[str, ...] | None):
    with wiring.platform_resources(platforms) as (resources, missing):
        accounts, failed = wiring.discover(resources)
    for platform, why in missing.items():
        _say(f"{platform}: {why}")
    for platform, why in failed.items():
        _say(f"error: {platform}: {why}", err=True)
    return accounts, failed


def discover(args: argparse.Namespace) -> int:
    path = (args.file or wiring.accounts_file()).resolve()
    existing = None
    if path.exists():
        existing = _read(path)
        if existing is None:
            return 2
    accounts, failed = _discover(tuple(args.platform) if args.platform else None)
    if not accounts:
        _say("error: no platform could be read; nothing written", err=True)
        return 1
    rows = propose(accounts, existing, include_removed=args.include_removed)
    write_review(path, rows)
    known = {r.key for r in existing or []}
    for account in accounts:
        new = [c for c in account.campaigns if c.key not in known]
        blocked = [c for c in account.campaigns if not c.manageable and c.status != "removed"]
        _say(f"{account.platform} {account.account}: {len(account.campaigns)} campaign(s), {len(new)} new")
        for c in blocked:
            _say(f"  not manageable: {c.campaign_id} {c.name}: {c.reason}")
    managed = sum(r.managed for r in rows)
    _say(
        f"wrote {path}: {len(rows)} campaign(s), {managed} managed.",
        "next: set managed=true on the campaigns GAELP should run, fix product / intent / GA4 mapping where the "
        "guess is wrong (see notes), then `gaelp accounts check`.",
    )
    return 1 if failed else 0


def check(args: argparse.Namespace) -> int:
    path = (args.file or wiring.accounts_file()).resolve()
    rows = _read(path)
    if rows is None:
        return 2
    platforms = tuple(p for p in PLATFORMS if any(r.platform == p for r in rows))
    if args.platform:
        platforms = tuple(p for p in platforms if p in args.platform)
    accounts, _ = _discover(platforms)
    result = checking.validate(rows, accounts, path)
    for warning in result.warnings:
        _say(f"warning: {warning}")
    for error in result.errors:
        _say(f"error: {error}", err=True)
    if not result.ok:
        _say(f"{path}: {len(result.errors)} error(s); nothing written", err=True)
        return 1
    registry, targets = checking.registry_rows(rows), checking.target_rows(rows)
    mapping = checking.mapping_rows(rows)
    _say(f"{path}: ok: {len(rows)} campaign(s), {len(targets)} managed, {len(mapping)} GA4 mapping override(s)")
    if not args.write:
        _say("run `gaelp accounts check --write` to write the registry, the GA4 mapping and the push targets")
        return 0
    if not targets:
        _say(
            "error: no campaign is managed: writing would pause every campaign GAELP runs; set managed=true on the "
            "campaigns it should run first",
            err=True,
        )
        return 1
    targets_path = (args.targets or wiring.targets_file()).resolve()
    registry_path, mapping_path = args.registry or registry_file(), args.mapping or mapping_file()
    checking.write_csv(registry_path, checking.REGISTRY_COLUMNS, registry)
    checking.write_csv(mapping_path, checking.MAPPING_COLUMNS, mapping)
    checking.write_csv(targets_path, checking.TARGET_COLUMNS, targets)
    _say(f"wrote the registry {registry_path}", f"wrote the GA4 mapping {mapping_path}")
    _say(f"wrote the push targets {targets_path}")
    if str(targets_path) != str(Path(wiring.targets_csv() or "").resolve()):
        _say(f"the daily plan reads its targets from GAELP_TARGETS_CSV: set GAELP_TARGETS_CSV={targets_path}")
    return 0
