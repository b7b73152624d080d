"""A fake `requests` transport adapter: the lowest layer under an SDK that sends with `requests` (Meta's
facebook-business). It records every prepared request as it would go on the wire and answers with
`answer(request) -> (status, json body, headers)`, or raises what `answer` raises (a lost connection)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


@dataclass
class Wire:
    method: str
    url: str
    headers: dict
    body: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body).items()}


@dataclass
class FakeHttp(BaseAdapter):
    answer: Callable[[Wire], tuple[int, object, dict]]
    sent: list[Wire] = field(default_factory=list)

    def __post_init__(self):
        super().__init__()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        wire = Wire(request.method, request.url, dict(request.headers), body)
        self.sent.append(wire)
        status, payload, headers = self.answer(wire)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
        response.url, response.request, response.encoding = request.url, request, "utf-8"
        return response

    def close(self):
        pass
