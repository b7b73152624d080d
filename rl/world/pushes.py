"""A push to the demo world: a change of one campaign's budget, bid and/or bid modifiers from a date on, as kept in
the state directory's append-only `pushes.jsonl` (one JSON object a line; lines written before the world knew
modifiers have none, and read as "modifiers kept")."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from rl.world.modifiers import Modifiers


@dataclass(frozen=True)
class Push:
    """A budget, bid and/or bid-modifier change for one campaign, in force from `effective_date` on (None: kept)."""

    seq: int
    effective_date: dt.date
    campaign_id: int
    daily_budget: float | None
    bid: float | None
    source: str
    device_modifiers: tuple[float, ...] | None = None
    hour_modifiers: tuple[float, ...] | None = None

    def apply(self, settings: dict[int, tuple[float, float]], modifiers: dict[int, Modifiers]) -> None:
        """Put the push's changes in force in `settings` and `modifiers`."""
        old_budget, old_bid = settings[self.campaign_id]
        settings[self.campaign_id] = (
            old_budget if self.daily_budget is None else float(self.daily_budget),
            old_bid if self.bid is None else float(self.bid),
        )
        old = modifiers[self.campaign_id]
        modifiers[self.campaign_id] = Modifiers(
            old.device if self.device_modifiers is None else tuple(self.device_modifiers),
            old.hours if self.hour_modifiers is None else tuple(self.hour_modifiers),
        )

    def to_json(self) -> str:
        d = asdict(self)
        d["effective_date"] = self.effective_date.isoformat()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Push:
        d = json.loads(line)
        d["effective_date"] = dt.date.fromisoformat(d["effective_date"])
        for key in ("device_modifiers", "hour_modifiers"):
            d[key] = None if d.get(key) is None else tuple(float(v) for v in d[key])
        return cls(**d)
