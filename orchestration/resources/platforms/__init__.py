"""Bid push adapters: one `BidPlatform` resource per ad platform account (real SDKs) and the demo market."""

from orchestration.resources.platforms.base import BidPlatform, LivePushRefused
from orchestration.resources.platforms.demo import DemoBidPlatform
from orchestration.resources.platforms.google_ads import GoogleAdsBidPlatform
from orchestration.resources.platforms.meta import MetaBidPlatform
from orchestration.resources.platforms.microsoft import MicrosoftAdsBidPlatform
from orchestration.resources.platforms.tiktok import TikTokBidPlatform

__all__ = [
    "BidPlatform",
    "DemoBidPlatform",
    "GoogleAdsBidPlatform",
    "LivePushRefused",
    "MetaBidPlatform",
    "MicrosoftAdsBidPlatform",
    "TikTokBidPlatform",
]
