"""The campaign registry: the account's campaigns as the operator knows them (platform, id, name, product, intent).

It is account configuration, not hidden truth: ingestion refuses report rows for campaigns it does not list, and
later stages take their fixed campaign order from it. The file is also the dbt seed behind `dim_campaign`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGISTRY_FILE = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "campaign_registry.csv"
COLUMNS = ("platform", "campaign_id", "campaign_name", "product", "intent", "status")
STATUSES = ("enabled", "paused")


class CampaignRegistryError(ValueError):
    """The registry file is malformed; the message names the file, line and field."""


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
    def load(cls, path: str | Path = DEFAULT_REGISTRY_FILE) -> CampaignRegistry:
        path = Path(path)
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
