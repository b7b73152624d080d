"""The observation/action schema: a fixed, versioned layout tied to the campaign registry.

The observation is one float32 vector: for each campaign in registry order, the per-campaign features (in
`CAMPAIGN_FEATURES` order), then the global features (`GLOBAL_FEATURES`). The action is floats in [-1, 1]: first
the C budget shares, then the C bid multipliers (registry order), then, for each campaign whose platform has bid
modifiers (Google Ads and Microsoft Advertising: `MODIFIER_PLATFORMS`), in registry order, its device modifiers
(mobile, desktop, tablet) and its `hour_blocks` hour-block modifiers. The schema is stored with every model
(`to_json`) and compared on load (`check_compatible`); a market whose campaigns differ from the registry is an error
that names the campaign — there is no hash bucket and no silent resizing.

Version 2 added the modifiers to the action and, per campaign, the modifiers in force and the trailing 28 days'
spend, clicks and conversions by device and by hour block to the observation. A version-1 model cannot read a
version-2 observation (`check_compatible` says so).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rl.campaign_registry import CampaignRegistry
from rl.market.modifiers import block_labels
from rl.market.params import DEFAULT_HOUR_BLOCKS, DEVICES, MarketParams

SCHEMA_VERSION = 2
# The platforms whose APIs take device and ad-schedule (hour-of-day) bid adjustments per campaign.
MODIFIER_PLATFORMS: tuple[str, ...] = ("google_ads", "microsoft_ads")


def breakdown_keys(hour_blocks: int) -> tuple[str, ...]:
    """The device and hour-block keys of the breakdown features and modifiers: mobile, desktop, tablet, h00_04, …"""
    return tuple(DEVICES) + tuple("h" + label.replace("-", "_") for label in block_labels(hour_blocks))


def campaign_features(hour_blocks: int = DEFAULT_HOUR_BLOCKS) -> tuple[str, ...]:
    """All per-campaign features for `hour_blocks` blocks: the daily ones, the modifiers in force, then spend,
    clicks and conversions (by click date, as reported) over 28 days per device and per hour block."""
    keys = breakdown_keys(hour_blocks)
    return (
        BASE_CAMPAIGN_FEATURES
        + tuple(f"mod_{k}" for k in keys)
        + tuple(f"{metric}_{k}_28d" for metric in BREAKDOWN_METRICS for k in keys)
    )


# Per-campaign features, in order. "1d" is yesterday; "7d"/"28d" are trailing windows ending yesterday.
# Everything is what an ad platform reports (spend, impressions, clicks, impression share, conversions by click
# date as reported so far) or what we set ourselves (budget, bid). See `rl.env.observation` for units and scaling.
BASE_CAMPAIGN_FEATURES: tuple[str, ...] = (
    "spend_1d",
    "spend_7d",
    "spend_28d",
    "budget_utilisation_1d",
    "impressions_1d",
    "impressions_7d",
    "clicks_1d",
    "clicks_7d",
    "impression_share_1d",
    "impression_share_7d",
    "cpc_7d",
    "conversions_7d",
    "conversions_28d",
    "maturity_7d",
    "maturity_28d",
    "target_over_cpa_28d",
    "budget",
    "bid",
)
BREAKDOWN_METRICS: tuple[str, ...] = ("spend", "clicks", "conversions")
CAMPAIGN_FEATURES: tuple[str, ...] = campaign_features()

GLOBAL_FEATURES: tuple[str, ...] = (
    "dow_sin",
    "dow_cos",
    "budget_at_target_cpa",
    "account_spend_7d",
    "account_conversions_28d",
    "account_target_over_cpa_7d",
    "account_target_over_cpa_28d",
    "episode_progress",
    "episode_spend",
    "episode_conversions",
    "episode_target_over_cpa",
)

ACTION_FEATURES: tuple[str, ...] = ("budget_share", "bid_multiplier")


@dataclass(frozen=True)
class ObservationSchema:
    """Layout of observations and actions. campaign_ids: registry order; platforms: the registry's platform for
    each id (checked against the market); modifiers: per campaign, whether its platform has bid modifiers (default:
    its platform is one of `MODIFIER_PLATFORMS`); hour_blocks: blocks of the hour-block modifiers; features: names
    in vector order."""

    campaign_ids: tuple[int, ...]
    platforms: tuple[str, ...]
    campaign_features: tuple[str, ...] | None = None  # default: campaign_features(hour_blocks)
    global_features: tuple[str, ...] = GLOBAL_FEATURES
    action_features: tuple[str, ...] = ACTION_FEATURES
    version: int = SCHEMA_VERSION
    modifiers: tuple[bool, ...] | None = None
    hour_blocks: int = DEFAULT_HOUR_BLOCKS

    def __post_init__(self) -> None:
        if len(self.campaign_ids) == 0:
            raise ValueError("an observation schema needs at least one campaign")
        if len(set(self.campaign_ids)) != len(self.campaign_ids):
            raise ValueError(f"campaign ids must be unique in the schema, got {list(self.campaign_ids)}")
        if len(self.platforms) != len(self.campaign_ids):
            raise ValueError("platforms must give one platform per campaign id")
        if self.hour_blocks < 1 or 24 % self.hour_blocks:
            raise ValueError(f"hour_blocks must divide 24, got {self.hour_blocks}")
        if self.modifiers is None:
            object.__setattr__(self, "modifiers", tuple(p in MODIFIER_PLATFORMS for p in self.platforms))
        else:
            object.__setattr__(self, "modifiers", tuple(bool(m) for m in self.modifiers))
        if len(self.modifiers) != len(self.campaign_ids):
            raise ValueError("modifiers must give one flag per campaign id")
        if self.campaign_features is None:
            object.__setattr__(self, "campaign_features", campaign_features(self.hour_blocks))

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_registry(cls, registry: CampaignRegistry | None = None) -> ObservationSchema:
        """Campaign order = the registry file's order (reads the default registry file when none is given)."""
        registry = CampaignRegistry.load() if registry is None else registry
        ids = [c.campaign_id for c in registry.campaigns]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"campaign ids {dupes} appear on more than one platform; the schema needs unique ids")
        return cls(tuple(ids), tuple(c.platform for c in registry.campaigns))

    @classmethod
    def from_params(cls, params: MarketParams) -> ObservationSchema:
        """A schema in the market's own campaign order (for tests and ad-hoc markets without a registry); a campaign
        has modifiers when its platform in the market offers them."""
        plat = {p.name: p for p in params.platforms}
        return cls(
            tuple(c.id for c in params.campaigns),
            tuple(c.platform for c in params.campaigns),
            modifiers=tuple(plat[c.platform].has_modifiers for c in params.campaigns),
            hour_blocks=params.hour_blocks,
        )

    # -- sizes and positions ---------------------------------------------------------------------------------
    @property
    def n_campaigns(self) -> int:
        return len(self.campaign_ids)

    @property
    def obs_size(self) -> int:
        return self.n_campaigns * len(self.campaign_features) + len(self.global_features)

    @property
    def n_modifier_campaigns(self) -> int:
        return sum(self.modifiers)

    @property
    def n_blocks(self) -> int:
        return self.hour_blocks

    @property
    def modifiers_per_campaign(self) -> int:
        """Device modifiers + hour-block modifiers of one campaign that has them."""
        return len(DEVICES) + self.hour_blocks

    @property
    def action_size(self) -> int:
        return self.n_campaigns * len(self.action_features) + self.n_modifier_campaigns * self.modifiers_per_campaign

    def observation_names(self) -> list[str]:
        """Full names in vector order: '<campaign id>.<feature>' then the global feature names."""
        return [f"{cid}.{f}" for cid in self.campaign_ids for f in self.campaign_features] + list(self.global_features)

    def action_names(self) -> list[str]:
        names = [f"{cid}.{a}" for a in self.action_features for cid in self.campaign_ids]
        keys = breakdown_keys(self.hour_blocks)
        for cid, has in zip(self.campaign_ids, self.modifiers, strict=True):
            if has:
                names += [f"{cid}.modifier_{k}" for k in keys]
        return names

    def campaign_index(self, feature: str) -> slice:
        """Positions of one per-campaign feature for all campaigns (a strided slice into the vector)."""
        j = self.campaign_features.index(feature)
        n_f = len(self.campaign_features)
        return slice(j, self.n_campaigns * n_f, n_f)

    def global_index(self, feature: str) -> int:
        return self.n_campaigns * len(self.campaign_features) + self.global_features.index(feature)

    # -- market check ----------------------------------------------------------------------------------------
    def align(self, params: MarketParams) -> MarketParams:
        """The market with its campaigns reordered to the schema's order.

        Raises ValueError naming every campaign the schema does not know, every schema campaign the market lacks,
        and every campaign whose platform differs."""
        known = dict(zip(self.campaign_ids, self.platforms, strict=True))
        present = {c.id: c for c in params.campaigns}
        problems = []
        for c in params.campaigns:
            if c.id not in known:
                problems.append(f"unknown campaign {c.id} ({c.name!r} on {c.platform}) is not in the schema/registry")
            elif known[c.id] != c.platform:
                problems.append(
                    f"campaign {c.id} ({c.name!r}) is on {c.platform} in the market but {known[c.id]} in the registry"
                )
        for cid in self.campaign_ids:
            if cid not in present:
                problems.append(f"registry campaign {cid} ({known[cid]}) is missing from the market {params.name!r}")
        plat = {p.name: p for p in params.platforms}
        for cid, has in zip(self.campaign_ids, self.modifiers, strict=True):
            c = present.get(cid)
            if c is not None and plat[c.platform].has_modifiers != has:
                problems.append(
                    f"campaign {cid} ({c.name!r}): the schema says it {'has' if has else 'has no'} bid modifiers, its "
                    f"platform {c.platform} in the market {'has none' if has else 'has them'}"
                )
        if params.hour_blocks != self.hour_blocks:
            problems.append(f"the market has {params.hour_blocks} hour blocks, the schema {self.hour_blocks}")
        if problems:
            raise ValueError("market does not match the observation schema: " + "; ".join(problems))
        if [c.id for c in params.campaigns] == list(self.campaign_ids):
            return params
        data = params.model_dump()
        order = {cid: i for i, cid in enumerate(self.campaign_ids)}
        data["campaigns"] = sorted(data["campaigns"], key=lambda c: order[c["id"]])
        return MarketParams.model_validate(data)

    # -- persistence -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "campaign_ids": list(self.campaign_ids),
            "platforms": list(self.platforms),
            "campaign_features": list(self.campaign_features),
            "global_features": list(self.global_features),
            "action_features": list(self.action_features),
            "modifiers": list(self.modifiers),
            "hour_blocks": self.hour_blocks,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ObservationSchema:
        data = json.loads(text)
        expected = {"version", "campaign_ids", "platforms", "campaign_features", "global_features", "action_features"}
        optional = {"modifiers", "hour_blocks"}  # version 2; a version-1 schema has neither (and no modifiers)
        if not isinstance(data, dict) or not expected <= set(data) or set(data) - expected - optional:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not an observation schema: expected keys {sorted(expected | optional)}, got {got}")
        ids = tuple(int(i) for i in data["campaign_ids"])
        return cls(
            campaign_ids=ids,
            platforms=tuple(data["platforms"]),
            campaign_features=tuple(data["campaign_features"]),
            global_features=tuple(data["global_features"]),
            action_features=tuple(data["action_features"]),
            version=int(data["version"]),
            modifiers=tuple(data["modifiers"]) if "modifiers" in data else (False,) * len(ids),
            hour_blocks=int(data.get("hour_blocks", DEFAULT_HOUR_BLOCKS)),
        )

    def check_compatible(self, other: ObservationSchema) -> None:
        """Raise ValueError describing the first difference if a model built for `other` cannot read `self`."""
        for name in (
            "version",
            "campaign_ids",
            "platforms",
            "campaign_features",
            "global_features",
            "action_features",
            "modifiers",
            "hour_blocks",
        ):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                raise ValueError(f"observation schema mismatch in {name}: {_short(a)} != {_short(b)}")


def _short(v: object) -> str:
    text = repr(list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v)
    return text if len(text) < 200 else text[:197] + "..."
