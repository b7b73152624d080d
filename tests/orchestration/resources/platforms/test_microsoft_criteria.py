"""Microsoft Advertising device and day-time bid adjustments through the real bingads SDK (suds, v13 WSDL), with
only the HTTP transport's `send` faked by a server that holds campaign 401's criteria and applies what it is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.orchestration.resources.platforms import test_microsoft
from tests.orchestration.resources.platforms.conftest import plan_row
from tests.orchestration.resources.platforms.test_microsoft import NS, envelope, tag

resource_factory = test_microsoft.resource_factory  # the same SDK client over the faked transport

X = 'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
BLOCKS = [(b * 4, b * 4 + 4) for b in range(6)]


@dataclass
class Server:
    """id -> ("device", name, percent) or ("daytime", (day, from, to, minute), percent)."""

    criteria: dict[int, tuple] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)  # device names or "Day from" refused on add / update
    calls: list[str] = field(default_factory=list)
    next_id: int = 100

    def add(self, kind, key, value=0):
        self.next_id += 1
        self.criteria[self.next_id] = (kind, key, value)
        return self.next_id

    def schedule(self, blocks=BLOCKS, days=DAYS, minute="Zero"):
        for day in days:
            for start, end in blocks:
                self.add("daytime", (day, start, end, minute))

    def value(self, kind, match):
        return [v for k, key, v in self.criteria.values() if k == kind and match(key)]

    def _xml(self, id_, kind, key, value):
        if kind == "device":
            inner = f'<Criterion i:type="DeviceCriterion"><Type>Device</Type><DeviceName>{key}</DeviceName></Criterion>'
        else:
            day, start, end, minute = key
            inner = (
                f'<Criterion i:type="DayTimeCriterion"><Type>DayTime</Type><Day>{day}</Day><FromHour>{start}</FromHour>'
                f"<FromMinute>{minute}</FromMinute><ToHour>{end}</ToHour><ToMinute>Zero</ToMinute></Criterion>"
            )
        return (
            f'<CampaignCriterion i:type="BiddableCampaignCriterion"><CampaignId>401</CampaignId>{inner}<Id>{id_}</Id>'
            '<Status>Active</Status><Type>BiddableCampaignCriterion</Type><CriterionBid i:type="BidMultiplier">'
            f"<Type>BidMultiplier</Type><Multiplier>{value}</Multiplier></CriterionBid></CampaignCriterion>"
        )

    def answer(self, method, xml):
        self.calls.append(method)
        if method == "GetCampaignCriterionsByIds":
            items = "".join(self._xml(i, *c) for i, c in self.criteria.items())
            body = f"<CampaignCriterions>{items}</CampaignCriterions><PartialErrors/>"
        elif method == "DeleteCampaignCriterions":
            for i in tag(xml, "long"):
                self.criteria.pop(int(i))
            body = "<PartialErrors/>"
        else:
            items = [m.group(0) for m in re.finditer(r"<(ns\d+):CampaignCriterion .*?</\1:CampaignCriterion>", xml)]
            errors, ids = [], []
            for index, item in enumerate(items):
                name = (tag(item, "DeviceName") or [None])[0]
                key = name or (tag(item, "Day")[0], int(tag(item, "FromHour")[0]), int(tag(item, "ToHour")[0]), "Zero")
                label = name or f"{key[0]} {key[1]}"
                if label in self.refuse:
                    errors.append(
                        f"<BatchErrorCollection><Code>1043</Code><ErrorCode>CampaignCriterionBidMultiplierValueNotSet"
                        f"</ErrorCode><Index>{index}</Index><Message>refused {label}</Message></BatchErrorCollection>"
                    )
                    ids.append('<a:long i:nil="true"/>')
                    continue
                value = int(tag(item, "Multiplier")[0])
                if method == "AddCampaignCriterions":
                    ids.append(f"<a:long>{self.add('device' if name else 'daytime', key, value)}</a:long>")
                else:
                    id_ = int(tag(item, "Id")[-1])
                    self.criteria[id_] = (*self.criteria[id_][:2], value)
            body = f"<NestedPartialErrors>{''.join(errors)}</NestedPartialErrors>"
            if method == "AddCampaignCriterions":
                body = f'<CampaignCriterionIds xmlns:a="http://schemas.datacontract.org/2004/07/System">{"".join(ids)}</CampaignCriterionIds>{body}'
        return 200, envelope(f'<{method}Response xmlns="{NS}" {X}>{body}</{method}Response>')


def row(devices=(1.2, 1.0, 0.0), hours=(1.0, 1.0, 1.3, 1.0, 1.0, 0.7)):
    return plan_row(
        "microsoft_ads",
        401,
        device_modifiers=devices,
        current_device_modifiers=(1.0, 1.0, 1.0) if devices else None,
        hour_modifiers=hours,
        current_hour_modifiers=(1.0,) * 6 if hours else None,
    )


def with_devices(server):
    return {name: server.add("device", name) for name in ("Computers", "Smartphones", "Tablets")}


def test_existing_criteria_are_updated_with_whole_percent_multipliers_and_a_second_push_sends_nothing(
    resource_factory, audit
):
    server = Server()
    ids = with_devices(server)
    server.schedule()
    resource, transport = resource_factory(live=True, answer=server.answer)
    results = resource.push([row()], live=True, audit=audit)

    get, update = transport.sent
    assert "GetCampaignCriterionsByIdsRequest>" in get and tag(get, "CampaignId") == ["401"]
    assert tag(get, "CriterionType") == ["Targets"]
    assert "UpdateCampaignCriterionsRequest>" in update and tag(update, "CriterionType") == ["Targets"]
    types = re.findall(r'xsi:type="ns\d+:(\w+)"', update)
    assert set(types) == {"BiddableCampaignCriterion", "BidMultiplier", "DeviceCriterion", "DayTimeCriterion"}
    assert tag(update, "DeviceName") == ["Smartphones", "Tablets"]
    assert tag(update, "Multiplier") == ["20", "-100"] + ["30"] * 7 + ["-30"] * 7
    assert tag(update, "Id")[:2] == [str(ids["Smartphones"]), str(ids["Tablets"])]
    assert tag(update, "Day")[:7] == list(DAYS) and set(tag(update, "FromMinute")) == {"Zero"}
    assert tag(update, "FromHour")[:7] == ["8"] * 7 and tag(update, "ToHour")[:7] == ["12"] * 7
    assert "OSName" not in update and not tag(update, "Status")  # only what is set is sent
    sent = {r.target: r.status for r in results if r.status != "skipped_unchanged"}
    assert sent == {"401:mobile": "applied", "401:tablet": "applied", "401:h08_12": "applied", "401:h20_24": "applied"}
    assert server.value("daytime", lambda k: k[1] == 8) == [30] * 7
    assert server.value("device", lambda k: k == "Tablets") == [-100]

    again = resource.push([row()], live=True, audit=audit)
    assert len(transport.sent) == 2 and {r.status for r in again} == {"skipped_unchanged"}


def test_a_campaign_without_criteria_gets_all_three_devices_and_the_whole_schedule(resource_factory, audit):
    server = Server()
    resource, transport = resource_factory(live=True, answer=server.answer)
    results = resource.push([row()], live=True, audit=audit)

    assert server.calls == ["GetCampaignCriterionsByIds", "AddCampaignCriterions", "AddCampaignCriterions"]
    devices, schedule = transport.sent[1:]
    assert tag(devices, "DeviceName") == ["Smartphones", "Computers", "Tablets"]
    assert tag(devices, "Multiplier") == ["20", "0", "-100"] and not tag(devices, "Id")
    assert len(tag(schedule, "Day")) == 42 and tag(schedule, "Day")[:8] == [*DAYS, "Monday"]
    assert set(tag(schedule, "FromMinute")) == set(tag(schedule, "ToMinute")) == {"Zero"}
    assert tag(schedule, "Multiplier")[::7] == ["0", "0", "30", "0", "0", "-30"]  # unchanged blocks at their value
    assert {r.status for r in results if r.status != "skipped_unchanged"} == {"applied"}
    assert len(server.criteria) == 45


def test_a_partly_refused_schedule_add_is_removed_again(resource_factory, audit):
    server = Server(refuse={"Sunday 20"})
    with_devices(server)
    resource, transport = resource_factory(live=True, answer=server.answer)
    results = {r.target: r for r in resource.push([row(devices=None)], live=True, audit=audit)}

    assert server.calls == ["GetCampaignCriterionsByIds", "AddCampaignCriterions", "DeleteCampaignCriterions"]
    assert len(tag(transport.sent[2], "long")) == 41 and server.value("daytime", lambda k: True) == []
    assert results["401:h20_24"].status == "refused" and "refused Sunday 20" in results["401:h20_24"].response
    assert results["401:h08_12"].status == "refused" and "removed again" in results["401:h08_12"].response


def test_a_schedule_of_other_hours_is_never_rewritten(resource_factory, audit):
    server = Server()
    with_devices(server)
    server.schedule(blocks=[(9, 17)], days=DAYS[:5])
    resource, transport = resource_factory(live=True, answer=server.answer)
    results = resource.push([row()], live=True, audit=audit)
    blocked = [r for r in results if r.status == "not_sent"]
    assert [r.target for r in blocked] == ["401:h08_12", "401:h20_24"]
    assert "campaign 401 has its own ad schedule (5 criteria)" in blocked[0].response
    assert "align it in Microsoft Advertising" in blocked[0].response
    assert tag(transport.sent[1], "DeviceName") == ["Smartphones", "Tablets"] and "Day>" not in transport.sent[1]


def test_validate_only_reads_the_criteria_and_changes_nothing(resource_factory, audit):
    server = Server()
    with_devices(server)
    resource, transport = resource_factory(answer=server.answer)
    results = resource.push([row()], live=False, audit=audit)
    assert set(server.calls) == {"GetCampaignCriterionsByIds"} and len(server.criteria) == 3
    checked = [r for r in results if r.status != "skipped_unchanged"]
    assert {r.status for r in checked} == {"checked_exists"}
    assert "a live push calls AddCampaignCriterions" in checked[-1].response
