"""What GAELP knows of a campaign's device and hour-of-day bid modifiers on a search platform, read before each
push: the device criteria and the day-and-time schedule, whether that schedule is exactly the plan's hour blocks
(every weekday, whole hours) and the value in force of a device or a block. Shared by the Google Ads and Microsoft
Advertising adapters (`google_ads_criteria`, `microsoft_criteria`), which build their SDK requests from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rl.bidding.plan import HOURS, Change, parse_modifier_target
from rl.bidding.push import Outcome, Reading

GOOGLE_WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
MINUTES = {
    **{"ZERO": "00", "FIFTEEN": "15", "THIRTY": "30", "FORTY_FIVE": "45"},  # Google Ads MinuteOfHour
    **{"Zero": "00", "Fifteen": "15", "Thirty": "30", "FortyFive": "45"},  # Microsoft Advertising Minute
}


@dataclass(frozen=True)
class Slot:
    """One AD_SCHEDULE criterion as the campaign holds it."""

    criterion_id: int
    day: str
    start_hour: int
    start_minute: str
    end_hour: int
    end_minute: str
    modifier: float

    def describe(self) -> str:
        start, end = MINUTES.get(self.start_minute, "?"), MINUTES.get(self.end_minute, "?")
        return f"{self.day} {self.start_hour:02d}:{start}-{self.end_hour:02d}:{end}"


@dataclass
class CampaignCriteria:
    """A campaign's device criteria (key -> (criterion id, modifier in force as a multiplier)) and its schedule, on a
    platform whose weekdays are named `weekdays` (Monday first) and whose whole hour starts at minute `zero`."""

    campaign_id: int
    devices: dict[str, tuple[int, float]] = field(default_factory=dict)
    schedule: list[Slot] = field(default_factory=list)
    platform: str = "Google Ads"
    weekdays: tuple[str, ...] = GOOGLE_WEEKDAYS
    zero: str = "ZERO"

    def misalignment(self, n_blocks: int) -> str | None:
        """Why the campaign's ad schedule cannot take the plan's blocks (None: none yet, or exactly the blocks)."""
        if not self.schedule:
            return None
        width = HOURS // n_blocks
        expected = {(d, b * width, (b + 1) * width) for d in self.weekdays for b in range(n_blocks)}
        found = [(s.day, s.start_hour, s.end_hour) for s in self.schedule]
        odd = [
            s
            for s in self.schedule
            if (s.day, s.start_hour, s.end_hour) not in expected
            or s.start_minute != self.zero
            or s.end_minute != self.zero
        ]
        missing = sorted(expected - set(found), key=lambda k: (self.weekdays.index(k[0]), k[1]))
        if not odd and not missing and len(found) == len(expected):
            return None
        parts = []
        if odd:
            parts.append("it has " + ", ".join(s.describe() for s in odd[:4]) + (" ..." if len(odd) > 4 else ""))
        if missing:
            shown = ", ".join(f"{d} {a:02d}:00-{b:02d}:00" for d, a, b in missing[:4])
            parts.append(f"it lacks {shown}" + (" ..." if len(missing) > 4 else ""))
        return (
            f"campaign {self.campaign_id} has its own ad schedule ({len(self.schedule)} criteria) that is not the "
            f"plan's {n_blocks} blocks of {width} hours on every weekday: {'; '.join(parts)}. GAELP does not rewrite "
            f"a schedule it did not create; align it in {self.platform} (or remove it) to let GAELP set hour modifiers"
        )

    def block(self, block: int, n_blocks: int) -> list[Slot]:
        """The block's criteria, Monday first (an aligned schedule has exactly 7)."""
        width = HOURS // n_blocks
        slots = [s for s in self.schedule if s.start_hour == block * width and s.end_hour == (block + 1) * width]
        return sorted(slots, key=lambda s: self.weekdays.index(s.day))

    def reading(self, change: Change) -> Reading:
        _, key, block = parse_modifier_target(change.target)
        if block is None:
            found = self.devices.get(key)
            return Reading(found[1] if found else None)
        n_blocks = change.row.n_blocks or 1
        problem = self.misalignment(n_blocks)
        if problem:
            return Reading(None, problem=problem)
        if not self.schedule:  # no schedule: every hour serves without adjustment
            return Reading(1.0)
        values = {round(s.modifier, 2) for s in self.block(block, n_blocks)}
        return Reading(values.pop() if len(values) == 1 else None)


@dataclass
class Operations:
    """Operations of one MutateCampaignCriteria request, and which of them each change owns."""

    operations: list[Any] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)  # per change: its operation indexes
    labels: list[str] = field(default_factory=list)  # per operation: the weekday or device it sets
    note: str = ""  # what the request is, for its outcomes' messages

    def add(self, change: Change, operations: list[tuple[str, Any]]) -> None:
        start = len(self.operations)
        self.operations += [op for _, op in operations]
        self.labels += [label for label, _ in operations]
        self.changes.append(change)
        self.groups.append(list(range(start, len(self.operations))))


def fold(
    change: Change, indexes: list[int], outcomes: list[Outcome], labels: list[str], validate_only: bool
) -> Outcome:
    """One change's outcome from its operations' outcomes (a device: one operation; an hour block: its 7 weekdays)."""
    mine = [outcomes[i] for i in indexes]
    request_id = next((o.request_id for o in mine if o.request_id), None)
    first = indexes[0] if indexes else None
    kinds = {o.kind for o in mine}
    what = f"{change.describe()} ({len(mine)} criteria)" if len(mine) > 1 else change.describe()
    if kinds == {"done"}:
        texts = list(dict.fromkeys(o.response for o in mine))
        return Outcome.done(f"{what}: " + "; ".join(texts), request_id, first)
    failed = [(labels[i], outcomes[i]) for i in indexes if outcomes[i].kind != "done"]
    by_text: dict[str, list[str]] = {}
    for label, o in failed:
        by_text.setdefault(o.response, []).append(label)
    detail = "; ".join(f"{text} [{', '.join(names)}]" for text, names in by_text.items())
    if kinds == {"refused"} or (validate_only and "unknown" not in kinds):
        return Outcome.refused(f"{what} refused: {detail}", request_id, first)
    if "unknown" in kinds:
        return Outcome.unknown(f"{what}: outcome unknown: {detail}", request_id, first)
    applied = ", ".join(labels[i] for i in indexes if outcomes[i].kind == "done")
    refused = ", ".join(label for label, _ in failed)
    return Outcome.unknown(
        f"{what}: applied for {applied} but refused for {refused} ({detail}); the block's weekdays now differ, "
        "the next push reads them back and sets them again",
        request_id,
        first,
    )
