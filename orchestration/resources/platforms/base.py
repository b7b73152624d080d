"""`BidPlatform`: the one interface the bid push asset uses to apply a plan to an ad platform.

`push(rows, live=False, audit=...)` validates (the platform's validate-only mode, or the closest real read call
where the API has none: `VALIDATION` says which, and the audit records it) and `push(rows, live=True, audit=...)`
applies. A live push is refused unless the resource itself was configured with `live_pushing_enabled=True`; that
switch is per resource, i.e. per platform account. How a call's end is classified (done, refused, unknown), what is
retried and the timeouts are `orchestration.resources.platforms.transport`'s, for every platform.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import ClassVar

import dagster as dg

from orchestration.resources.platforms.transport import DEFAULT_TIMEOUT_SECONDS
from rl.accounts.model import DiscoveredAccount
from rl.bidding.audit import PushAudit
from rl.bidding.plan import Change, PlanError, PlanRow
from rl.bidding.push import Batch, Outcome, PushResult, Reading, execute_push


class LivePushRefused(PermissionError):
    """A live push was asked of a resource whose live switch is off."""


class BidPlatform(dg.ConfigurableResource):
    """An ad platform account that budgets and bids are pushed to.

    Abstract (Dagster resources are pydantic models, whose metaclass derives from `abc.ABCMeta`): a subclass that
    misses a method cannot be instantiated."""

    live_pushing_enabled: bool = False
    retry_attempts: int = 5
    retry_base_seconds: float = 2.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset()
    # What a validate-only push that passed means on this platform (an audit status, see rl.bidding.audit).
    VALIDATION: ClassVar[str] = "validated_by_platform"
    # whether this platform's push sets device and hour-block bid modifiers (plan rows with modifiers are refused
    # before any call otherwise)
    PUSHES_MODIFIERS: ClassVar[bool] = False

    def __repr_args__(self):  # the resource may end up in a log line: keep the secrets out of its repr
        return [(k, "***" if k in self.SECRET_FIELDS else v) for k, v in super().__repr_args__()]

    @abc.abstractmethod
    def platforms(self) -> tuple[str, ...]:
        """The plan platforms (rl.bidding.plan.PLATFORMS) this resource pushes to."""

    @abc.abstractmethod
    def account(self) -> str:
        """The account pushed to, as recorded in the audit table (e.g. "google_ads:1234567890")."""

    @abc.abstractmethod
    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        """Group changes into platform calls and build each call's SDK request objects."""

    @abc.abstractmethod
    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        """Make one platform call; one outcome per change (done, refused or unknown). Raising means no answer at
        all: the batch's outcome is recorded unknown."""

    @abc.abstractmethod
    def _read(self, changes: list[Change]) -> list[Reading]:
        """The platform's current value of each change's object and field, one `Reading` per change (a `problem`
        when the object must not be pushed to: missing, or another account's). Used to reconcile an unknown
        outcome before sending again, and for the checks `_must_read` asks for."""

    @abc.abstractmethod
    def discover(self, platform: str) -> DiscoveredAccount:
        """The account's campaigns, budgets and ad groups on `platform` as the platform lists them now (read-only,
        paged calls with this resource's retries and timeout); a `DiscoveryError` naming the call otherwise."""

    def _check_platform(self, platform: str) -> None:
        if platform not in self.platforms():
            raise ValueError(f"{type(self).__name__} reads {self.platforms()}, not {platform!r}")

    def _must_read(self, change: Change) -> bool:
        """Whether a change must be read before it is sent, on every push (default: no; Meta checks ownership)."""
        return False

    def _check_target(self, change: Change) -> None:
        """Raise PlanError if `change.target` is not an id of the kind this platform wants (default: any)."""

    def _secret_values(self) -> list[str]:
        return [str(getattr(self, name)) for name in self.SECRET_FIELDS if getattr(self, name, None)]

    def _mode(self, live: bool) -> str:
        return "live" if live else "validate_only"

    def check_rows(self, rows: Sequence[PlanRow]) -> None:
        """Refuse rows this resource cannot push (another platform, modifiers it cannot set), before any call."""
        for row in rows:
            if row.platform not in self.platforms():
                raise PlanError(
                    f"{type(self).__name__} pushes to {self.platforms()}, not {row.platform!r} "
                    f"(plan row for campaign {row.campaign_id})"
                )
            if row.has_modifiers and not self.PUSHES_MODIFIERS:
                raise PlanError(
                    f"plan row {row.platform}/{row.campaign_id}: {type(self).__name__} does not push device or "
                    "hour-of-day bid modifiers; leave device_modifiers and hour_modifiers None"
                )
            for change in row.changes():
                self._check_target(change)

    def push(
        self,
        rows: Sequence[PlanRow],
        *,
        live: bool,
        audit: PushAudit,
        blocked: Mapping[tuple[str, int], str] | None = None,
    ) -> list[PushResult]:
        """Push the plan rows: validate only (`live=False`) or apply (`live=True`, only when this resource's
        `live_pushing_enabled` is on). Every change is written to `audit`; one `PushResult` per change. The changes
        of a campaign in `blocked` ((platform, campaign id) -> why) are recorded `not_sent`, never sent."""
        if live and not self.live_pushing_enabled:
            raise LivePushRefused(
                f"{type(self).__name__} ({self.account()}): live pushing is switched off for this account; "
                "set live_pushing_enabled=True on this resource to apply bids (validate-only pushes need no switch)"
            )
        rows = list(rows)
        self.check_rows(rows)
        return execute_push(
            audit,
            rows,
            mode=self._mode(live),
            account=self.account(),
            adapter=_Adapter(self),
            secrets=self._secret_values(),
            blocked=blocked,
        )


class _Adapter:
    """A resource seen as the push protocol's adapter (`rl.bidding.push.PushAdapter`)."""

    def __init__(self, resource: BidPlatform):
        self.validation = resource.VALIDATION
        self.build, self.send, self.read, self.must_read = (
            resource._build,
            resource._send,
            resource._read,
            resource._must_read,
        )
