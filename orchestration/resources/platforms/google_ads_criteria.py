"""Google Ads device and hour-block bid modifiers as campaign criteria (`CampaignCriterionService`, API v26).

Devices. A search campaign holds one DEVICE criterion per device type; its `bid_modifier` is the adjustment (unset
= 1.0, 0 = the device is opted out; otherwise 0.1-10.0, Google's documented range for `CampaignCriterion.bid_modifier`).
A device change is an UPDATE of `customers/{cid}/campaignCriteria/{campaign}~{criterion}` with the update mask
`bid_modifier` only. The criterion id is the one the campaign's GAQL read returned, else the platform's documented
id (30000 computers, 30001 mobile, 30002 tablets).

Hour blocks. An ad schedule is a set of AD_SCHEDULE criteria (`AdScheduleInfo`: weekday, start/end hour, minutes
ZERO; 0.1-10.0; at most 6 per day). Once a campaign has any, it serves only in scheduled hours. So:
  * no schedule yet: the whole schedule is CREATED in one atomic request (`partial_failure=False`): every weekday x
    every block of the row, the unchanged blocks at their value. A partial schedule would switch hours off, so it
    is all or nothing;
  * a schedule exactly of the plan's blocks (every weekday, whole hours): only the changed block's 7 weekday
    criteria are UPDATED (`bid_modifier` only), with the other updates of the push (`partial_failure=True`);
  * any other schedule (other hours, minutes, missing days): the change is not sent, with a message naming the
    campaign; a user's schedule is never rewritten.

Outcomes. One audit row per plan change: a device (one operation) or an hour block (its 7 weekday operations, in one
request). All operations done -> done; all refused -> refused; some applied and some refused -> unknown, naming the
weekdays: the next push reads the block back (its value when its 7 criteria agree, else none) and converges.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestration.resources.platforms.modifiers import GOOGLE_WEEKDAYS, CampaignCriteria, Operations, Slot
from rl.bidding.plan import HOURS, Change, PlanError, hour_block_key, parse_modifier_target

DEVICE_TYPES = {"mobile": "MOBILE", "desktop": "DESKTOP", "tablet": "TABLET"}
DEVICE_CRITERION_IDS = {"desktop": 30000, "mobile": 30001, "tablet": 30002}
WEEKDAYS = GOOGLE_WEEKDAYS
MIN_MODIFIER, MAX_MODIFIER = 0.1, 10.0
MAX_SCHEDULES_PER_DAY = 6
CRITERIA_QUERY = (
    "SELECT campaign.id, campaign_criterion.criterion_id, campaign_criterion.type, campaign_criterion.bid_modifier, "
    "campaign_criterion.device.type, campaign_criterion.ad_schedule.day_of_week, "
    "campaign_criterion.ad_schedule.start_hour, campaign_criterion.ad_schedule.start_minute, "
    "campaign_criterion.ad_schedule.end_hour, campaign_criterion.ad_schedule.end_minute "
    "FROM campaign_criterion WHERE campaign.id IN ({ids}) "
    "AND campaign_criterion.type IN ('DEVICE', 'AD_SCHEDULE') AND campaign_criterion.status != 'REMOVED'"
)


def parse_rows(rows: Iterable[Any], campaign_ids: Iterable[int]) -> dict[int, CampaignCriteria]:
    """GAQL rows of `CRITERIA_QUERY` -> each campaign's criteria (campaigns without rows: none found)."""
    out = {c: CampaignCriteria(c) for c in campaign_ids}
    keys = {v: k for k, v in DEVICE_TYPES.items()}
    for row in rows:
        criterion = row.campaign_criterion
        found = out.setdefault(row.campaign.id, CampaignCriteria(row.campaign.id))
        modifier = criterion.bid_modifier if "bid_modifier" in criterion else 1.0
        if criterion.type_.name == "DEVICE" and criterion.device.type_.name in keys:
            found.devices[keys[criterion.device.type_.name]] = (criterion.criterion_id, modifier)
        elif criterion.type_.name == "AD_SCHEDULE":
            schedule = criterion.ad_schedule
            found.schedule.append(
                Slot(
                    criterion.criterion_id,
                    schedule.day_of_week.name,
                    schedule.start_hour,
                    schedule.start_minute.name,
                    schedule.end_hour,
                    schedule.end_minute.name,
                    modifier,
                )
            )
    return out


def check_modifier(change: Change) -> None:
    """PlanError unless the change is a modifier of its own row's campaign, in Google's range."""
    campaign, key, block = parse_modifier_target(change.target)
    where = change.describe()
    if campaign != change.row.campaign_id:
        raise PlanError(f"{where}: target {change.target!r} is not campaign {change.row.campaign_id}'s")
    value = change.new_value
    if block is None:
        if value != 0 and not MIN_MODIFIER <= value <= MAX_MODIFIER:
            raise PlanError(f"{where}: a Google Ads device bid modifier is 0 (opt out) or 0.1-10.0, got {value}")
        return
    if (change.row.n_blocks or 0) > MAX_SCHEDULES_PER_DAY:
        raise PlanError(
            f"{where}: Google Ads allows at most {MAX_SCHEDULES_PER_DAY} ad schedules per day; a plan of "
            f"{change.row.n_blocks} hour blocks cannot be set"
        )
    if not MIN_MODIFIER <= value <= MAX_MODIFIER:
        raise PlanError(f"{where}: a Google Ads ad schedule bid modifier is 0.1-10.0, got {value}")


def operations(
    changes: list[Change], found: dict[int, CampaignCriteria], client: Any, service: Any, customer_id: str
) -> tuple[Operations, list[Operations]]:
    """(the updates of every campaign, one schedule creation per campaign without a schedule)."""
    # deferred: a prod SDK, loaded on first use
    from google.ads.googleads.v26.common.types.criteria import AdScheduleInfo

    # deferred: a prod SDK, loaded on first use
    from google.ads.googleads.v26.enums.types.day_of_week import DayOfWeekEnum

    # deferred: a prod SDK, loaded on first use
    from google.ads.googleads.v26.enums.types.minute_of_hour import MinuteOfHourEnum

    # deferred: a prod SDK, loaded on first use
    from google.ads.googleads.v26.resources.types.campaign_criterion import CampaignCriterion

    # deferred: a prod SDK, loaded on first use
    from google.ads.googleads.v26.services.types.campaign_criterion_service import CampaignCriterionOperation
    from google.protobuf.field_mask_pb2 import FieldMask  # deferred: a prod SDK, loaded on first use

    def update(campaign_id: int, criterion_id: int, value: float) -> Any:
        path = service.campaign_criterion_path(customer_id, str(campaign_id), str(criterion_id))
        operation = CampaignCriterionOperation(update=CampaignCriterion(resource_name=path, bid_modifier=value))
        client.copy_from(operation.update_mask, FieldMask(paths=["bid_modifier"]))  # named: 0 is sent as 0
        return operation

    updates, creations = Operations(), {}
    for change in changes:
        campaign_id, key, block = parse_modifier_target(change.target)
        criteria = found.get(campaign_id)
        if criteria is None:  # every modifier change is read before it is built (`_must_read`)
            raise RuntimeError(f"{change.describe()}: the campaign's criteria were not read before building")
        value = round(change.new_value, 2)
        if block is None:
            criterion_id = criteria.devices.get(key, (DEVICE_CRITERION_IDS[key], None))[0]
            updates.add(change, [(key, update(campaign_id, criterion_id, value))])
            continue
        n_blocks = change.row.n_blocks or 1
        if criteria.schedule:
            slots = criteria.block(block, n_blocks)
            updates.add(change, [(s.day, update(campaign_id, s.criterion_id, value)) for s in slots])
            continue
        if campaign_id not in creations:  # the whole schedule, in block order: each change then owns its block
            width = HOURS // n_blocks
            n_ops = n_blocks * len(WEEKDAYS)
            creation = creations[campaign_id] = Operations(
                note=f"campaign {campaign_id}'s new ad schedule, one atomic request: all {n_ops} criteria or none"
            )
            campaign = service.campaign_path(customer_id, str(campaign_id))
            zero = MinuteOfHourEnum.MinuteOfHour.ZERO
            for b, modifier in enumerate(change.row.hour_modifiers or ()):
                for day in WEEKDAYS:
                    schedule = AdScheduleInfo(
                        day_of_week=DayOfWeekEnum.DayOfWeek[day],
                        start_hour=b * width,
                        start_minute=zero,
                        end_hour=(b + 1) * width,
                        end_minute=zero,
                    )
                    criterion = CampaignCriterion(
                        campaign=campaign, ad_schedule=schedule, bid_modifier=round(modifier, 2)
                    )
                    creation.operations.append(CampaignCriterionOperation(create=criterion))
                    creation.labels.append(f"{day} {hour_block_key(b, n_blocks)}")
        creation = creations[campaign_id]
        creation.changes.append(change)
        creation.groups.append(list(range(block * len(WEEKDAYS), (block + 1) * len(WEEKDAYS))))
    return updates, list(creations.values())
