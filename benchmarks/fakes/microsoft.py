"""A fake Microsoft Advertising Campaign Management API (v13) behind a suds HTTP transport: `UpdateCampaigns`,
`UpdateAdGroups`, `GetCampaignsByIds`, `GetAdGroupsByIds` over the campaigns and ad groups it holds, reading the
SOAP envelope as it would go on the wire and answering SOAP replies, SOAP faults or HTTP errors."""

from __future__ import annotations

import io
import re
import urllib.error

from suds.transport import Reply, TransportError
from suds.transport.http import HttpTransport

from benchmarks.fakes.server import KILLED, FakeServer, Fault

NS = "https://bingads.microsoft.com/CampaignManagement/v13"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MIN_BUDGET = 1.0


def envelope(body: str, tracking: str) -> bytes:
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


def soap_fault(code: int, error_code: str, message: str, tracking: str) -> bytes:
    return envelope(
        "<s:Fault><faultcode>s:Server</faultcode><faultstring>Invalid client data.</faultstring><detail>"
        f'<ApiFaultDetail xmlns="{NS}" xmlns:i="{XSI}">'
        f'<TrackingId xmlns="https://adapi.microsoft.com">{tracking}</TrackingId><BatchErrors/>'
        f"<OperationErrors><OperationError><Code>{code}</Code><ErrorCode>{error_code}</ErrorCode>"
        f"<Message>{message}</Message></OperationError></OperationErrors></ApiFaultDetail></detail></s:Fault>",
        tracking,
    )


def _tags(xml: str, name: str) -> list[str]:
    return re.findall(rf"<(?:\w+:)?{name}(?:\s[^>]*)?>([^<]*)</(?:\w+:)?{name}>", xml)


class FakeMicrosoftServer(HttpTransport):
    """The fake API for one account. `server.values` holds ("budget", campaign id) and ("bid", ad group id);
    `parents` ad group -> its campaign; `server.owners` campaign -> another account id."""

    def __init__(self, server: FakeServer, parents: dict[str, str], account_id: str = "111"):
        super().__init__()
        self.server, self.parents, self.account_id = server, parents, account_id
        self.timeouts: list = []
        self.sent: list[str] = []

    def send(self, request):
        xml = request.message.decode()
        self.timeouts.append(request.timeout or self.options.timeout)  # suds: the call's, else the client's
        self.sent.append(xml)
        method = (
            request.headers["SOAPAction"].decode().strip('"')
            if isinstance(request.headers["SOAPAction"], bytes)
            else request.headers["SOAPAction"].strip('"')
        )
        account = (_tags(xml, "CustomerAccountId") or [""])[0]
        if method.startswith("Get"):
            return self._get(method, xml, account)
        return self._update(method, xml, account)

    def _owned_campaign(self, campaign_id: str, account: str) -> bool:
        return ("budget", campaign_id) in self.server.values and account == self.server.owners.get(
            campaign_id, self.account_id
        )

    def _update(self, method: str, xml: str, account: str):
        server = self.server
        tracking = f"trk-{len(server.log) + 1}"
        if method == "UpdateCampaigns":
            items = re.findall(r"<(?:\w+:)?Campaign>(.*?)</(?:\w+:)?Campaign>", xml, re.S)
            writes = [("budget", _tags(i, "Id")[0], float(_tags(i, "DailyBudget")[0])) for i in items]
        else:
            campaign = _tags(xml, "CampaignId")[0]
            items = re.findall(r"<(?:\w+:)?AdGroup>(.*?)</(?:\w+:)?AdGroup>", xml, re.S)
            writes = [("bid", _tags(i, "Id")[0], float(_tags(i, "Amount")[0])) for i in items]
        fault = server.next_fault("update")
        if fault is not None and not fault.applies:
            server.record("update", writes, [], fault)
            return self._fault(fault, tracking)
        errors = []
        for index, (field_, target, value) in enumerate(writes):
            if field_ == "budget" and not self._owned_campaign(target, account):
                errors.append(batch_error(index, 1100, "CampaignServiceInvalidCampaignId", f"No campaign {target}"))
            elif field_ == "budget" and value < MIN_BUDGET:
                errors.append(batch_error(index, 1101, "CampaignServiceInvalidBudget", "Budget too low"))
            elif field_ == "bid" and (
                self.parents.get(target) != campaign or not self._owned_campaign(campaign, account)
            ):
                errors.append(batch_error(index, 1201, "CampaignServiceInvalidAdGroupId", f"No ad group {target}"))
        if fault is not None and fault.kind == "partial_failure" and not errors:
            errors.append(batch_error(0, 1101, "CampaignServiceInvalidBudget", "Invalid value (injected)"))
        refused = {int(i) for e in errors for i in _tags(e, "Index")}
        applied = [w for i, w in enumerate(writes) if i not in refused]
        server.apply(applied)
        server.record("update", writes, applied, fault, [w for i, w in enumerate(writes) if i in refused])
        if fault is not None and fault.kind != "partial_failure":
            return self._fault(fault, tracking)
        body = (
            f'<{method}Response xmlns="{NS}" xmlns:i="{XSI}"><PartialErrors>{"".join(errors)}</PartialErrors>'
            f"</{method}Response>"
        )
        return Reply(200, {}, envelope(body, tracking))

    def _get(self, method: str, xml: str, account: str):
        server = self.server
        tracking = f"trk-{len(server.log) + 1}"
        fault = server.next_fault("read")
        server.record("read", [], [], fault)
        if fault is not None:
            return self._fault(fault, tracking)
        ids = _tags(xml, "long")
        items, errors = [], []
        for index, object_id in enumerate(ids):
            if method == "GetCampaignsByIds" and self._owned_campaign(object_id, account):
                budget = server.values[("budget", object_id)]
                budget_xml = f'<BudgetId i:nil="true"/><DailyBudget>{budget}</DailyBudget>'
                items.append(f"<Campaign>{budget_xml}<Id>{object_id}</Id></Campaign>")
            elif (
                method == "GetAdGroupsByIds"
                and self.parents.get(object_id) == _tags(xml, "CampaignId")[0]
                and (("bid", object_id) in server.values)
            ):
                amount = server.values[("bid", object_id)]
                items.append(f"<AdGroup><CpcBid><Amount>{amount}</Amount></CpcBid><Id>{object_id}</Id></AdGroup>")
            else:
                name = "Campaign" if method == "GetCampaignsByIds" else "AdGroup"
                items.append(f'<{name} i:nil="true"/>')
                errors.append(
                    batch_error(index, 1100, f"CampaignServiceInvalid{name}Id", f"{name} {object_id} not found")
                )
        plural = "Campaigns" if method == "GetCampaignsByIds" else "AdGroups"
        body = (
            f'<{method}Response xmlns="{NS}" xmlns:i="{XSI}"><{plural}>{"".join(items)}</{plural}>'
            f"<PartialErrors>{''.join(errors)}</PartialErrors></{method}Response>"
        )
        return Reply(200, {}, envelope(body, tracking))

    @staticmethod
    def _fault(fault: Fault, tracking: str):
        kind = fault.kind
        if kind == KILLED:
            raise KeyboardInterrupt("the push process was stopped during the call")
        if kind == "429":
            raise TransportError(
                "Internal Server Error",
                500,
                io.BytesIO(soap_fault(117, "CallRateExceeded", "Too many calls", tracking)),
            )
        if kind == "500":
            raise TransportError(
                "Internal Server Error",
                500,
                io.BytesIO(soap_fault(0, "InternalError", "An internal error has occurred", tracking)),
            )
        if kind in ("502_html", "504_html"):
            status = int(kind[:3])
            html = f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode()
            raise TransportError("Bad Gateway", status, io.BytesIO(html))
        if kind == "503":
            raise TransportError(
                "Service Unavailable", 503, io.BytesIO(b"<html><body>Service Unavailable</body></html>")
            )
        if kind == "read_timeout":
            raise TimeoutError("timed out")
        if kind == "reset_after_send":
            raise urllib.error.URLError(ConnectionResetError(104, "Connection reset by peer"))
        if kind == "malformed_json":
            return Reply(200, {}, b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Upda')
        if kind == "auth":
            raise TransportError(
                "Internal Server Error",
                500,
                io.BytesIO(soap_fault(109, "AuthenticationTokenExpired", "The token has expired", tracking)),
            )
        raise AssertionError("partial failures are answered, not raised")
