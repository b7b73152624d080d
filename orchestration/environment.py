"""The one place that decides which environment GAELP runs in.

`demo` (the default, no credentials): the demo market answers every API and receives every push, the warehouse is a
local DuckDB file. `prod`: the real GA4 property and ad accounts, credentials from environment variables.
"""

from __future__ import annotations

import datetime as dt
import os
from enum import StrEnum
from pathlib import Path

from rl.account import AccountSettings
from rl.market.params import load_market_params
from rl.world.paths import DEFAULT_WORLD_FILE

ENV_VAR = "GAELP_ENV"
DATA_DIR_VAR = "GAELP_DATA_DIR"


class Environment(StrEnum):
    DEMO = "demo"
    PROD = "prod"


def current_environment() -> Environment:
    """Read `GAELP_ENV` (default `demo`); anything else is an error that names the accepted values."""
    raw = os.environ.get(ENV_VAR, Environment.DEMO.value).strip().lower()
    try:
        return Environment(raw)
    except ValueError:
        accepted = ", ".join(e.value for e in Environment)
        raise ValueError(f"{ENV_VAR}={raw!r} is not an environment GAELP knows (accepted: {accepted})") from None


def data_dir() -> Path:
    """Where the project keeps its local state (demo world, DuckDB file, raw responses): `GAELP_DATA_DIR` or ./data."""
    return Path(os.environ.get(DATA_DIR_VAR, "data")).resolve()


def published_warehouse_path() -> Path:
    """The analysts' read-only copy of the warehouse, which the reading assets and the sensors query."""
    return data_dir() / "published" / "warehouse.duckdb"


WORLD_FILE_VAR = "GAELP_WORLD_FILE"
WORLD_SEED_VAR = "GAELP_WORLD_SEED"
HISTORY_START_VAR = "GAELP_HISTORY_START"


def world_file() -> Path:
    """The demo market's world file: `GAELP_WORLD_FILE` or the reference account."""
    return Path(os.environ.get(WORLD_FILE_VAR, str(DEFAULT_WORLD_FILE))).resolve()


def world_seed() -> int:
    raw = os.environ.get(WORLD_SEED_VAR, "0")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{WORLD_SEED_VAR}={raw!r} is not an integer seed") from None


def history_start() -> dt.date:
    """First day of the daily partitions: `GAELP_HISTORY_START` (YYYY-MM-DD); in demo, by default, the day the demo
    account's history starts (the world file's `history_start`, which is account metadata, not hidden truth)."""
    raw = os.environ.get(HISTORY_START_VAR)
    if raw:
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{HISTORY_START_VAR}={raw!r} is not a date (YYYY-MM-DD)") from None
    if current_environment() is Environment.DEMO:
        return load_market_params(world_file()).history_start
    raise ValueError(f"{HISTORY_START_VAR} must be set in prod: the first day to ingest (YYYY-MM-DD)")


TARGETS_CSV_VAR = "GAELP_TARGETS_CSV"


def targets_csv() -> str | None:
    """Prod: the CSV naming, per campaign, the platform objects that hold its budget and bids
    (`GAELP_TARGETS_CSV`; platform, campaign_id, budget_target, bid_targets). The demo market needs none."""
    return os.environ.get(TARGETS_CSV_VAR) or None


def account_settings() -> AccountSettings:
    """The account's settings, read in this one place: the file named by `GAELP_ACCOUNT_FILE` (JSON or YAML), then
    `GAELP_DAILY_BUDGET`, `GAELP_TARGET_CPA`, `GAELP_CURRENCY`, `GAELP_TIME_ZONE`, `GAELP_MAX_DAILY_STEP`,
    `GAELP_MAX_BID_MULTIPLE`; anything unset keeps the defaults of `rl.account.AccountSettings`."""
    return AccountSettings.from_sources(os.environ)
