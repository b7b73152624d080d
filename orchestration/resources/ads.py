"""Ad-platform reporting: what each ad account says it delivered (impressions, clicks, spend, conversions by click
date) and how long its conversions took, as Google Ads Query Language (GAQL) reports.

`AdsReportingResource` is the one interface the ingestion assets use. `GoogleAdsReportingResource` asks the real
Google Ads API (official SDK, API v26) with OAuth credentials from the environment; `DemoAdsReportingResource` asks
the demo market, which answers with the same SDK response types for all four platforms (Google Ads, Microsoft Ads,
Meta, TikTok), so the parsing code path is the same in demo and production.

Impression share by hour: the Google Ads API accepts `metrics.search_impression_share` together with
`segments.hour`, but operators have reported it coming back as 0.0 for some campaign types at hour level, and the
Google Ads UI does not offer impression share by hour of day. Impression share is also not additive: a day's share
cannot be recovered from hourly shares. The hourly performance report therefore keeps the field (as reported, per
hour) and `impression_share()` fetches the daily figure in a second, daily query; use the daily one for daily
observations.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsStreamResponse
from pydantic import PrivateAttr

from orchestration.resources.ads_queries import (
    IMPRESSION_SHARE_FIELDS,
    LAG_FIELDS,
    MODIFIER_CRITERIA_FIELDS,
    MODIFIER_FIELDS,
    PERFORMANCE_FIELDS,
    SETTINGS_FIELDS,
    conversion_lag_query,
    current_modifiers_query,
    impression_share_query,
    modifiers_query,
    performance_query,
    settings_query,
)
from rl.sources.google_ads import AdsReportFormatError, rows_to_frame
from rl.world.ads_api import GaqlError
from rl.world.world import PLATFORM_CUSTOMER_IDS, DemoWorld

GOOGLE_ADS_API_VERSION = "v26"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


def customer_id_digits(customer_id: str) -> str:
    """A Google Ads customer id as the API wants it: ten digits, no dashes (`123-456-7890` -> `1234567890`)."""
    digits = str(customer_id).replace("-", "").strip()
    if not (digits.isdigit() and len(digits) == 10):
        raise ValueError(f"{customer_id!r} is not a Google Ads customer id (ten digits, dashes allowed)")
    return digits


def google_ads_client(creds: Any) -> Any:
    """A `GoogleAdsClient` (API v26) from OAuth user credentials on `creds` (developer_token, client_id,
    client_secret, refresh_token, login_customer_id). No token is fetched until the first request."""
    from google.ads.googleads.client import GoogleAdsClient  # deferred: a prod SDK, loaded on first use
    from google.oauth2.credentials import Credentials  # deferred: a prod SDK, loaded on first use

    credentials = Credentials(
        None,
        refresh_token=creds.refresh_token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        token_uri=GOOGLE_TOKEN_URI,
    )
    login = creds.login_customer_id
    return GoogleAdsClient(
        credentials=credentials,
        developer_token=creds.developer_token,
        login_customer_id=customer_id_digits(login) if login else None,
        version=GOOGLE_ADS_API_VERSION,
        use_proto_plus=True,
    )


def batches_to_json_lines(batches: Iterable[SearchGoogleAdsStreamResponse]) -> str:
    """Response batches as received, one compact JSON object per line (REST JSON field and enum names)."""
    return "".join(
        SearchGoogleAdsStreamResponse.to_json(
            b, indent=None, use_integers_for_enums=False, always_print_fields_with_no_presence=False
        )
        + "\n"
        for b in batches
    )


class AdsReportingError(RuntimeError):
    """The ad platform refused or failed a report request (bad query, permissions, quota, authentication)."""


@dataclass
class AdsReport:
    """One GAQL report as the platform streamed it: the request, and the response batches untouched."""

    platform: str
    customer_id: str
    query: str
    fields: list[str]
    batches: list[SearchGoogleAdsStreamResponse]
    as_of: dt.date | None = None  # a report of the current state, taken on this day (its rows get it as `date`)

    @property
    def request_ids(self) -> list[str]:
        """The platform's request ids (what its support asks for), once each, in the order received."""
        return list(dict.fromkeys(b.request_id for b in self.batches if b.request_id))

    @property
    def rows(self) -> Iterator[GoogleAdsRow]:
        """Every report row, batch after batch."""
        for batch in self.batches:
            yield from batch.results

    @property
    def row_count(self) -> int:
        return sum(len(SearchGoogleAdsStreamResponse.pb(b).results) for b in self.batches)

    def to_json_lines(self) -> str:
        """The response as received, one compact JSON object per batch (REST JSON field and enum names), for keeping
        before it is parsed."""
        return batches_to_json_lines(self.batches)

    def frame(self) -> pl.DataFrame:
        """The rows as one typed table (`rl.sources.google_ads.rows_to_frame`). A field the query did not select
        (absent from a batch's field mask) is an error rather than a column of nulls."""
        for batch in self.batches:
            selected = SearchGoogleAdsStreamResponse.pb(batch).field_mask.paths
            missing = [f for f in self.fields if selected and f not in selected]
            if missing:
                raise AdsReportFormatError(missing[0], f"not selected by the query (response field mask: {selected})")
        raw_rows = (row for b in self.batches for row in SearchGoogleAdsStreamResponse.pb(b).results)
        frame = rows_to_frame(raw_rows, self.fields)
        if self.as_of is not None and "date" not in frame.columns:
            frame = frame.with_columns(pl.lit(self.as_of, dtype=pl.Date).alias("date"))
        return frame


class AdsReportingResource(dg.ConfigurableResource):
    """The ad accounts GAELP reports on, one per platform, queried in GAQL.

    Abstract: Dagster's resource metaclass derives from pydantic's `ModelMetaclass`, which derives from
    `abc.ABCMeta`, so `@abc.abstractmethod` works as on any ABC: a subclass that misses one cannot be instantiated
    (TypeError at construction, i.e. when the Definitions are loaded, not in the middle of a run)."""

    @abc.abstractmethod
    def accounts(self) -> dict[str, str]:
        """Platform name -> customer id of the account this resource can report on."""

    @abc.abstractmethod
    def _search_stream(self, customer_id: str, query: str, through: dt.date) -> Iterable[SearchGoogleAdsStreamResponse]:
        """Run one GAQL query for `customer_id` (digits only); `through` is the last day the report needs."""

    def fetch(
        self, platform: str, query: str, fields: list[str], through: dt.date, received: list | None = None
    ) -> AdsReport:
        """Run `query` on the platform's account and keep every response batch; `fields` are the selected fields
        (the columns of `AdsReport.frame()`), `through` the last report day. Each batch is also appended to
        `received` as it arrives, so a caller keeps what came before an error in a later batch."""
        accounts = self.accounts()
        if platform not in accounts:
            known = ", ".join(f"{p}: {c}" for p, c in sorted(accounts.items())) or "none"
            raise ValueError(f"no {platform!r} ad account is configured for {type(self).__name__} (accounts: {known})")
        customer_id = customer_id_digits(accounts[platform])
        batches = [] if received is None else received
        for batch in self._search_stream(customer_id, query, through):
            batches.append(batch)
        return AdsReport(platform, customer_id, query, list(fields), list(batches))

    def performance(self, platform: str, start: dt.date, end: dt.date, received: list | None = None) -> AdsReport:
        """Hourly delivery and conversions (by click date) per campaign for the days start..end."""
        return self.fetch(platform, performance_query(start, end), PERFORMANCE_FIELDS, end, received)

    def conversion_lag(self, platform: str, start: dt.date, end: dt.date, received: list | None = None) -> AdsReport:
        """Conversions by click date and lag bucket per campaign for the clicks of days start..end."""
        return self.fetch(platform, conversion_lag_query(start, end), LAG_FIELDS, end, received)

    def settings(self, platform: str, start: dt.date, end: dt.date, received: list | None = None) -> AdsReport:
        """Daily budget and ad group bid in force per campaign and day (`settings_query`)."""
        return self.fetch(platform, settings_query(start, end), SETTINGS_FIELDS, end, received)

    def modifiers(self, platform: str, start: dt.date, end: dt.date, received: list | None = None) -> AdsReport:
        """Device and ad-schedule bid modifiers in force per campaign and day (`modifiers_query`); search platforms
        only (a social account has none and answers no rows)."""
        return self.fetch(platform, modifiers_query(start, end), MODIFIER_FIELDS, end, received)

    def impression_share(self, platform: str, start: dt.date, end: dt.date, received: list | None = None) -> AdsReport:
        """Daily search impression share per campaign for the days start..end (null for non-search campaigns)."""
        return self.fetch(platform, impression_share_query(start, end), IMPRESSION_SHARE_FIELDS, end, received)


def _field_path(location: Any) -> str:
    parts = []
    for element in location.field_path_elements:
        has_index = type(element).pb(element).HasField("index")
        parts.append(f"{element.field_name}[{element.index}]" if has_index else element.field_name)
    return ".".join(parts)


def _error_code(error: Any) -> str:
    code = type(error.error_code).pb(error.error_code)
    kind = code.WhichOneof("error_code")
    if kind is None:
        return "UNKNOWN_ERROR"
    value = getattr(error.error_code, kind)
    return f"{kind}.{getattr(value, 'name', value)}"


def describe_google_ads_failure(customer_id: str, exc: Any) -> str:
    """A `GoogleAdsException` in one line: customer, request id, and each error's code, message and field path.
    Built from the failure only, never from the request's credentials or headers."""
    details = []
    for error in exc.failure.errors:
        path = _field_path(error.location)
        details.append(f"{_error_code(error)}: {error.message}" + (f" (field: {path})" if path else ""))
    status = exc.error.code().name if hasattr(exc.error, "code") else "error"
    return (
        f"Google Ads refused the report for customer {customer_id} (request id {exc.request_id}, {status}): "
        + "; ".join(details or ["no error details"])
    )


class GoogleAdsReportingResource(AdsReportingResource):
    """The real Google Ads account, read with the official SDK (API v26) over gRPC.

    Credentials come from the environment in production (`dg.EnvVar`): a developer token, an OAuth client and a
    refresh token for a user with access to the account (through the manager account `login_customer_id` when
    there is one). The SDK client is built on first use, and no token is fetched until the first request."""

    developer_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    login_customer_id: str | None = None
    customer_id: str
    timeout_seconds: float = 600.0  # the whole stream of one report (a year of hourly rows takes a while)

    _ads_client: Any = PrivateAttr(default=None)
    _ads_service: Any = PrivateAttr(default=None)

    def __repr_args__(self):  # the resource may end up in a log line: keep the secrets out of its repr
        secret = {"developer_token", "client_id", "client_secret", "refresh_token"}
        return [(k, "***" if k in secret else v) for k, v in super().__repr_args__()]

    def accounts(self) -> dict[str, str]:
        return {"google_ads": customer_id_digits(self.customer_id)}

    def with_client(self, client: Any) -> GoogleAdsReportingResource:
        """Use an already built `GoogleAdsClient` (tests, notebooks) instead of building one from the credentials."""
        self._ads_client, self._ads_service = client, None
        return self

    def _client(self) -> Any:
        """The SDK client, built once from OAuth user credentials (the access token is fetched on first use)."""
        if self._ads_client is None:
            self._ads_client = google_ads_client(self)
        return self._ads_client

    def _service(self) -> Any:
        if self._ads_service is None:
            self._ads_service = self._client().get_service("GoogleAdsService")
        return self._ads_service

    def modifiers(self, platform: str, start: dt.date, end: dt.date, received: list | None = None) -> AdsReport:
        """The criteria in force now, stamped with the last day asked for: Google Ads keeps no history of criteria
        in this report, so a daily run (yesterday's partition, before today's push) records each day as it passes,
        and a backfill can only record its last day — the days before it stay without rows (the marts carry the
        first known modifiers back over them)."""
        report = self.fetch(platform, current_modifiers_query(), MODIFIER_CRITERIA_FIELDS, end, received)
        report.as_of = end
        return report

    def _search_stream(self, customer_id: str, query: str, through: dt.date) -> Iterable[SearchGoogleAdsStreamResponse]:
        import grpc  # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.errors import GoogleAdsException  # deferred: a prod SDK, loaded on first use
        from google.api_core.exceptions import GoogleAPICallError  # deferred: a prod SDK, loaded on first use
        from google.auth.exceptions import RefreshError  # deferred: a prod SDK, loaded on first use

        try:
            # yielded batch by batch, so the caller keeps what arrived before an error in a later batch
            stream = self._service().search_stream(
                customer_id=customer_id, query=query, timeout=self.timeout_seconds, retry=None
            )
            yield from stream
        except GoogleAdsException as e:
            raise AdsReportingError(describe_google_ads_failure(customer_id, e)) from None
        except RefreshError as e:
            raise AdsReportingError(
                f"Google Ads report for customer {customer_id}: the OAuth refresh token was refused ({e}); "
                "check GOOGLE_ADS_REFRESH_TOKEN, GOOGLE_ADS_CLIENT_ID and GOOGLE_ADS_CLIENT_SECRET"
            ) from None
        except GoogleAPICallError as e:  # a gRPC error without Google Ads failure details (the SDK maps these)
            raise AdsReportingError(f"Google Ads report for customer {customer_id} failed: {e}") from None
        except grpc.RpcError as e:
            code = e.code().name if isinstance(e, grpc.Call) else "UNKNOWN"
            details = e.details() if isinstance(e, grpc.Call) else str(e)
            raise AdsReportingError(f"Google Ads report for customer {customer_id} failed: {code}: {details}") from None


class DemoAdsReportingResource(AdsReportingResource):
    """The demo market's four ad accounts. Time in the demo passes as far as someone asks about: a report through
    day D first lets the world simulate up to and including D."""

    world_dir: str
    world_file: str
    seed: int = 0

    _world: Any = PrivateAttr(default=None)

    def accounts(self) -> dict[str, str]:
        return dict(PLATFORM_CUSTOMER_IDS)

    def world(self):
        """The demo world (opened once per resource instance)."""
        if self._world is None:
            self._world = DemoWorld.open(self.world_dir, self.world_file, self.seed)
        return self._world

    def _search_stream(self, customer_id: str, query: str, through: dt.date) -> Iterable[SearchGoogleAdsStreamResponse]:
        world = self.world()
        world.advance_to(through + dt.timedelta(days=1))
        try:
            return world.search_stream(customer_id, query)
        except GaqlError as e:
            raise AdsReportingError(f"the demo ad platform refused the report for customer {customer_id}: {e}") from e
