"""The campaign registry: the account's campaigns as the operator knows them (platform, id, name, product, intent).

It is account configuration, not hidden truth: ingestion refuses report rows for campaigns it does not list, and
later stages take their fixed campaign order from it. The warehouse's `campaign_registry` (behind `dim_campaign`)
reads the same file on every build.

It lives with the GA4 mapping overrides in the account seeds directory: `dbt_project/account_seeds/` (the reference
account's, as `gaelp accounts check --write` writes them), or the directory `GAELP_ACCOUNT_SEEDS` names (read by the
dbt models too). The demo sets it when its world holds other campaigns than the reference account's
(`orchestration.accounts.connect_demo_accounts`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

ACCOUNT_SEEDS_VAR = "GAELP_ACCOUNT_SEEDS"
DEFAULT_ACCOUNT_SEEDS = Path(__file__).resolve().parents[1] / "dbt_project" / "account_seeds"
REGISTRY_FILENAME = "campaign_registry.csv"
MAPPING_FILENAME = "campaign_ga4_mapping.csv"
DEFAULT_REGISTRY_FILE = DEFAULT_ACCOUNT_SEEDS / REGISTRY_FILENAME
COLUMNS = ("platform", "campaign_id", "campaign_name", "product", "intent", "status")
STATUSES = ("enabled", "paused")


class CampaignRegistryError(ValueError):
    """The registry file is malformed (the message names the file, line and field), or its directory is misnamed."""


def account_seeds_dir() -> Path:
    """The directory of the account seeds (registry and GA4 mapping): `GAELP_ACCOUNT_SEEDS`, else the repository's.
    It must be absolute: dbt reads it from its project directory, this process from wherever it runs."""
    value = os.environ.get(ACCOUNT_SEEDS_VAR)
    if not value:
        return DEFAULT_ACCOUNT_SEEDS
    if not Path(value).is_absolute():
        raise CampaignRegistryError(
            f"{ACCOUNT_SEEDS_VAR} must be an absolute path, got {value!r}: dbt would read it from its project "
            "directory, and this process from its own"
        )
    return Path(value)


def registry_file() -> Path:
    return account_seeds_dir() / REGISTRY_FILENAME


def mapping_file() -> Path:
    return account_seeds_dir() / MAPPING_FILENAME


@dataclass(frozen=True)
class RegisteredCampaign:
    platform: str
    campaign_id: int
    campaign_name: str
    product: str
    intent: str
    status: str


@dataclass(frozen=True)
class CampaignRegistry:
    campaigns: tuple[RegisteredCampaign, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> CampaignRegistry:
        """The registry in `path` (default: `registry_file()`, the one the warehouse reads)."""
        path = registry_file() if path is None else Path(path)
        if not path.exists():
            raise CampaignRegistryError(f"campaign registry not found: {path}")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CampaignRegistryError(f"{path}: missing columns {missing} (expected {list(COLUMNS)})")
            rows = []
            for line, rec in enumerate(reader, start=2):
                try:
                    campaign_id = int(rec["campaign_id"])
                except ValueError:
                    raise CampaignRegistryError(
                        f"{path}:{line}: campaign_id {rec['campaign_id']!r} is not an integer"
                    ) from None
                if rec["status"] not in STATUSES:
                    raise CampaignRegistryError(f"{path}:{line}: status {rec['status']!r} is not one of {STATUSES}")
                rows.append(
                    RegisteredCampaign(
                        rec["platform"], campaign_id, rec["campaign_name"], rec["product"], rec["intent"], rec["status"]
                    )
                )
        keys = [(c.platform, c.campaign_id) for c in rows]
        if len(set(keys)) != len(keys):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            raise CampaignRegistryError(f"{path}: duplicated (platform, campaign_id) {dupes}")
        return cls(tuple(rows))

    def ids(self, platform: str | None = None) -> set[int]:
        return {c.campaign_id for c in self.campaigns if platform is None or c.platform == platform}

    @property
    def platforms(self) -> list[str]:
        return sorted({c.platform for c in self.campaigns})
