"""Google Ads device and hour-block bid modifiers through the real SDK (API v26): the exact
`MutateCampaignCriteriaRequest` and GAQL reads at the gRPC channel, under a fake server that holds campaign criteria
and applies what it is sent."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from google.ads.googleads.v26.common.types.criteria import AdScheduleInfo, DeviceInfo
from google.ads.googleads.v26.enums.types.criterion_type import CriterionTypeEnum
from google.ads.googleads.v26.enums.types.day_of_week import DayOfWeekEnum
from google.ads.googleads.v26.enums.types.device import DeviceEnum
from google.ads.googleads.v26.enums.types.minute_of_hour import MinuteOfHourEnum
from google.ads.googleads.v26.errors.types.errors import ErrorCode, ErrorLocation, GoogleAdsError, GoogleAdsFailure
from google.ads.googleads.v26.errors.types.range_error import RangeErrorEnum
from google.ads.googleads.v26.resources.types.campaign import Campaign
from google.ads.googleads.v26.resources.types.campaign_criterion import CampaignCriterion
from google.ads.googleads.v26.services.services.campaign_criterion_service.transports.grpc import (
    CampaignCriterionServiceGrpcTransport,
)
from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
    GoogleAdsServiceGrpcTransport,
)
from google.ads.googleads.v26.services.types.campaign_criterion_service import (
    MutateCampaignCriteriaResponse,
    MutateCampaignCriterionResult,
)
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsResponse
from google.protobuf import any_pb2
from google.rpc import status_pb2

from orchestration.resources.platforms.google_ads import GoogleAdsBidPlatform
from rl.bidding.plan import PlanError
from tests.orchestration.resources.fake_google_ads import DEV_TOKEN, sdk_client
from tests.orchestration.resources.platforms.conftest import plan_row
from tests.orchestration.resources.platforms.fake_google_ads_mutate import (
    MUTATE_CRITERIA,
    SEARCH,
    FakeMutateChannel,
    ads_error,
)

CID = "1234567890"
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
DEVICE_IDS = {"DESKTOP": 30000, "MOBILE": 30001, "TABLET": 30002}
ZERO = MinuteOfHourEnum.MinuteOfHour.ZERO


@dataclass
class CriteriaServer:
    """Campaign 101's criteria: (campaign id, criterion id) -> CampaignCriterion. Applies live mutates; `refuse`
    names criteria (resource name suffix "~id", or an ad schedule "DAY start") whose operations it refuses."""

    criteria: dict[tuple[int, int], CampaignCriterion] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    lose_answer: bool = False
    next_id: int = 900

    def add_devices(self, campaign: int = 101) -> None:
        for name, criterion_id in DEVICE_IDS.items():
            self.criteria[(campaign, criterion_id)] = CampaignCriterion(
                criterion_id=criterion_id,
                type_=CriterionTypeEnum.CriterionType.DEVICE,
                device=DeviceInfo(type_=DeviceEnum.Device[name]),
            )

    def add_schedule(self, blocks: list[tuple[int, int]], days=DAYS, campaign: int = 101, value: float = 1.0) -> None:
        for day in days:
            for start, end in blocks:
                self.next_id += 1
                self.criteria[(campaign, self.next_id)] = CampaignCriterion(
                    criterion_id=self.next_id,
                    type_=CriterionTypeEnum.CriterionType.AD_SCHEDULE,
                    ad_schedule=AdScheduleInfo(
                        day_of_week=DayOfWeekEnum.DayOfWeek[day],
                        start_hour=start,
                        end_hour=end,
                        start_minute=ZERO,
                        end_minute=ZERO,
                    ),
                    bid_modifier=value,
                )

    def block(self, start: int, campaign: int = 101) -> list[float]:
        slots = [c for (k, _), c in self.criteria.items() if k == campaign and c.ad_schedule.start_hour == start]
        slots = [c for c in slots if c.type_.name == "AD_SCHEDULE"]
        return [round(c.bid_modifier, 4) for c in sorted(slots, key=lambda c: c.ad_schedule.day_of_week)]

    def device(self, name: str, campaign: int = 101) -> float | None:
        found = self.criteria[(campaign, DEVICE_IDS[name])]
        return found.bid_modifier if "bid_modifier" in found else None

    def answer(self, method, request):
        if method == SEARCH:
            assert "FROM campaign_criterion WHERE campaign.id IN (101)" in request.query
            rows = [GoogleAdsRow(campaign=Campaign(id=k), campaign_criterion=c) for (k, _), c in self.criteria.items()]
            return SearchGoogleAdsResponse(results=rows)
        assert method == MUTATE_CRITERIA
        errors, results, apply = [], [], []
        for i, op in enumerate(request.operations):
            if op.update.resource_name:
                campaign, criterion_id = map(int, op.update.resource_name.rsplit("/", 1)[1].split("~"))
                name = f"~{criterion_id}"
            else:
                campaign, criterion_id = int(op.create.campaign.rsplit("/", 1)[1]), None
                schedule = op.create.ad_schedule
                name = f"{schedule.day_of_week.name} {schedule.start_hour}"
            if name in self.refuse or (criterion_id is not None and (campaign, criterion_id) not in self.criteria):
                errors.append(failure(i, f"refused {name}"))
                results.append(MutateCampaignCriterionResult())
                continue
            results.append(MutateCampaignCriterionResult(resource_name=op.update.resource_name or f"new/{name}"))
            apply.append((campaign, criterion_id, op))
        if errors and not request.partial_failure:
            return ads_error(grpc.StatusCode.INVALID_ARGUMENT, GoogleAdsFailure(errors=errors), "REQ-ATOMIC")
        if not request.validate_only:
            for campaign, criterion_id, op in apply:
                if criterion_id is None:
                    self.next_id += 1
                    created = CampaignCriterion(op.create, criterion_id=self.next_id)
                    created.type_ = CriterionTypeEnum.CriterionType.AD_SCHEDULE
                    self.criteria[(campaign, self.next_id)] = created
                else:
                    self.criteria[(campaign, criterion_id)].bid_modifier = op.update.bid_modifier
        if self.lose_answer:
            return ads_error(grpc.StatusCode.DEADLINE_EXCEEDED, None, "REQ-LOST")
        status = status_pb2.Status()
        if errors:
            detail = any_pb2.Any(
                type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                value=GoogleAdsFailure.serialize(GoogleAdsFailure(errors=errors)),
            )
            status = status_pb2.Status(code=3, message="partial failure", details=[detail])
        return MutateCampaignCriteriaResponse(
            results=[] if request.validate_only else results, partial_failure_error=status
        )


def failure(index: int, message: str) -> GoogleAdsError:
    element = ErrorLocation.FieldPathElement
    return GoogleAdsError(
        error_code=ErrorCode(range_error=RangeErrorEnum.RangeError.TOO_HIGH),
        message=message,
        location=ErrorLocation(
            field_path_elements=[element(field_name="operations", index=index), element(field_name="update")]
        ),
    )


def make(monkeypatch, server: CriteriaServer, live: bool = True):
    channel = FakeMutateChannel(answer=server.answer)
    for transport in (CampaignCriterionServiceGrpcTransport, GoogleAdsServiceGrpcTransport):
        monkeypatch.setattr(transport, "create_channel", classmethod(lambda cls, *a, **k: channel))
    resource = GoogleAdsBidPlatform(
        developer_token=DEV_TOKEN,
        client_id="client-id.apps.googleusercontent.com",
        client_secret="secret",
        refresh_token="refresh",
        customer_id="123-456-7890",
        live_pushing_enabled=live,
        retry_base_seconds=0.0,
    ).with_client(sdk_client())
    return resource, channel


HOURS6 = [(b * 4, b * 4 + 4) for b in range(6)]
NOW6 = (1.0,) * 6


def row(devices=(1.2, 1.0, 0.0), hours=(1.0, 1.0, 1.3, 1.0, 1.0, 0.7), **kwargs):
    return plan_row(
        "google_ads",
        101,
        device_modifiers=devices,
        current_device_modifiers=(1.0, 1.0, 1.0) if devices else None,
        hour_modifiers=hours,
        current_hour_modifiers=NOW6 if hours else None,
        **kwargs,
    )


def test_validate_only_updates_device_and_block_criteria_with_bid_modifier_masks(monkeypatch, audit):
    server = CriteriaServer()
    server.add_devices()
    server.add_schedule(HOURS6)
    resource, channel = make(monkeypatch, server, live=False)
    results = resource.push([row()], live=False, audit=audit)

    search, mutate = channel.sent
    assert search.method == SEARCH and "campaign_criterion.type IN ('DEVICE', 'AD_SCHEDULE')" in search.request.query
    request = mutate.request
    assert mutate.method == MUTATE_CRITERIA and request.customer_id == CID
    assert request.validate_only is True and request.partial_failure is True
    names = [op.update.resource_name for op in request.operations]
    assert names[:2] == [f"customers/{CID}/campaignCriteria/101~30001", f"customers/{CID}/campaignCriteria/101~30002"]
    assert [round(op.update.bid_modifier, 4) for op in request.operations[:2]] == [1.2, 0.0]  # a float on the wire
    assert "bid_modifier" in request.operations[1].update  # 0 (device opted out) is sent, not dropped
    block_8 = [c.criterion_id for c in server.criteria.values() if c.ad_schedule.start_hour == 8]
    assert names[2:9] == [f"customers/{CID}/campaignCriteria/101~{i}" for i in sorted(block_8)]
    assert [round(op.update.bid_modifier, 4) for op in request.operations[2:9]] == [1.3] * 7
    assert [round(op.update.bid_modifier, 4) for op in request.operations[9:]] == [0.7] * 7
    assert len(request.operations) == 16 and all(
        list(op.update_mask.paths) == ["bid_modifier"] for op in request.operations
    )
    assert not any(op.create.ad_schedule.day_of_week for op in request.operations)

    sent = [(r.target, r.status) for r in results if r.status != "skipped_unchanged"]
    assert sent == [
        ("101:mobile", "validated_by_platform"),
        ("101:tablet", "validated_by_platform"),
        ("101:h08_12", "validated_by_platform"),
        ("101:h20_24", "validated_by_platform"),
    ]
    assert {r.target for r in results if r.status == "skipped_unchanged"} == {
        "101:desktop",
        *(f"101:h{a:02d}_{b:02d}" for a, b in HOURS6 if a not in (8, 20)),
    }
    stored = {r["target"]: r for r in audit.rows()}
    assert '"operation_indexes": [2, 3, 4, 5, 6, 7, 8]' in stored["101:h08_12"]["request_json"]
    assert server.device("MOBILE") is None  # validating changed nothing


def test_a_campaign_without_a_schedule_gets_the_whole_schedule_in_one_atomic_request(monkeypatch, audit):
    server = CriteriaServer()
    server.add_devices()
    resource, channel = make(monkeypatch, server)
    results = resource.push([row(devices=None)], live=True, audit=audit)

    (mutate,) = [s for s in channel.sent if s.method == MUTATE_CRITERIA]
    request = mutate.request
    assert request.partial_failure is False and request.validate_only is False and len(request.operations) == 42
    created = [op.create for op in request.operations]
    assert all(c.campaign == f"customers/{CID}/campaigns/101" for c in created)
    assert [
        (c.ad_schedule.day_of_week.name, c.ad_schedule.start_hour, c.ad_schedule.end_hour) for c in created[:8]
    ] == [
        *((d, 0, 4) for d in DAYS),
        ("MONDAY", 4, 8),
    ]
    assert {(c.ad_schedule.start_minute, c.ad_schedule.end_minute) for c in created} == {(ZERO, ZERO)}
    assert [round(c.bid_modifier, 4) for c in created[::7]] == [
        1.0,
        1.0,
        1.3,
        1.0,
        1.0,
        0.7,
    ]  # unchanged blocks at their value
    assert [(r.target, r.status) for r in results if r.status == "applied"] == [
        ("101:h08_12", "applied"),
        ("101:h20_24", "applied"),
    ]
    assert server.block(8) == [1.3] * 7 and server.block(0) == [1.0] * 7 and server.block(20) == [0.7] * 7

    again = resource.push([row(devices=None)], live=True, audit=audit)
    assert len(channel.sent) == 2 and {r.status for r in again} == {"skipped_unchanged"}  # no call the second time


def test_an_atomic_schedule_creation_refused_for_one_criterion_creates_nothing(monkeypatch, audit):
    server = CriteriaServer(refuse={"SUNDAY 20"})
    resource, channel = make(monkeypatch, server)
    results = resource.push([row(devices=None)], live=True, audit=audit)
    refused = {r.target: r for r in results if r.status == "refused"}
    assert set(refused) == {"101:h08_12", "101:h20_24"} and server.criteria == {}
    response = refused["101:h20_24"].response
    assert "one atomic request: all 42 criteria or none" in response and "refused SUNDAY 20" in response
    assert refused["101:h20_24"].request_id == "REQ-ATOMIC" and len(channel.sent) == 2


def test_a_schedule_that_is_not_the_plans_blocks_is_never_rewritten(monkeypatch, audit):
    server = CriteriaServer()
    server.add_devices()
    server.add_schedule([(9, 17)], days=DAYS[:5])  # business hours on weekdays: the user's own schedule
    resource, channel = make(monkeypatch, server)
    results = resource.push([row()], live=True, audit=audit)

    (mutate,) = [s for s in channel.sent if s.method == MUTATE_CRITERIA]
    assert [op.update.resource_name.rsplit("~")[1] for op in mutate.request.operations] == ["30001", "30002"]
    blocked = [r for r in results if r.field == "hour_modifier" and r.status == "not_sent"]
    assert [r.target for r in blocked] == ["101:h08_12", "101:h20_24"]
    assert "campaign 101 has its own ad schedule (5 criteria)" in blocked[0].response
    assert "it has MONDAY 09:00-17:00" in blocked[0].response and "it lacks MONDAY 00:00-04:00" in blocked[0].response
    assert server.block(9) == [1.0] * 5


def test_a_block_refused_for_one_weekday_is_unknown_and_the_next_push_converges(monkeypatch, audit):
    server = CriteriaServer()
    server.add_devices()
    server.add_schedule(HOURS6)
    sunday_8 = max(c.criterion_id for c in server.criteria.values() if c.ad_schedule.start_hour == 8)
    server.refuse = {f"~{sunday_8}", "~30002"}
    resource, channel = make(monkeypatch, server)
    results = {r.target: r for r in resource.push([row()], live=True, audit=audit)}

    assert results["101:mobile"].status == "applied" and results["101:h20_24"].status == "applied"
    assert results["101:tablet"].status == "refused" and "refused ~30002" in results["101:tablet"].response
    block = results["101:h08_12"]
    assert block.status == "unknown" and block.operation_index == 2 and block.request_id
    assert "applied for MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY but refused for SUNDAY" in block.response
    assert server.block(8) == [1.3] * 6 + [1.0]

    server.refuse = set()
    again = {r.target: r for r in resource.push([row()], live=True, audit=audit)}
    assert (
        again["101:h08_12"].status == "applied"
        and "the platform held no value; sent again" in again["101:h08_12"].response
    )
    assert again["101:tablet"].status == "applied" and again["101:mobile"].status == "skipped_unchanged"
    assert server.block(8) == [1.3] * 7 and server.device("TABLET") == 0.0
    last = channel.sent[-1].request
    assert len(last.operations) == 8  # the tablet and the block's 7 weekdays; nothing already applied


def test_a_lost_answer_is_read_back_and_not_sent_again(monkeypatch, audit):
    server = CriteriaServer(lose_answer=True)
    server.add_devices()
    server.add_schedule(HOURS6)
    resource, channel = make(monkeypatch, server)
    first = resource.push([row()], live=True, audit=audit)
    assert {r.status for r in first if r.status != "skipped_unchanged"} == {"unknown"}
    assert "DEADLINE_EXCEEDED" in next(r for r in first if r.target == "101:mobile").response

    server.lose_answer = False
    calls = len(channel.sent)
    again = resource.push([row()], live=True, audit=audit)
    assert [s.method for s in channel.sent[calls:]] == [SEARCH]  # read back; the server had applied everything
    changed = [r for r in again if r.target in ("101:mobile", "101:tablet", "101:h08_12", "101:h20_24")]
    assert {r.status for r in changed} == {"skipped_unchanged"}
    assert all("read back from the platform" in r.response for r in changed)


def test_modifiers_out_of_googles_range_are_refused_before_any_call(monkeypatch, audit):
    resource, channel = make(monkeypatch, CriteriaServer())
    with pytest.raises(PlanError, match="device bid modifier is 0 .opt out. or 0.1-10.0, got 0.05"):
        resource.push([row(devices=(0.05, 1.0, 1.0))], live=True, audit=audit)
    with pytest.raises(PlanError, match="at most 6 ad schedules per day; a plan of 8 hour blocks"):
        hours = (1.0,) * 8
        resource.push(
            [plan_row("google_ads", 101, hour_modifiers=hours, current_hour_modifiers=hours)], live=True, audit=audit
        )
    assert channel.sent == [] and audit.rows() == []
