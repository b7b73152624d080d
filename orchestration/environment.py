"""The one place that decides which environment GAELP runs in.

`demo` (the default, no credentials): the demo market answers every API and receives every push, the warehouse is a
local DuckDB file. `prod`: the real GA4 property and ad accounts, credentials from environment variables.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

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
