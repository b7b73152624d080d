"""Google Analytics 4 as a Dagster resource: the website's sessions and key events, read through the Data API.

`GA4Resource` is what assets ask for. It fetches one report for a date range the way a careful client does: page by
page (``limit``/``offset``) until the promised ``row_count`` is in hand, every call retried with exponential backoff
on the errors Google asks clients to retry (quota exhausted, unavailable, deadline, internal), anything else
raised at once. Two implementations answer the one API call it needs:
  * `LiveGA4Resource` — the real property, through the official SDK (``BetaAnalyticsDataClient``);
  * `DemoGA4Resource` — the demo market, which answers with the SDK's own ``RunReportResponse``, so the paging,
    retry and parsing code is the same in demo and production.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest, RunReportResponse
from google.api_core import exceptions as gexc
from pydantic import Field, PrivateAttr

from rl.sources.ga4 import pages_to_frame
from rl.world.world import GA4_PROPERTY_ID, DemoWorld

MAX_PAGE_SIZE = 250_000  # the Data API's cap on `limit`
READONLY_SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
QUOTA_FIELDS = (
    "tokens_per_day",
    "tokens_per_hour",
    "concurrent_requests",
    "server_errors_per_project_per_hour",
    "potentially_thresholded_requests_per_hour",
    "tokens_per_project_per_hour",
)
# Errors worth another try. Over gRPC the SDK raises ResourceExhausted / DeadlineExceeded; over REST it maps the
# HTTP status alone, so a 429 arrives as their parent TooManyRequests and a 504 as GatewayTimeout: retry the parents.
RETRYABLE: tuple[type[Exception], ...] = (
    gexc.TooManyRequests,  # includes ResourceExhausted
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,  # includes DeadlineExceeded
    gexc.InternalServerError,
)
JITTER = 0.1  # each wait is stretched by up to 10% so that concurrent runs do not retry in lockstep


def pages_to_json_lines(pages: list[RunReportResponse]) -> str:
    """Report pages as received, one compact JSON object per line (the Data API's REST JSON, enums by name)."""
    return "".join(RunReportResponse.to_json(page, indent=None, use_integers_for_enums=False) + "\n" for page in pages)


class GA4FetchError(RuntimeError):
    """A GA4 report could not be fetched: retries ran out, or the API did not deliver the rows it promised."""


@dataclass
class GA4Report:
    """One GA4 report as received: the request (without paging), every page in offset order, and how many API calls
    (retries included) it took."""

    request: RunReportRequest
    pages: list[RunReportResponse]
    attempts: int

    @property
    def row_count(self) -> int:
        """The number of rows GA4 says the whole report has (from the first page)."""
        return int(self.pages[0].row_count) if self.pages else 0

    @property
    def quota(self) -> dict[str, dict[str, int]] | None:
        """The property's quota after the last call: {field: {"consumed", "remaining"}} for each quota GA4 returned,
        or None when the response carried no quota."""
        if not self.pages:
            return None
        pb = RunReportResponse.pb(self.pages[-1])
        if not pb.HasField("property_quota"):
            return None
        quota = pb.property_quota
        return {
            name: {"consumed": int(getattr(quota, name).consumed), "remaining": int(getattr(quota, name).remaining)}
            for name in QUOTA_FIELDS
            if quota.HasField(name)
        }

    def to_json_lines(self) -> str:
        """The pages as received, one compact JSON object per line (the Data API's REST JSON, enums by name)."""
        return pages_to_json_lines(self.pages)

    def frame(
        self, expected_dimensions: list[str] | None = None, expected_metrics: list[str] | None = None
    ) -> pl.DataFrame:
        """The report as one typed table (see `rl.sources.ga4`). The headers must be the expected names, in order;
        by default the request's own dimensions and metrics."""
        if expected_dimensions is None:
            expected_dimensions = [d.name for d in self.request.dimensions]
        if expected_metrics is None:
            expected_metrics = [m.name for m in self.request.metrics]
        return pages_to_frame(self.pages, expected_dimensions, expected_metrics)


class GA4Resource(dg.ConfigurableResource):
    """Reads GA4 reports for one property. Abstract: `LiveGA4Resource` (the real property) or `DemoGA4Resource`.

    Dagster's resource metaclass derives from pydantic's, which derives from `abc.ABCMeta`, so `abc.abstractmethod`
    works as usual: the base cannot be instantiated, and neither can a subclass that forgets a method."""

    page_size: int = Field(
        default=100_000, ge=1, le=MAX_PAGE_SIZE, description="Rows per runReport call (the API caps it at 250,000)."
    )
    max_attempts: int = Field(default=6, ge=1, description="API calls per page before giving up (first try included).")
    initial_backoff_s: float = Field(default=1.0, ge=0, description="Wait before the first retry; doubles each time.")
    max_backoff_s: float = Field(default=60.0, ge=0, description="Longest wait between two attempts.")

    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)  # tests replace it to record the waits
    _rng: random.Random = PrivateAttr(default_factory=random.Random)

    @abc.abstractmethod
    def property_name(self) -> str:
        """The property's resource name, ``properties/<numeric id>``."""

    @abc.abstractmethod
    def _run_report(self, request: RunReportRequest) -> RunReportResponse:
        """One runReport API call, no retry (retries are `fetch_report`'s job)."""

    def fetch_report(
        self,
        dimensions: list[str],
        metrics: list[str],
        start: dt.date,
        end: dt.date,
        log: logging.Logger | None = None,
        received: list[RunReportResponse] | None = None,
    ) -> GA4Report:
        """The whole report for days `start`..`end` (both included), every page of it. Each page is also appended
        to `received` as it arrives, so a caller keeps the pages received before an error."""
        if end < start:
            raise ValueError(f"GA4 report: end {end} is before start {start}")
        request = RunReportRequest(
            property=self.property_name(),
            dimensions=[Dimension(name=d) for d in dimensions],
            metrics=[Metric(name=m) for m in metrics],
            date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
            return_property_quota=True,
            keep_empty_rows=False,
        )
        what = f"GA4 runReport for {request.property} {start}..{end}"
        pages: list[RunReportResponse] = [] if received is None else received
        attempts, rows_in, row_count = 0, 0, None
        while row_count is None or rows_in < row_count:
            offset = rows_in
            page_request = RunReportRequest(request)
            page_request.limit, page_request.offset = self.page_size, offset
            page, calls = self._call_with_retry(page_request, f"{what} (offset {offset})", log)
            attempts += calls
            pages.append(page)  # kept before it is judged: a page that fails the checks below is still received
            if row_count is None:
                row_count = int(page.row_count)
            elif page.row_count != row_count:
                raise GA4FetchError(
                    f"{what}: row_count changed from {row_count} to {page.row_count} at offset {offset}; the report "
                    "changed while it was being read (fetch again)"
                )
            promised = max(0, min(self.page_size, row_count - offset))
            if len(page.rows) != promised:
                raise GA4FetchError(
                    f"{what}: the page at offset {offset} (limit {self.page_size}) has {len(page.rows)} rows, but "
                    f"row_count {row_count} promises {promised}; stopping rather than asking again"
                )
            rows_in += len(page.rows)
            if log is not None:
                log.info(f"{what}: page {len(pages)}, {rows_in}/{row_count} rows ({attempts} API calls)")
        return GA4Report(request=request, pages=list(pages), attempts=attempts)

    def _call_with_retry(
        self, request: RunReportRequest, what: str, log: logging.Logger | None
    ) -> tuple[RunReportResponse, int]:
        """(response, API calls made): retries the retryable errors with capped exponential backoff."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._run_report(request), attempt
            except RETRYABLE as err:
                if attempt == self.max_attempts:
                    raise GA4FetchError(
                        f"{what} failed after {attempt} attempts; last error: {type(err).__name__}: {err}"
                    ) from err
                wait = self._backoff(attempt)
                if log is not None:
                    log.warning(
                        f"{what}: {type(err).__name__} on attempt {attempt}/{self.max_attempts}, retrying in "
                        f"{wait:.1f}s"
                    )
                self._sleep(wait)
        raise AssertionError("unreachable: max_attempts >= 1")

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): doubling, jittered, capped."""
        base = self.initial_backoff_s * 2 ** (attempt - 1)
        return min(self.max_backoff_s, base * (1 + JITTER * self._rng.random()))


class LiveGA4Resource(GA4Resource):
    """The real GA4 property, through Google's official Data API client. Credentials come from a service account's
    JSON key file, or from Application Default Credentials; they are never logged."""

    property_id: str = Field(description="The numeric GA4 property ID (not the G-... measurement ID).")
    credentials_path: str | None = Field(
        default=None, description="A service account's JSON key file; None: Application Default Credentials."
    )
    transport: str = Field(default="grpc", description="How the SDK talks to the API: grpc or rest.")
    timeout_seconds: float = Field(default=120.0, gt=0, description="Client-side timeout of one runReport call.")

    _client_instance: BetaAnalyticsDataClient | None = PrivateAttr(default=None)  # built on first use; tests may set it

    def property_name(self) -> str:
        pid = str(self.property_id).strip().removeprefix("properties/")
        if not pid.isdigit():
            raise ValueError(f"GA4 property_id must be the numeric property ID (e.g. 123456789), got {pid!r}")
        return f"properties/{pid}"

    def _client(self) -> BetaAnalyticsDataClient:
        """The SDK client, created once per resource instance."""
        if self._client_instance is None:
            if self.transport not in ("grpc", "rest"):
                raise ValueError(f"GA4 transport must be 'grpc' or 'rest', got {self.transport!r}")
            credentials = None  # the SDK then uses Application Default Credentials
            if self.credentials_path:
                from google.oauth2 import service_account  # deferred: a prod SDK, loaded on first use

                credentials = service_account.Credentials.from_service_account_file(
                    self.credentials_path, scopes=[READONLY_SCOPE]
                )
            self._client_instance = BetaAnalyticsDataClient(credentials=credentials, transport=self.transport)
        return self._client_instance

    def _run_report(self, request: RunReportRequest) -> RunReportResponse:
        # one retry layer (ours); a deadline, so a stalled connection ends as a retryable DeadlineExceeded
        return self._client().run_report(request=request, retry=None, timeout=self.timeout_seconds)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client_instance is not None:
            self._client_instance.transport.close()
            self._client_instance = None


class DemoGA4Resource(GA4Resource):
    """The demo market's GA4 property. Time in the demo passes as far as someone asks about: a report through day D
    first lets the world simulate every day up to D."""

    world_dir: str = Field(description="The demo world's state directory.")
    world_file: str = Field(description="The world's YAML (hidden true market parameters).")
    seed: int = Field(default=0, description="The world's seed.")

    _world: DemoWorld | None = PrivateAttr(default=None)

    def world(self) -> DemoWorld:
        if self._world is None:
            self._world = DemoWorld.open(Path(self.world_dir), self.world_file, self.seed)
        return self._world

    def property_name(self) -> str:
        return f"properties/{GA4_PROPERTY_ID}"

    def fetch_report(
        self,
        dimensions: list[str],
        metrics: list[str],
        start: dt.date,
        end: dt.date,
        log: logging.Logger | None = None,
        received: list[RunReportResponse] | None = None,
    ) -> GA4Report:
        world = self.world()
        before = world.today
        world.advance_to(end + dt.timedelta(days=1))
        if log is not None and world.today != before:
            log.info(f"demo world: simulated {before}..{world.today - dt.timedelta(days=1)}")
        return super().fetch_report(dimensions, metrics, start, end, log, received)

    def _run_report(self, request: RunReportRequest) -> RunReportResponse:
        return self.world().run_report(request)
