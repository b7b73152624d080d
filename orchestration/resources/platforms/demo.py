"""The demo market as a bid platform: a plan is applied with `DemoWorld.push` (effective from the world's `today`).

All four platforms' campaigns live in the one demo world, so one resource pushes to all of them. Validate-only
means "check, don't push": the campaign must exist in the world on the row's platform, its targets must be the
demo ids (`rl.bidding.plan.demo_targets`), and the values must be acceptable to the world. Applying writes mode
`demo` in the audit table, never `live`: nothing here can reach a real account.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from pydantic import PrivateAttr

from orchestration.resources.platforms.base import BidPlatform
from orchestration.resources.platforms.microsoft import wsdl_cache
from rl.accounts import google_ads, meta, microsoft, tiktok
from rl.accounts.model import DiscoveredAccount, DiscoveryError
from rl.bidding.plan import (
    DEVICE_KEYS,
    MODIFIER_FIELDS,
    PLATFORMS,
    Change,
    PlanError,
    demo_targets,
    hour_block_keys,
    modifier_target,
    parse_modifier_target,
)
from rl.bidding.push import Batch, Outcome, Reading
from rl.world import structure
from rl.world.world import PLATFORM_CUSTOMER_IDS, DemoWorld, WorldError


class DemoBidPlatform(BidPlatform):
    """Pushes to the demo market persisted in `world_dir` (same fields as `DemoAdsReportingResource`). Applying to
    the demo world is what the demo is for, so its live switch is on by default."""

    world_dir: str
    world_file: str
    seed: int = 0
    live_pushing_enabled: bool = True
    PUSHES_MODIFIERS = True  # the search campaigns' device and hour-block modifiers (the world refuses social ones)

    _world: Any = PrivateAttr(default=None)

    def world(self):
        """The demo world (opened once per resource instance)."""
        if self._world is None:
            self._world = DemoWorld.open(self.world_dir, self.world_file, self.seed)
        return self._world

    def platforms(self) -> tuple[str, ...]:
        return PLATFORMS

    def account(self) -> str:
        return f"demo-world:seed-{self.seed}"

    def _mode(self, live: bool) -> str:
        return "demo" if live else "validate_only"

    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        by_campaign: dict[tuple[str, int], list[Change]] = {}
        for change in changes:
            by_campaign.setdefault((change.row.platform, change.row.campaign_id), []).append(change)
        batches = []
        for (platform, campaign_id), group in by_campaign.items():
            call: dict[str, Any] = {"call": "DemoWorld.push", "platform": platform, "campaign_id": campaign_id}
            for change in group:
                if change.field in MODIFIER_FIELDS:
                    key = parse_modifier_target(change.target)[1]
                    call.setdefault("modifiers", {})[key] = round(change.new_value, 2)
                else:
                    call["daily_budget" if change.field == "budget" else "bid"] = round(change.new_value, 2)
            requests = [{**call, "target": c.target, "field": c.field} for c in group]
            batches.append(Batch(group, requests, payload=call))
        return batches

    def _refusal(self, change: Change, values: bool = True) -> str | None:
        """Why the demo world would refuse the change (None: it would not); `values=False` checks only the
        object (the campaign, its platform and the target), not the value."""
        world = self.world()
        row = change.row
        campaign = next((c for c in world.params.campaigns if c.id == row.campaign_id), None)
        if campaign is None:
            return f"campaign {row.campaign_id} does not exist in the demo world"
        if campaign.platform != row.platform:
            return f"campaign {row.campaign_id} is on {campaign.platform!r} in the demo world, not {row.platform!r}"
        if change.field in MODIFIER_FIELDS:
            return self._modifier_refusal(change, campaign.platform, values)
        budget_target, bid_targets = demo_targets(row.campaign_id, row.platform)
        expected = budget_target if change.field == "budget" else bid_targets[0]
        if change.target != expected:
            return (
                f"{change.field} target {change.target!r} does not exist in the demo world; campaign "
                f"{row.campaign_id}'s is {expected!r} (rl.bidding.plan.demo_targets)"
            )
        if not values:
            return None
        if change.field == "bid" and change.new_value > campaign.max_bid:
            return f"bid {change.new_value:.2f} is above the campaign's max bid {campaign.max_bid:.2f}"
        if not math.isfinite(change.new_value) or change.new_value < 0:
            return f"{change.field} {change.new_value} is not a finite number >= 0"
        return None

    def _modifier_refusal(self, change: Change, platform: str, values: bool) -> str | None:
        world = self.world()
        if not world.params.platform(platform).has_modifiers:
            return f"{platform} has no device or hour-of-day bid modifiers in the demo world"
        try:
            campaign_id, key, block = parse_modifier_target(change.target)
        except PlanError as e:
            return str(e)
        keys = self._modifier_keys()
        if campaign_id != change.row.campaign_id or key not in keys:
            return (
                f"{change.field} target {change.target!r} does not exist in the demo world; campaign "
                f"{change.row.campaign_id}'s are {[modifier_target(change.row.campaign_id, k) for k in keys]}"
            )
        if not values:
            return None
        kind = "device" if key in DEVICE_KEYS else "hour"
        low, high = getattr(world.params.platform(platform), f"{kind}_modifier_range")
        if not (math.isfinite(change.new_value) and low <= change.new_value <= high):
            return f"{key} modifier {change.new_value} is outside {platform}'s range [{low:g}, {high:g}]"
        return None

    def _modifier_keys(self) -> list[str]:
        return [*DEVICE_KEYS, *hour_block_keys(self.world().params.hour_blocks)]

    def _modifiers(self, campaign_id: int, sent: dict[str, float]) -> dict[str, list[float] | None]:
        """The world push's device and hour-block vectors: those in force with the sent keys replaced (None for a
        kind nothing was sent for)."""
        now = self.world().modifiers[campaign_id]
        keys = self._modifier_keys()
        device = [sent.get(k, v) for k, v in zip(keys[:3], now.device, strict=True)]
        hours = [sent.get(k, v) for k, v in zip(keys[3:], now.hours, strict=True)]
        return {
            "device_modifiers": device if any(k in sent for k in DEVICE_KEYS) else None,
            "hour_modifiers": hours if any(k in sent for k in keys[3:]) else None,
        }

    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        refusals = [self._refusal(c) for c in batch.changes]
        if any(refusals):
            first = next(r for r in refusals if r)
            return [
                Outcome.refused(r or f"not applied: another change of the same call was refused ({first})")
                for r in refusals
            ]
        world = self.world()
        in_force = world.settings[batch.changes[0].row.campaign_id]
        if validate_only:
            return [
                Outcome.done(f"valid; in force: budget {in_force[0]:.2f}, bid {in_force[1]:.2f}") for _ in batch.changes
            ]
        call = batch.payload
        row = batch.changes[0].row
        try:
            pushed = world.push(
                row.campaign_id,
                daily_budget=call.get("daily_budget"),
                bid=call.get("bid"),
                source=f"bid_push {row.data_partition} policy {row.policy_version}",
                **self._modifiers(row.campaign_id, call.get("modifiers", {})),
            )
        except WorldError as e:
            return [Outcome.refused(f"the demo world refused the push: {e}") for _ in batch.changes]
        text = (
            f"applied from {pushed.effective_date.isoformat()} (push #{pushed.seq}); "
            f"was budget {in_force[0]:.2f}, bid {in_force[1]:.2f}"
        )
        return [Outcome.done(text, f"demo-push-{pushed.seq}", 0) for _ in batch.changes]

    def discover(self, platform: str) -> DiscoveredAccount:
        """The demo account on `platform` as that platform's API lists it (`rl.world.structure`, the SDKs' types),
        read by the same discovery code as a real account."""
        self._check_platform(platform)
        world, account = self.world(), PLATFORM_CUSTOMER_IDS[platform]
        if platform == "google_ads":
            return google_ads.discover(lambda request: structure.google_ads_search(world, request), account)
        if platform == "meta":

            def get(path: str, params: dict) -> dict:
                body = structure.meta_get(world, path, params)
                if "error" in body:
                    raise DiscoveryError(f"the demo Meta account refused GET {path}: {body['error']['message']}")
                return body

            return meta.discover(get, account)
        if platform == "tiktok":
            return tiktok.discover(lambda *args: structure.tiktok_get(world, *args), account)
        factory = _soap_factory()
        return microsoft.discover(lambda method, **a: structure.microsoft_call(world, factory, method, **a), account)

    def _read(self, changes: list[Change]) -> list[Reading]:
        """The settings in force in the demo world (what a push changes from `today` on)."""
        out = []
        for change in changes:
            refusal = self._refusal(change, values=False)
            if refusal:
                out.append(Reading(None, problem=refusal))
                continue
            if change.field in MODIFIER_FIELDS:
                now = self.world().modifiers[change.row.campaign_id]
                key = parse_modifier_target(change.target)[1]
                out.append(Reading(dict(zip(self._modifier_keys(), now.device + now.hours, strict=True))[key]))
                continue
            budget, bid = self.world().settings[change.row.campaign_id]
            out.append(Reading(budget if change.field == "budget" else bid))
        return out


@functools.cache
def _soap_factory():
    """The bingads SDK's factory of Campaign Management types (the WSDL the SDK ships), built once per process: suds
    runs out of namespace prefixes after some hundreds of clients over one WSDL."""
    from bingads.service_client import ServiceClient  # deferred: a prod SDK, loaded on first use

    return ServiceClient("CampaignManagementService", 13, authorization_data=None, cache=wsdl_cache()).factory
