"""The reference settings (`bid_reference`, DuckDB): per campaign, the daily budget, bid and device and hour-block
modifiers in force when GAELP took over — the policy's bid multiplier 1.0 and the static, safe plan. Recorded once,
by the first plan that sees the campaign; a campaign recorded before the modifiers were has them recorded by the
next plan."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from rl.bidding.history import MartHistory
from rl.bidding.modifiers import settings_in_force
from rl.bidding.plan import Reference

REFERENCE_TABLE = "bid_reference"

REFERENCE_DDL = f"""
CREATE TABLE IF NOT EXISTS {REFERENCE_TABLE} (
    platform VARCHAR NOT NULL, campaign_id BIGINT NOT NULL, daily_budget DOUBLE NOT NULL, bid DOUBLE NOT NULL,
    source VARCHAR NOT NULL, recorded_at_utc TIMESTAMP NOT NULL
)
"""
# the device and hour-block modifiers in force when GAELP took over (JSON), added after the table's first version:
# a campaign recorded before has them recorded by the next plan
REFERENCE_MODIFIER_COLUMNS = ("device_modifiers", "hour_modifiers")


class ReferenceStore:
    """The reference settings table over one DuckDB connection."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def recorded_bids(self) -> dict[int, float]:
        """Campaign id → the reference bid recorded so far (empty before the first plan); reads only."""
        exists = self.conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [REFERENCE_TABLE]
        ).fetchone()[0]
        if not exists:
            return {}
        return {
            int(c): float(b) for c, b in self.conn.execute(f"SELECT campaign_id, bid FROM {REFERENCE_TABLE}").fetchall()
        }

    def reference(self, history: MartHistory, hour_blocks: int) -> Reference:
        """The reference settings: recorded once, from the settings (and modifiers) in force on the first day GAELP
        planned."""
        self.conn.execute(REFERENCE_DDL)
        for column in REFERENCE_MODIFIER_COLUMNS:
            self.conn.execute(f"ALTER TABLE {REFERENCE_TABLE} ADD COLUMN IF NOT EXISTS {column} VARCHAR")
        now_settings = settings_in_force(history, hour_blocks)
        index = {(c.platform, c.campaign_id): j for j, c in enumerate(history.campaigns)}
        rows = self.conn.execute(
            f"SELECT platform, campaign_id, daily_budget, bid, source, device_modifiers, hour_modifiers "
            f"FROM {REFERENCE_TABLE}"
        ).fetchall()
        known = {(p, int(c)): [b, q, s, d, h] for p, c, b, q, s, d, h in rows}
        stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        source = f"settings in force on {history.last_date} (recorded by the first plan)"
        for c in history.campaigns:
            j = index[(c.platform, c.campaign_id)]
            device = json.dumps(now_settings.device[j].tolist())
            hours = json.dumps(now_settings.hours[j].tolist())
            if (c.platform, c.campaign_id) not in known:
                b, q = float(history.current_budgets[j]), float(history.current_bids[j])
                values = [c.platform, c.campaign_id, b, q, source, stamp, device, hours]
                self.conn.execute(
                    f"INSERT INTO {REFERENCE_TABLE} (platform, campaign_id, daily_budget, bid, source, "
                    "recorded_at_utc, device_modifiers, hour_modifiers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
                known[(c.platform, c.campaign_id)] = [b, q, source, device, hours]
            elif known[(c.platform, c.campaign_id)][3] is None:
                self.conn.execute(
                    f"UPDATE {REFERENCE_TABLE} SET device_modifiers = ?, hour_modifiers = ? "
                    "WHERE platform = ? AND campaign_id = ?",
                    [device, hours, c.platform, c.campaign_id],
                )
                known[(c.platform, c.campaign_id)][3:] = [device, hours]
        values = [known[(c.platform, c.campaign_id)] for c in history.campaigns]
        return Reference(
            budgets=np.array([v[0] for v in values], dtype=float),
            bids=np.array([v[1] for v in values], dtype=float),
            source="; ".join(sorted({v[2] for v in values})),
            device=np.array([json.loads(v[3]) for v in values], dtype=float),
            hours=np.array([json.loads(v[4]) for v in values], dtype=float),
        )
