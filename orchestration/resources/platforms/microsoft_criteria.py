"""Microsoft Advertising device and hour-block bid adjustments as campaign criteria (Campaign Management v13).

A device adjustment is a `BiddableCampaignCriterion` whose `Criterion` is a `DeviceCriterion` (DeviceName Computers,
Smartphones or Tablets) and whose `CriterionBid` is a `BidMultiplier`: the adjustment in whole percent (-100..900 for
devices, -100 excluding the device; multiplier 1.2 -> 20). An hour block is one `DayTimeCriterion` per weekday (Day
Monday..Sunday, FromHour/ToHour, FromMinute/ToMinute Zero; -90..900; at most 7 per day).

What exists is read first (`GetCampaignCriterionsByIds`, CriterionType Targets); existing criteria are updated
(`UpdateCampaignCriterions`: Id, CampaignId, the criterion as it is, the new BidMultiplier), missing ones added
(`AddCampaignCriterions`): the three devices together (Microsoft keeps all three or none), the whole day-time
schedule (every weekday x every block of the row) when the campaign has none, since a campaign with day-time
criteria serves only in those hours. The API has no atomic mode: when some of the criteria of an add are refused,
the ones it added are deleted again (`DeleteCampaignCriterions`) so no partial schedule is left serving. A schedule
that is not the plan's blocks is never rewritten (the change is not sent; `modifiers.CampaignCriteria`).
"""

from __future__ import annotations

from typing import Any

from orchestration.resources.platforms.microsoft_errors import as_list, number
from orchestration.resources.platforms.modifiers import CampaignCriteria, Operations, Slot, fold
from orchestration.resources.platforms.transport import Attempts, PlatformFault
from rl.bidding.plan import DEVICE_KEYS, HOURS, Change, PlanError, hour_block_key, parse_modifier_target
from rl.bidding.push import Batch, Outcome

DEVICE_NAMES = {"mobile": "Smartphones", "desktop": "Computers", "tablet": "Tablets"}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEVICE_PERCENT = (-100, 900)
DAYTIME_PERCENT = (-90, 900)
MAX_DAYTIME_PER_DAY = 7
CRITERION_TYPE = "Targets"


def none_all(obj: Any) -> Any:
    """Set every element of a suds object to None (so an update sends only what is then set)."""
    for name, _ in obj:
        setattr(obj, name, None)
    return obj


def percent(multiplier: float) -> int:
    """A bid multiplier as Microsoft's whole-percent adjustment (1.2 -> 20, 0 -> -100)."""
    return int(round((multiplier - 1.0) * 100))


def check_modifier(change: Change) -> None:
    """PlanError unless the change is a modifier of its own row's campaign, in Microsoft's range."""
    campaign, _, block = parse_modifier_target(change.target)
    where = change.describe()
    if campaign != change.row.campaign_id:
        raise PlanError(f"{where}: target {change.target!r} is not campaign {change.row.campaign_id}'s")
    low, high = DEVICE_PERCENT if block is None else DAYTIME_PERCENT
    kind = "device" if block is None else "day-time"
    if not low <= percent(change.new_value) <= high:
        raise PlanError(
            f"{where}: a Microsoft Advertising {kind} bid adjustment is {low}% to +{high}%, got "
            f"{percent(change.new_value):+d}% (multiplier {change.new_value})"
        )
    if block is not None and (change.row.n_blocks or 0) > MAX_DAYTIME_PER_DAY:
        raise PlanError(
            f"{where}: Microsoft Advertising allows at most {MAX_DAYTIME_PER_DAY} day-time criteria per day; a plan "
            f"of {change.row.n_blocks} hour blocks cannot be set"
        )


def parse(response: Any, campaign_id: int) -> CampaignCriteria:
    """A `GetCampaignCriterionsByIds` reply -> the campaign's device criteria and day-time schedule."""
    found = CampaignCriteria(campaign_id, platform="Microsoft Advertising", weekdays=DAYS, zero="Zero")
    keys = {v: k for k, v in DEVICE_NAMES.items()}
    items = as_list(getattr(response, "CampaignCriterions", None), "CampaignCriterion")
    for item in items:
        if str(getattr(item, "Status", "") or "") == "Deleted":
            continue
        criterion = getattr(item, "Criterion", None)
        bid = number(getattr(getattr(item, "CriterionBid", None), "Multiplier", None))
        modifier = 1.0 + (bid or 0.0) / 100
        device = getattr(criterion, "DeviceName", None)
        if device in keys:
            found.devices[keys[device]] = (int(item.Id), modifier)
        elif getattr(criterion, "Day", None) is not None:
            found.schedule.append(
                Slot(
                    int(item.Id),
                    str(criterion.Day),
                    int(criterion.FromHour),
                    str(criterion.FromMinute),
                    int(criterion.ToHour),
                    str(criterion.ToMinute),
                    modifier,
                )
            )
    return found


def _criterion(factory: Any, campaign_id: int, criterion: Any, value: float, criterion_id: int | None) -> Any:
    item = none_all(factory.create("BiddableCampaignCriterion"))
    bid = none_all(factory.create("BidMultiplier"))
    bid.Multiplier = percent(value)  # the Type elements are read-only: suds sends the subtypes as xsi:type
    item.CampaignId, item.Id = campaign_id, criterion_id
    item.Criterion, item.CriterionBid = criterion, bid
    return item


def _device(factory: Any, key: str) -> Any:
    criterion = none_all(factory.create("DeviceCriterion"))
    criterion.DeviceName = DEVICE_NAMES[key]
    return criterion


def _daytime(factory: Any, day: str, start: int, end: int, minutes: tuple[str, str] = ("Zero", "Zero")) -> Any:
    criterion = none_all(factory.create("DayTimeCriterion"))
    criterion.Day, criterion.FromHour, criterion.ToHour = day, start, end
    criterion.FromMinute, criterion.ToMinute = minutes
    return criterion


def calls(changes: list[Change], found: dict[int, CampaignCriteria], factory: Any) -> list[tuple[str, int, Operations]]:
    """(method, campaign id, operations) per call: each campaign's updates, its device adds, its schedule adds."""
    out: list[tuple[str, int, Operations]] = []
    by_campaign: dict[int, list[Change]] = {}
    for change in changes:
        by_campaign.setdefault(parse_modifier_target(change.target)[0], []).append(change)
    for campaign_id, mine in by_campaign.items():
        criteria = found.get(campaign_id)
        if criteria is None:  # every modifier change is read before it is built (`_must_read`)
            raise RuntimeError(f"campaign {campaign_id}: its criteria were not read before building")
        updates = Operations()
        devices = Operations(note=f"campaign {campaign_id}'s three device criteria (added together)")
        schedule = Operations(note=f"campaign {campaign_id}'s new day-time schedule (all of it or none)")
        for change in mine:
            _, key, block = parse_modifier_target(change.target)
            if block is None and key in criteria.devices:
                item = _criterion(
                    factory, campaign_id, _device(factory, key), change.new_value, criteria.devices[key][0]
                )
                updates.add(change, [(key, item)])
            elif block is None:
                if not devices.operations:
                    values = change.row.device_modifiers or (1.0,) * len(DEVICE_KEYS)
                    for k, value in zip(DEVICE_KEYS, values, strict=True):
                        devices.operations.append(_criterion(factory, campaign_id, _device(factory, k), value, None))
                        devices.labels.append(k)
                devices.changes.append(change)
                devices.groups.append([DEVICE_KEYS.index(key)])
            elif criteria.schedule:
                slots = criteria.block(block, change.row.n_blocks or 1)
                items = [
                    (
                        s.day,
                        _criterion(
                            factory,
                            campaign_id,
                            _daytime(factory, s.day, s.start_hour, s.end_hour),
                            change.new_value,
                            s.criterion_id,
                        ),
                    )
                    for s in slots
                ]
                updates.add(change, items)
            else:
                n_blocks = change.row.n_blocks or 1
                width = HOURS // n_blocks
                if not schedule.operations:
                    for b, value in enumerate(change.row.hour_modifiers or ()):
                        for day in DAYS:
                            daytime = _daytime(factory, day, b * width, (b + 1) * width)
                            schedule.operations.append(_criterion(factory, campaign_id, daytime, value, None))
                            schedule.labels.append(f"{day} {hour_block_key(b, n_blocks)}")
                schedule.changes.append(change)
                schedule.groups.append(list(range(block * len(DAYS), (block + 1) * len(DAYS))))
        for method, ops in (
            ("UpdateCampaignCriterions", updates),
            ("AddCampaignCriterions", devices),
            ("AddCampaignCriterions", schedule),
        ):
            if ops.changes:
                out.append((method, campaign_id, ops))
    return out


def describe(item: Any) -> dict[str, Any]:
    """One BiddableCampaignCriterion as JSON-able dict (for the audit)."""
    criterion = item.Criterion
    described = {"Id": item.Id, "CampaignId": item.CampaignId, "Multiplier": item.CriterionBid.Multiplier}
    if getattr(criterion, "DeviceName", None):
        return {**described, "DeviceCriterion": {"DeviceName": criterion.DeviceName}}
    hours = {k: getattr(criterion, k) for k in ("Day", "FromHour", "FromMinute", "ToHour", "ToMinute")}
    return {**described, "DayTimeCriterion": hours}


def nested_errors(response: Any) -> dict[int, list[str]]:
    """index -> "ErrorCode (Code): Message" of an Add/UpdateCampaignCriterions reply's NestedPartialErrors (suds
    unwraps a reply whose only element they are)."""
    errors = response if hasattr(response, "BatchErrorCollection") else getattr(response, "NestedPartialErrors", None)
    out: dict[int, list[str]] = {}
    for collection in as_list(errors, "BatchErrorCollection"):
        if collection is None or getattr(collection, "Index", None) is None:
            continue
        texts = [
            f"{e.ErrorCode} ({e.Code}): {e.Message}"
            for e in as_list(getattr(collection, "BatchErrors", None), "BatchError")
        ]
        if getattr(collection, "ErrorCode", None):
            texts.insert(0, f"{collection.ErrorCode} ({collection.Code}): {collection.Message}")
        out.setdefault(int(collection.Index), []).extend(texts or ["refused (no details)"])
    return out


def added_ids(response: Any) -> list[int]:
    """The criterion ids an AddCampaignCriterions reply reports (None for the refused ones: left out)."""
    ids = getattr(response, "CampaignCriterionIds", None)
    return [int(i) for i in as_list(ids, "long") if i not in (None, "")]


# -- the calls, made through the resource (`MicrosoftAdsBidPlatform`: its `_call` policy, service and account) ----
def read(resource: Any, campaign_id: int) -> CampaignCriteria:
    """The campaign's device and day-time criteria (`GetCampaignCriterionsByIds`), kept for this push's build."""
    resource._criteria.pop(campaign_id, None)
    what = f"Microsoft Advertising GetCampaignCriterionsByIds for campaign {campaign_id} ({resource.account()})"
    response = resource._call(
        "GetCampaignCriterionsByIds", what, empty=True, CampaignId=campaign_id, CriterionType=CRITERION_TYPE
    )
    resource._criteria[campaign_id] = parse(response, campaign_id)
    return resource._criteria[campaign_id]


def batches(resource: Any, changes: list[Change], validate_only: bool) -> list[Batch]:
    """Validate-only: each call's campaign read again (Microsoft has no validate-only mode: the criteria exist, the
    values are not checked). Live: each campaign's updates, device adds and schedule adds (`calls`)."""
    out = []
    for method, campaign_id, ops in calls(changes, resource._criteria, resource._service().factory):
        envelope = {"method": method, "account_id": resource.account_id, "campaign_id": campaign_id}
        if validate_only:
            envelope = {**envelope, "method": "GetCampaignCriterionsByIds", "would_call": method}
        described = [describe(op) for op in ops.operations]
        requests = [{**envelope, "indexes": g, "items": [described[i] for i in g]} for g in ops.groups]
        out.append(Batch(ops.changes, requests, (envelope["method"], campaign_id, ops.operations, ops)))
    return out


def send(resource: Any, batch: Batch, validate_only: bool) -> list[Outcome]:
    method, campaign_id, items, ops = batch.payload
    what = f"Microsoft Advertising {method} for campaign {campaign_id} ({resource.account()})"
    if method.startswith("Add") and ops.note:
        what += f" ({ops.note})"
    attempts = Attempts()
    try:
        if validate_only:
            read(resource, campaign_id)
            would = batch.requests[0]["would_call"]
            text = f"checked: campaign {campaign_id}'s criteria read; a live push calls {would} (values not checked)"
            return [Outcome.done(text, resource._tracking_id(resource._service()), g[0]) for g in ops.groups]
        array = resource._service().factory.create("ArrayOfCampaignCriterion")
        array.CampaignCriterion.extend(items)
        response = resource._call(method, what, attempts, CampaignCriterions=array, CriterionType=CRITERION_TYPE)
    except PlatformFault as fault:
        by_op = [
            Outcome(fault.kind, "; ".join([fault.text] + [m for j, m in fault.errors if j in (i, None)]), None, i)
            for i in range(len(items))
        ]
        by_op = [Outcome(o.kind, o.response, fault.request_id, o.operation_index) for o in by_op]
        return [fold(c, g, by_op, ops.labels, validate_only) for c, g in zip(ops.changes, ops.groups, strict=True)]
    tracking = resource._tracking_id(resource._service())
    errors = nested_errors(response)
    failed = Outcome.unknown if attempts.unknown is not None else Outcome.refused
    verb = "added" if method.startswith("Add") else "updated"
    by_op = [
        failed(f"{what}: " + "; ".join(errors[i]), tracking, i) if i in errors else Outcome.done(verb, tracking, i)
        for i in range(len(items))
    ]
    if errors and method.startswith("Add"):
        by_op = _undo_partial_add(resource, response, campaign_id, by_op, what)
    return [fold(c, g, by_op, ops.labels, validate_only) for c, g in zip(ops.changes, ops.groups, strict=True)]


def _undo_partial_add(resource: Any, response: Any, campaign_id: int, by_op: list[Outcome], what: str) -> list[Outcome]:
    """Some criteria of an add were refused: the ones added are deleted again, so no partial schedule (or device
    set) is left serving. Their outcome is then refused; unknown if the delete failed too."""
    ids = added_ids(response)
    if not ids:
        return by_op
    try:
        resource._call(
            "DeleteCampaignCriterions",
            f"{what}: removing the {len(ids)} criteria it added",
            CampaignCriterionIds={"long": ids},
            CampaignId=campaign_id,
            CriterionType=CRITERION_TYPE,
        )
    except PlatformFault as fault:
        text = f"{what}: others were refused and removing the {len(ids)} added failed ({fault.text})"
        return [o if o.kind != "done" else Outcome.unknown(text, o.request_id, o.operation_index) for o in by_op]
    text = "added, then removed again: others of the same add were refused (nothing of it is left)"
    return [o if o.kind != "done" else Outcome.refused(text, o.request_id, o.operation_index) for o in by_op]
