"""The account's settings: its daily budget, target CPA, currency, time zone, the largest change per day and the
highest bid GAELP may set.

This module is the one home of their defaults (the reference account: $500/day, CPA < $100). They are read once,
from the environment or a file, by `orchestration.environment.account_settings` (see `from_sources`), handed to the
assets as the `account` Dagster resource and into `rl/` as this plain value; no other module carries its own default.

A settings file is JSON or YAML with any of the fields below; environment variables override it field by field:
GAELP_DAILY_BUDGET, GAELP_TARGET_CPA, GAELP_CURRENCY, GAELP_TIME_ZONE, GAELP_MAX_DAILY_STEP, GAELP_MAX_BID_MULTIPLE (and
GAELP_ACCOUNT_FILE names the file).
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

FILE_VAR = "GAELP_ACCOUNT_FILE"
ENV_VARS = {
    "daily_budget": "GAELP_DAILY_BUDGET",
    "target_cpa": "GAELP_TARGET_CPA",
    "currency": "GAELP_CURRENCY",
    "time_zone": "GAELP_TIME_ZONE",
    "max_step": "GAELP_MAX_DAILY_STEP",
    "max_bid_multiple": "GAELP_MAX_BID_MULTIPLE",
}


class AccountSettingsError(ValueError):
    """The account settings are missing a value, misspell a field or hold one out of range."""


@dataclass(frozen=True)
class AccountSettings:
    """The account's configuration (not fitted): what GAELP may spend a day, the CPA it must stay under, the
    account's currency and time zone, the largest relative change of a budget or bid from one day to the next, and
    the max bid as a multiple of the campaign's reference bid (the bid in force when GAELP took over). The max bid
    caps every (device, hour) cell's effective bid: the plan applies it, and the calibrated market the policy learns
    in carries the same cap, so the policy learns the trade-off between base bid and modifiers that the plan
    enforces."""

    daily_budget: float = 500.0
    target_cpa: float = 100.0
    currency: str = "USD"
    time_zone: str = "America/New_York"
    max_step: float = 0.20
    max_bid_multiple: float = 2.0

    def __post_init__(self) -> None:
        for name in ("daily_budget", "target_cpa"):
            if not getattr(self, name) > 0:
                raise AccountSettingsError(f"AccountSettings.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.max_step <= 1:
            raise AccountSettingsError(f"AccountSettings.max_step must be in (0, 1], got {self.max_step}")
        if not self.max_bid_multiple >= 1:
            raise AccountSettingsError(
                f"AccountSettings.max_bid_multiple must be >= 1 (the bid in force is always allowed), got "
                f"{self.max_bid_multiple!r}"
            )
        if len(self.currency) != 3 or not self.currency.isupper():
            raise AccountSettingsError(f"AccountSettings.currency must be an ISO 4217 code, got {self.currency!r}")
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise AccountSettingsError(
                f"AccountSettings.time_zone {self.time_zone!r} is not an IANA time zone (e.g. America/New_York)"
            ) from None

    def max_bid(self, reference_bid):
        """The highest bid GAELP may set for a campaign whose reference bid (the bid in force when GAELP took over)
        is `reference_bid` (a number or an array): the plan's cap and the calibrated market's `max_bid`."""
        return self.max_bid_multiple * reference_bid

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "the account settings") -> AccountSettings:
        """Settings from a mapping of field → value (strings are converted); unknown fields are an error."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise AccountSettingsError(f"{source}: unknown account setting(s) {unknown} (known: {sorted(known)})")
        typed: dict[str, Any] = {}
        for name, value in values.items():
            kind = float if name in ("daily_budget", "target_cpa", "max_step", "max_bid_multiple") else str
            try:
                typed[name] = kind(value)
            except (TypeError, ValueError):
                raise AccountSettingsError(f"{source}: {name}={value!r} is not a {kind.__name__}") from None
        try:
            return cls(**typed)
        except AccountSettingsError as e:
            raise AccountSettingsError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> AccountSettings:
        """Settings from a JSON or YAML file."""
        path = Path(path)
        if not path.exists():
            raise AccountSettingsError(f"account settings file {path} does not exist ({FILE_VAR})")
        text = path.read_text()
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(values, Mapping):
            raise AccountSettingsError(f"account settings file {path} must hold a mapping of setting → value")
        return cls.from_mapping(values, str(path))

    @classmethod
    def from_sources(cls, environ: Mapping[str, str]) -> AccountSettings:
        """The file named by GAELP_ACCOUNT_FILE (if any), then each GAELP_<SETTING> variable set in `environ`."""
        base = cls.load(environ[FILE_VAR]).as_dict() if environ.get(FILE_VAR) else {}
        overrides = {name: environ[var] for name, var in ENV_VARS.items() if environ.get(var, "").strip()}
        return cls.from_mapping(base | overrides, "the account settings (file and environment)")
