"""Microsoft Advertising pushes through the real bingads SDK (suds, v13 WSDL shipped with the SDK), with only
the suds HTTP transport's `send` faked: it sees the SOAP envelope as it would go on the wire."""

from __future__ import annotations

import logging
import re

import pytest
from bingads.authorization import AuthorizationData, OAuthDesktopMobileAuthCodeGrant, OAuthTokens
from suds.transport import Reply, TransportError
from suds.transport.http import HttpTransport

from orchestration.resources.platforms.base import LivePushRefused
from orchestration.resources.platforms.microsoft import MicrosoftAdsBidPlatform
from tests.orchestration.resources.platforms.conftest import audit_text, plan_row

DEV, ACCESS, REFRESH = "ms-dev-token-DO-NOT-LOG", "ms-access-token-DO-NOT-LOG", "ms-refresh-token-DO-NOT-LOG"
NS = "https://bingads.microsoft.com/CampaignManagement/v13"


def envelope(body: str, tracking: str = "trk-1") -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<s:Header><h:TrackingId xmlns:h="{NS}">{tracking}</h:TrackingId></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def batch_error(index: int, code: int, error_code: str, message: str) -> str:
    return (
        f"<BatchError><Code>{code}</Code><ErrorCode>{error_code}</ErrorCode><Index>{index}</Index>"
        f"<Message>{message}</Message><Type>BatchError</Type></BatchError>"
    )


def response(method: str, errors: str = "") -> bytes:
    return envelope(
        f'<{method}Response xmlns="{NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        f"<PartialErrors>{errors}</PartialErrors></{method}Response>"
    )


def fault(code: int, error_code: str, message: str) -> bytes:
    return envelope(
        "<s:Fault><faultcode>s:Server</faultcode><faultstring>Invalid client data.</faultstring><detail>"
        f'<ApiFaultDetail xmlns="{NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        '<TrackingId xmlns="https://adapi.microsoft.com">trk-fault</TrackingId><BatchErrors/>'
        f"<OperationErrors><OperationError><Code>{code}</Code><ErrorCode>{error_code}</ErrorCode>"
        f"<Message>{message}</Message></OperationError></OperationErrors></ApiFaultDetail></detail></s:Fault>"
    )


class FakeSoap(HttpTransport):
    def __init__(self, answer):
        super().__init__()
        self.answer, self.sent = answer, []

    def send(self, request):
        xml = request.message.decode()
        self.sent.append(xml)
        method = request.headers["SOAPAction"].decode().strip('"')
        status, body = self.answer(method, xml)
        if status != 200:
            import io

            raise TransportError("Internal Server Error", status, io.BytesIO(body))
        return Reply(200, {}, body)


def ok(method, xml):
    return 200, response(method)


@pytest.fixture(scope="module")
def resource_factory():
    def make(live=False, answer=ok):
        tokens = OAuthTokens(access_token=ACCESS, access_token_expires_in_seconds=3600, refresh_token=REFRESH)
        auth = OAuthDesktopMobileAuthCodeGrant(client_id="ms-client", oauth_tokens=tokens)
        data = AuthorizationData(account_id=111, customer_id=222, developer_token=DEV, authentication=auth)
        transport = FakeSoap(answer)
        resource = MicrosoftAdsBidPlatform(
            developer_token=DEV,
            client_id="ms-client",
            refresh_token=REFRESH,
            customer_id="222",
            account_id="111",
            live_pushing_enabled=live,
            retry_base_seconds=0.0,
        ).with_authorization(data, transport=transport)
        return resource, transport

    return make


def rows():
    return [
        plan_row("microsoft_ads", 401, daily_budget=30.0, bid=2.345, budget_target="401", bid_targets=("4401", "4402")),
        plan_row("microsoft_ads", 402, daily_budget=15.5, budget_target="402"),
    ]


def tag(xml: str, name: str) -> list[str]:
    return re.findall(rf"<(?:\w+:)?{name}>([^<]*)</(?:\w+:)?{name}>", xml)


def test_live_push_sends_only_the_changed_fields_and_maps_partial_errors(resource_factory, audit, caplog):
    def answer(method, xml):
        if method == "UpdateCampaigns":
            return 200, response(method, batch_error(1, 1100, "CampaignServiceInvalidBudget", "Budget too low"))
        return ok(method, xml)

    resource, transport = resource_factory(live=True, answer=answer)
    with caplog.at_level(logging.DEBUG):
        results = resource.push(rows(), live=True, audit=audit)
    campaigns, ad_groups = transport.sent
    assert "UpdateCampaignsRequest>" in campaigns and tag(campaigns, "DailyBudget") == ["30.0", "15.5"]
    assert tag(campaigns, "Id") == ["401", "402"] and "BiddingScheme" not in campaigns  # nothing else sent
    assert tag(campaigns, "DeveloperToken") == [DEV] and tag(campaigns, "AuthenticationToken") == [ACCESS]
    assert tag(ad_groups, "CampaignId") == ["401"] and tag(ad_groups, "Amount") == ["2.35", "2.35"]
    assert tag(ad_groups, "Id") == ["4401", "4402"]
    by_target = {(r.field, r.target): r for r in results}
    assert by_target[("budget", "401")].status == "applied"
    failed = by_target[("budget", "402")]
    assert failed.status == "refused" and failed.operation_index == 1 and failed.request_id == "trk-1"
    assert "CampaignServiceInvalidBudget (1100): Budget too low" in failed.response
    assert by_target[("bid", "4401")].status == by_target[("bid", "4402")].status == "applied"
    everything = audit_text(audit) + caplog.text + repr(resource) + repr(results)
    for secret in (DEV, ACCESS, REFRESH):
        assert secret not in everything


def test_live_needs_the_switch(resource_factory, audit):
    resource, transport = resource_factory(live=False)
    with pytest.raises(LivePushRefused):
        resource.push(rows(), live=True, audit=audit)
    assert transport.sent == []


def test_rate_limit_faults_are_retried_and_other_faults_fail_the_call(resource_factory, audit):
    answers = [
        (500, fault(117, "CallRateExceeded", "Too many calls")),
        (500, fault(1100, "CampaignServiceInvalidAccount", "No such account")),
    ]
    resource, transport = resource_factory(
        live=True, answer=lambda method, xml: answers.pop(0) if answers else ok(method, xml)
    )
    results = resource.push(rows()[1:], live=True, audit=audit)
    assert len(transport.sent) == 2
    (result,) = results
    assert result.status == "refused" and result.request_id == "trk-fault"
    assert "CampaignServiceInvalidAccount (1100): No such account" in result.response


def test_validate_only_reads_campaigns_and_ad_groups(resource_factory, audit):
    def answer(method, xml):
        if method == "GetCampaignsByIds":
            body = (
                f'<GetCampaignsByIdsResponse xmlns="{NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
                '<Campaigns><Campaign><BudgetId i:nil="true"/><Id>401</Id></Campaign>'
                "<Campaign><BudgetId>999</BudgetId><Id>402</Id></Campaign></Campaigns>"
                "<PartialErrors/></GetCampaignsByIdsResponse>"
            )
            return 200, envelope(body, "trk-get")
        body = (
            f'<GetAdGroupsByIdsResponse xmlns="{NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
            '<AdGroups><AdGroup><Id>4401</Id></AdGroup><AdGroup i:nil="true"/></AdGroups><PartialErrors>'
            + batch_error(1, 1201, "CampaignServiceInvalidAdGroupId", "Ad group not found")
            + "</PartialErrors></GetAdGroupsByIdsResponse>"
        )
        return 200, envelope(body, "trk-get2")

    resource, transport = resource_factory(answer=answer)
    results = resource.push(rows(), live=False, audit=audit)
    assert "GetCampaignsByIdsRequest" in transport.sent[0] and "GetAdGroupsByIdsRequest" in transport.sent[1]
    assert "UpdateCampaigns" not in "".join(transport.sent)
    assert [(r.field, r.target, r.status) for r in results] == [
        ("budget", "401", "checked_exists"),
        ("bid", "4401", "checked_exists"),
        ("bid", "4402", "refused"),
        ("budget", "402", "refused"),
    ]
    assert "shared budget 999" in results[3].response and "Ad group not found" in results[2].response
