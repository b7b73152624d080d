"""A fake Graph API (v26.0) behind a `requests` transport adapter: ad sets with `daily_budget` and `bid_amount`
(minor units), `GET /<ad set>?fields=...` and `POST /<ad set>` (with `execution_options=["validate_only"]`), and
the ways Meta and the proxies in front of it really answer when something goes wrong (an HTML 502 page, a
plain-text 429, Graph error objects)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ProtocolError

from benchmarks.fakes.server import KILLED, FakeServer, Fault

MIN_BUDGET_CENTS = 100
HTML = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1></center></body></html>"
)


class FakeMetaServer(BaseAdapter):
    """The fake API for one ad account (`account_id` without `act_`). `server.values` holds ("budget" | "bid",
    ad set id) -> value in currency; `server.owners` ad set -> another account id."""

    def __init__(self, server: FakeServer, account_id: str = "555"):
        super().__init__()
        self.server, self.account_id = server, account_id
        self.timeouts: list = []
        self.sent: list[tuple[str, str, dict]] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.timeouts.append(timeout)
        url = urlsplit(request.url)
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        params = {k: v[0] for k, v in {**parse_qs(url.query), **parse_qs(body)}.items()}
        node = url.path.strip("/").split("/")[-1]
        self.sent.append((request.method, node, params))
        if request.method == "GET":
            return self._read(request, node)
        return self._update(request, node, params)

    def _read(self, request, node: str):
        server = self.server
        fault = server.next_fault("read")
        server.record("read", [], [], fault)
        if fault is not None:
            return self._fault(request, fault)
        if ("budget", node) not in server.values and ("bid", node) not in server.values:
            error = {"message": f"Unsupported get request. Object with ID '{node}' does not exist", "code": 100}
            return self._reply(request, 400, {"error": {**error, "error_subcode": 33, "fbtrace_id": "T-404"}})
        body = {"id": node, "account_id": server.owners.get(node, self.account_id)}
        if ("budget", node) in server.values:
            body["daily_budget"] = str(round(server.values[("budget", node)] * 100))
        if ("bid", node) in server.values:
            body["bid_amount"] = round(server.values[("bid", node)] * 100)
        return self._reply(request, 200, body)

    def _update(self, request, node: str, params: dict):
        server = self.server
        validate = "validate_only" in params.get("execution_options", "")
        writes = [
            (field_, node, int(params[name]) / 100)
            for field_, name in (("budget", "daily_budget"), ("bid", "bid_amount"))
            if name in params
        ]
        op = "validate" if validate else "update"
        fault = server.next_fault(op)
        if fault is not None and not fault.applies:
            server.record(op, writes, [], fault)
            return self._fault(request, fault)
        refusal = None
        if server.owners.get(node, self.account_id) != self.account_id or not any(
            (f, node) in server.values for f in ("budget", "bid")
        ):
            refusal = {"message": "Unsupported post request", "code": 100, "error_subcode": 33}
        elif "daily_budget" in params and int(params["daily_budget"]) < MIN_BUDGET_CENTS:
            refusal = {
                "message": "Invalid parameter",
                "code": 100,
                "error_subcode": 1885272,
                "error_user_msg": "Your budget is too low",
            }
        if fault is not None and fault.kind == "partial_failure":  # one ad set per call: the call is refused
            refusal = {
                "message": "Invalid parameter",
                "code": 100,
                "error_subcode": 1487901,
                "error_user_msg": "The bid amount is invalid (injected)",
            }
        applied = [] if validate or refusal else writes
        server.apply(applied)
        server.record(op, writes, applied, fault, writes if refusal else [])
        if refusal:
            return self._reply(request, 400, {"error": {**refusal, "type": "OAuthException", "fbtrace_id": "T-REF"}})
        if fault is not None and fault.kind != "partial_failure":
            return self._fault(request, fault)
        return self._reply(request, 200, {"success": True}, {"x-fb-trace-id": f"T-{len(server.log)}"})

    def _fault(self, request, fault: Fault):
        kind = fault.kind
        if kind == KILLED:
            raise KeyboardInterrupt("the push process was stopped during the call")
        if kind == "429":
            return self._reply(request, 429, "Too Many Requests", content_type="text/plain")
        if kind == "500":
            error = {"message": "An unknown error occurred", "code": 1, "is_transient": False, "fbtrace_id": "T-500"}
            return self._reply(request, 500, {"error": error})
        if kind in ("502_html", "504_html"):
            status = int(kind[:3])
            reason = "Bad Gateway" if status == 502 else "Gateway Time-out"
            return self._reply(request, status, HTML.format(status=status, reason=reason), content_type="text/html")
        if kind == "503":
            return self._reply(request, 503, "Service Unavailable", content_type="text/plain")
        if kind == "read_timeout":
            raise requests.ReadTimeout(
                f"HTTPSConnectionPool(host='graph.facebook.com'): Read timed out. ({request.url})"
            )
        if kind == "reset_after_send":
            reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
            raise requests.ConnectionError(reset)
        if kind == "malformed_json":
            return self._reply(request, 200, '{"success": tru', content_type="application/json")
        if kind == "auth":
            error = {
                "message": "Error validating access token: Session has expired",
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 463,
                "fbtrace_id": "T-AUTH",
            }
            return self._reply(request, 400, {"error": error})
        error = {
            "message": "Invalid parameter",
            "code": 100,
            "error_subcode": 1487901,
            "error_user_msg": "The bid amount is invalid (injected)",
            "fbtrace_id": "T-PART",
        }
        return self._reply(request, 400, {"error": error})

    @staticmethod
    def _reply(request, status: int, body, headers: dict | None = None, content_type: str = "application/json"):
        response = requests.Response()
        response.status_code = status
        response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": content_type, **(headers or {})})
        response.url, response.request, response.encoding = request.url, request, "utf-8"
        return response

    def close(self):
        pass
