"""A fake TikTok Marketing API (v1.3) behind urllib3's `urlopen` (what the official SDK's REST client calls):
`/adgroup/update/` and `/adgroup/get/` over the ad groups it holds, answering as TikTok does (HTTP 200 with a
non-zero `code` for refusals) and as its gateways do when something breaks."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import urllib3

from benchmarks.fakes.server import KILLED, FakeServer, Fault

UPDATE = "/open_api/v1.3/adgroup/update/"
GET = "/open_api/v1.3/adgroup/get/"
MIN_BUDGET = 20.0
KNOWN_FIELDS = {"adgroup_id", "budget", "budget_mode", "bid_price", "bid_type", "billing_event", "operation_status"}


class FakeTikTokServer:
    """The fake API for one advertiser: `server.values` holds ("budget" | "bid", ad group id) -> value;
    `server.owners` ad group -> another advertiser id. Install with `install(api_client)`."""

    def __init__(self, server: FakeServer, advertiser_id: str = "7000"):
        self.server, self.advertiser_id = server, advertiser_id
        self.timeouts: list = []
        self.sent: list[dict] = []

    def install(self, api_client) -> FakeTikTokServer:
        api_client.rest_client.pool_manager.urlopen = self
        return self

    def __call__(self, method, url, body=None, headers=None, **kwargs):
        self.timeouts.append(kwargs.get("timeout"))
        split = urlsplit(url)
        query = parse_qs(split.query)
        payload = json.loads(body) if body else None
        self.sent.append({"method": method, "path": split.path, "query": query, "body": payload})
        if split.path == GET:
            return self._get(query)
        return self._update(payload or {})

    def _mine(self, ad_group_id: str) -> bool:
        known = any((f, ad_group_id) in self.server.values for f in ("budget", "bid"))
        return known and self.server.owners.get(ad_group_id, self.advertiser_id) == self.advertiser_id

    def _get(self, query: dict):
        server = self.server
        fault = server.next_fault("read")
        server.record("read", [], [], fault)
        if fault is not None:
            return self._fault(fault)
        fields = query.get("fields", [])
        try:
            asked = json.loads(fields[0]) if len(fields) == 1 else None
        except ValueError:
            asked = None
        if not isinstance(asked, list) or not set(asked) <= KNOWN_FIELDS:
            return self._json(
                200, {"code": 40002, "message": f"fields: invalid value {fields[:5]}", "request_id": "r-bad"}
            )
        ids = json.loads(query["filtering"][0]).get("adgroup_ids", [])
        listed = []
        for ad_group_id in ids:
            if not self._mine(str(ad_group_id)):
                continue
            row = {
                "adgroup_id": str(ad_group_id),
                "budget_mode": "BUDGET_MODE_DAY",
                "billing_event": "CPM",
                "bid_type": "BID_TYPE_CUSTOM",
            }
            for field_, name in (("budget", "budget"), ("bid", "bid_price")):
                if (field_, str(ad_group_id)) in server.values:
                    row[name] = server.values[(field_, str(ad_group_id))]
            listed.append({k: v for k, v in row.items() if k in asked})
        return self._json(
            200,
            {
                "code": 0,
                "message": "OK",
                "request_id": f"r-{len(server.log)}",
                "data": {"list": listed, "page_info": {"total_number": len(listed)}},
            },
        )

    def _update(self, body: dict):
        server = self.server
        ad_group_id = str(body.get("adgroup_id"))
        writes = [
            (f, ad_group_id, float(body[n])) for f, n in (("budget", "budget"), ("bid", "bid_price")) if n in body
        ]
        fault = server.next_fault("update")
        if fault is not None and not fault.applies:
            server.record("update", writes, [], fault)
            return self._fault(fault)
        refusal = None
        if str(body.get("advertiser_id")) != self.advertiser_id or not self._mine(ad_group_id):
            refusal = (40002, f"adgroup_id {ad_group_id} does not exist for this advertiser")
        elif "budget" in body and float(body["budget"]) < MIN_BUDGET:
            refusal = (40002, f"Budget must be at least {MIN_BUDGET:.2f}")
        if fault is not None and fault.kind == "partial_failure":  # one ad group per call: the call is refused
            refusal = (40002, "Bid price is invalid (injected)")
        applied = [] if refusal else writes
        server.apply(applied)
        server.record("update", writes, applied, fault, writes if refusal else [])
        if refusal:
            return self._json(200, {"code": refusal[0], "message": refusal[1], "request_id": "r-refused"})
        if fault is not None:
            return self._fault(fault)
        return self._json(
            200, {"code": 0, "message": "OK", "request_id": f"r-{len(server.log)}", "data": {"adgroup_id": ad_group_id}}
        )

    @staticmethod
    def _fault(fault: Fault):
        kind = fault.kind
        if kind == KILLED:
            raise KeyboardInterrupt("the push process was stopped during the call")
        if kind == "429":
            return FakeTikTokServer._raw(429, b"Too Many Requests", "text/plain")
        if kind == "500":
            return FakeTikTokServer._json(200, {"code": 50000, "message": "System error", "request_id": "r-500"})
        if kind in ("502_html", "504_html"):
            status = int(kind[:3])
            return FakeTikTokServer._raw(
                status, f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode(), "text/html"
            )
        if kind == "503":
            return FakeTikTokServer._raw(503, b"<html><body>503 Service Unavailable</body></html>", "text/html")
        if kind == "read_timeout":
            raise urllib3.exceptions.ReadTimeoutError(None, UPDATE, "Read timed out. (read timeout=60)")
        if kind == "reset_after_send":
            raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
        if kind == "malformed_json":
            return FakeTikTokServer._raw(200, b'{"code": 0, "message": "OK", "data": {"adgroup_', "application/json")
        if kind == "auth":
            return FakeTikTokServer._json(
                200, {"code": 40105, "message": "Access token is invalid", "request_id": "r-a"}
            )
        return FakeTikTokServer._json(
            200, {"code": 40002, "message": "Bid price is invalid (injected)", "request_id": "r-part"}
        )

    @staticmethod
    def _json(status: int, payload: dict):
        return FakeTikTokServer._raw(status, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _raw(status: int, body: bytes, content_type: str):
        return urllib3.HTTPResponse(
            body=body, status=status, headers={"Content-Type": content_type}, preload_content=True
        )
