"""The kill switch: revert to the safe settings when the account's CPA stays far above target.

Rule: the switch fires when the account's daily CPA was above `factor` × target CPA (default 1.5) on each of the
last `days` (default 3) consecutive complete days.

Which conversions. A day's CPA here is the account's paid spend that day over the GA4 key events credited to paid
campaigns that day (by CONVERSION date). GA4 key events of a day are final the next day, so yesterday's CPA is
already its final value and a breach is real, not an artefact of reporting. The ad platforms' conversions (by
CLICK date) would attribute conversions to the right spend, but for the last few days they are still maturing
(lags of 1-21 days): their CPA for the last three days is always inflated and the switch would fire on healthy
days. The price of the GA4 clock is a lag: a collapse in conversion rate shows in key events only as the clicks
that would have converted fail to — within days for the fast segments, which is the timescale of the rule. A day
with spend and no key events has an infinite CPA (a breach); a day without spend is never a breach (it also
breaks the streak: nothing was bought).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_FACTOR = 1.5
DEFAULT_DAYS = 3


@dataclass(frozen=True)
class DayFigures:
    date: dt.date
    spend: float
    key_events: float

    @property
    def cpa(self) -> float:
        if self.spend <= 0:
            return 0.0
        return self.spend / self.key_events if self.key_events > 0 else math.inf


@dataclass(frozen=True)
class KillSwitchDecision:
    fire: bool
    reason: str
    days: tuple[DayFigures, ...]  # the days the decision looked at, oldest first
    threshold_cpa: float

    def table(self) -> str:
        rows = "\n".join(
            f"| {d.date} | {d.spend:.2f} | {d.key_events:g} | {'inf' if math.isinf(d.cpa) else f'{d.cpa:.2f}'} |"
            for d in self.days
        )
        return "| date | spend | GA4 key events | CPA |\n|---|---|---|---|\n" + rows


def evaluate(
    daily: Sequence[DayFigures],
    target_cpa: float,
    factor: float = DEFAULT_FACTOR,
    days: int = DEFAULT_DAYS,
    as_of: dt.date | None = None,
) -> KillSwitchDecision:
    """Decide from the account's daily figures (any order; one entry per date; missing dates count as days
    without spend). `as_of` is the last complete day (default: the latest date given)."""
    if not target_cpa > 0 or not factor > 0 or days < 1:
        raise ValueError(f"kill switch needs target_cpa > 0, factor > 0, days >= 1; got {target_cpa}, {factor}, {days}")
    threshold = factor * target_cpa
    by_date: dict[dt.date, DayFigures] = {}
    for d in daily:
        if d.date in by_date:
            raise ValueError(f"kill switch: two figures for {d.date}")
        if not (math.isfinite(d.spend) and math.isfinite(d.key_events)) or d.spend < 0 or d.key_events < 0:
            raise ValueError(f"kill switch: figures for {d.date} are not finite non-negative numbers: {d}")
        by_date[d.date] = d
    if not by_date:
        return KillSwitchDecision(False, "no figures", (), threshold)
    last = as_of or max(by_date)
    window = tuple(
        by_date.get(last - dt.timedelta(days=i), DayFigures(last - dt.timedelta(days=i), 0.0, 0.0))
        for i in reversed(range(days))
    )
    breaches = [d.spend > 0 and d.cpa > threshold for d in window]
    if all(breaches):
        return KillSwitchDecision(
            True,
            f"CPA above {factor:g} x target ({threshold:.2f}) on each of the {days} days to {last} "
            "(GA4 key events by conversion date)",
            window,
            threshold,
        )
    ok = sum(not b for b in breaches)
    why = f"{ok} of the last {days} days to {last} had CPA at or below {threshold:.2f} (or no spend)"
    return KillSwitchDecision(False, why, window, threshold)
