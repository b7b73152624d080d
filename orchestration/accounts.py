"""Wiring for connecting ad accounts: the resources that answer discovery (the bid push resources of the environment:
the demo market, or the real accounts with credentials from the environment), and where the review file and the
files it compiles to live.

`GAELP_ACCOUNTS_FILE`: the review file (default `<GAELP_DATA_DIR>/accounts/accounts.csv`). The daily
`account_structure` asset writes its proposal next to it (`proposal.csv`) and never edits the review file itself.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import dagster as dg

from orchestration.environment import Environment, current_environment, data_dir, targets_csv
from orchestration.resources import build_resources
from orchestration.resources.platforms import BidPlatform
from rl.accounts import check as checking
from rl.accounts.model import DiscoveredAccount, DiscoveryError
from rl.accounts.review import ReviewError, propose, read_review
from rl.bidding import planner
from rl.campaign_registry import (
    ACCOUNT_SEEDS_VAR,
    DEFAULT_ACCOUNT_SEEDS,
    MAPPING_FILENAME,
    REGISTRY_FILENAME,
    account_seeds_dir,
    registry_file,
)

ACCOUNTS_FILE_VAR = "GAELP_ACCOUNTS_FILE"
PLATFORM_RESOURCES = {
    "google_ads": "bid_google_ads",
    "meta": "bid_meta",
    "tiktok": "bid_tiktok",
    "microsoft_ads": "bid_microsoft_ads",
}
MAPPING_FILE = DEFAULT_ACCOUNT_SEEDS / MAPPING_FILENAME  # the reference account's


def accounts_file() -> Path:
    """The review file: `GAELP_ACCOUNTS_FILE`, else `<data dir>/accounts/accounts.csv`."""
    return Path(os.environ.get(ACCOUNTS_FILE_VAR) or data_dir() / "accounts" / "accounts.csv").resolve()


def proposal_file() -> Path:
    """Where the daily discovery writes its proposal (the review file as `gaelp accounts discover` would make it)."""
    return accounts_file().with_name("proposal.csv")


def targets_file() -> Path:
    """Where `gaelp accounts check --write` puts the push targets: `GAELP_TARGETS_CSV`, else next to the review
    file (then set `GAELP_TARGETS_CSV` to it for the daily plan)."""
    return Path(targets_csv() or accounts_file().with_name("targets.csv")).resolve()


def _unset(resource: dg.ConfigurableResource) -> list[str]:
    """The environment variables a resource's configuration names and the environment does not set (an empty value
    is set: Dagster takes it, e.g. no manager account)."""
    return sorted(
        value.env_var_name
        for value in resource.__dict__.values()
        if isinstance(value, dg.EnvVar) and value.env_var_name not in os.environ
    )


@contextlib.contextmanager
def platform_resources(
    platforms: tuple[str, ...] | None = None,
) -> Iterator[tuple[dict[str, BidPlatform], dict[str, str]]]:
    """The environment's bid platform resources, initialized (credentials resolved from the environment), per
    platform; and why each platform that cannot be read is not connected (its unset variables)."""
    configured = build_resources()
    ready, missing = {}, {}
    for platform in platforms or tuple(PLATFORM_RESOURCES):
        resource = configured[PLATFORM_RESOURCES[platform]]
        unset = _unset(resource)
        if unset:
            missing[platform] = f"not connected: {', '.join(unset)} not set"
        else:
            ready[platform] = resource
    with dg.build_resources({PLATFORM_RESOURCES[p]: r for p, r in ready.items()}) as built:
        yield {p: getattr(built, PLATFORM_RESOURCES[p]) for p in ready}, missing


def discover(resources: Mapping[str, BidPlatform]) -> tuple[list[DiscoveredAccount], dict[str, str]]:
    """Each platform's account structure, and the platforms that could not be read (why)."""
    found, failed = [], {}
    for platform, resource in resources.items():
        try:
            found.append(resource.discover(platform))
        except DiscoveryError as e:
            failed[platform] = str(e)
    return found, failed


def declared_shared() -> set[tuple[str, str]]:
    """(platform, budget target) pairs whose sharing the review file declares (none without a review file)."""
    path = accounts_file()
    if not path.exists():
        return set()
    try:
        return {(r.platform, r.budget_target) for r in read_review(path) if r.managed and r.allow_shared_budget}
    except ReviewError:
        return set()  # a file that does not read declares nothing; `gaelp accounts check` says why


def targets_lookup() -> Callable[[str, int], tuple[str, tuple[str, ...]]] | None:
    """The push targets the daily plan uses: `GAELP_TARGETS_CSV`, the demo market's ids in demo, else None."""
    path = targets_csv()
    if path:
        with open(path, newline="") as f:
            return planner.targets_from_rows(list(csv.DictReader(f)))
    return planner.demo_targets_for if current_environment() is Environment.DEMO else None


class DemoAccountsError(RuntimeError):
    """The demo market's accounts cannot be connected: the message says which platform or campaign, and why."""


def connect_demo_accounts() -> Path | None:
    """Make the account seeds the pipeline reads (campaign registry, GA4 mapping) match the demo world's campaigns.

    The repository's seeds are the reference account's, so any world with those campaigns runs on them as they are
    (returns None). A world with other campaigns is another account: its seeds are compiled from the demo market's
    accounts as `gaelp accounts discover`, a review that manages every manageable campaign and `gaelp accounts check
    --write` would, into `<data dir>/accounts/seeds/`, and `GAELP_ACCOUNT_SEEDS` is set to that directory for this
    process and those it starts (returns it). Without this the registry lists campaigns the world does not have (or
    misses some it has) and the pipeline stops at ingestion or calibration."""
    with platform_resources() as (resources, missing):
        accounts, failed = discover(resources)
    why = {**missing, **failed}
    if why:
        reasons = "; ".join(f"{p}: {w}" for p, w in why.items())
        raise DemoAccountsError(f"cannot read the demo market's accounts: {reasons}")
    rows = [dataclasses.replace(r, managed=r.manageable) for r in propose(accounts)]
    result = checking.validate(rows, accounts, "the demo market's accounts")
    if not result.ok:
        raise DemoAccountsError("the demo world's campaigns do not compile to a registry: " + "; ".join(result.errors))
    wanted = checking.registry_rows(rows)
    if registry_file().exists():
        with open(registry_file(), newline="") as f:
            if list(csv.DictReader(f)) == wanted:
                return None
    target = (data_dir() / "accounts" / "seeds").resolve()
    if os.environ.get(ACCOUNT_SEEDS_VAR) and account_seeds_dir() != target:
        world = ", ".join(f"{r['platform']} {r['campaign_id']}" for r in wanted)
        raise DemoAccountsError(
            f"{ACCOUNT_SEEDS_VAR}={os.environ[ACCOUNT_SEEDS_VAR]}: its registry does not list the demo world's "
            f"campaigns ({world}); unset it to let the demo write the world's own seeds under the data directory"
        )
    checking.write_csv(target / REGISTRY_FILENAME, checking.REGISTRY_COLUMNS, wanted)
    checking.write_csv(target / MAPPING_FILENAME, checking.MAPPING_COLUMNS, checking.mapping_rows(rows))
    os.environ[ACCOUNT_SEEDS_VAR] = str(target)
    return target
