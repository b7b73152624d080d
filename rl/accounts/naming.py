"""Guesses a reviewer starts from: a campaign's product and audience intent from its name, and how its traffic shows
in GA4 (session source / medium and campaign) from its UTM parameters or the platform's auto-tagging convention.

Names are read the way accounts name campaigns: segments separated by "|", "-", "_" or "/" ("Search | Parental
Controls | Generic"). A segment naming an audience intent sets the intent (brand, generic, competitor, prospecting,
retargeting); a segment naming a channel or platform ("Search", "Meta") says nothing; what is left names the product,
through `PRODUCT_WORDS` (the reference account's product lines) or, failing that, as its own slug. A campaign whose
name names no product gets the account's most common one; a brand campaign's product is the brand. Every guess is a
suggestion the review file marks as such.

GA4: a campaign's own UTM parameters win (Google Ads' final URL suffix, Microsoft's suffix or tracking template);
otherwise the platform's auto-tagged traffic, as the `platform_channels` seed maps it ("google / cpc"), under the
campaign's name (GA4 reports an auto-tagged click's campaign as the platform campaign's name).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from rl.accounts.model import Utm

PLATFORM_CHANNELS_FILE = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "platform_channels.csv"
SEARCH_PLATFORMS = ("google_ads", "microsoft_ads")

# audience intent -> the words that name it in a campaign name (lower case, whole segment or word)
INTENT_WORDS = {
    "brand": ("brand", "branded", "trademark"),
    "generic": ("generic", "non-brand", "nonbrand", "non brand", "nb"),
    "competitor": ("competitor", "competitors", "competitor terms", "conquest", "conquesting"),
    "prospecting": ("prospecting", "acquisition", "cold", "awareness", "tof"),
    "retargeting": ("retargeting", "remarketing", "rtg", "warm", "bof"),
}
# channel and platform words: a segment made of them names neither a product nor an intent
CHANNEL_WORDS = {
    "search", "display", "video", "shopping", "pmax", "performance max", "social", "feed", "stories", "reels",
    "google", "google ads", "adwords", "meta", "facebook", "fb", "instagram", "ig", "tiktok", "microsoft", "bing",
    "microsoft ads", "campaign", "ads", "us", "usa", "uk", "all",
}  # fmt: skip
# product line -> words a segment may contain (the reference account's products; others become their own slug)
PRODUCT_WORDS = {
    "parental_controls": ("parental control", "parental controls", "family safety", "screen time"),
    "identity_protection": ("identity", "identity theft", "credit monitoring", "credit protection"),
    "antivirus": ("antivirus", "anti-virus", "malware", "security suite"),
    "wellbeing_app": ("wellbeing", "well-being", "wellness"),
}
_SEPARATORS = re.compile(r"\s*[|/_]\s*|\s+-\s+")


def segments(name: str) -> list[str]:
    """A campaign name's segments, lower case, without blanks around them."""
    return [s.strip().lower() for s in _SEPARATORS.split(name) if s.strip()]


def guess_intent(platform: str, name: str) -> tuple[str, bool]:
    """(intent, named): the intent a segment names, else the platform's default (search: generic, social:
    prospecting) with named=False."""
    for segment in segments(name):
        for intent, words in INTENT_WORDS.items():
            if segment in words or any(re.search(rf"\b{re.escape(w)}\b", segment) for w in words if len(w) > 3):
                return intent, True
    return ("generic" if platform in SEARCH_PLATFORMS else "prospecting"), False


def _named_product(name: str) -> str | None:
    for segment in segments(name):
        if segment in CHANNEL_WORDS or any(segment in words for words in INTENT_WORDS.values()):
            continue
        for product, words in PRODUCT_WORDS.items():
            if any(w in segment for w in words):
                return product
        slug = re.sub(r"[^a-z0-9]+", "_", segment).strip("_")
        if slug and not slug.isdigit():
            return slug
    return None


def guess_products(campaigns: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """For each (platform, name): (product, None) when the name says it, else (guess, why it is a guess): a brand
    campaign's product is "brand"; a campaign naming no product gets the account's most common named product."""
    named = [_named_product(name) for _, name in campaigns]
    intents = [guess_intent(platform, name)[0] for platform, name in campaigns]
    common = Counter(p for p, i in zip(named, intents, strict=True) if p and i != "brand").most_common(1)
    default = common[0][0] if common else "unknown"
    out: list[tuple[str, str | None]] = []
    for product, intent in zip(named, intents, strict=True):
        if intent == "brand":
            out.append(("brand", None))
        elif product:
            out.append((product, None))
        else:
            out.append((default, f"product guessed: the name names none, the account's most common is {default}"))
    return out


def parse_utm(*texts: str | None) -> Utm:
    """The UTM parameters of a URL suffix ("utm_source=google&utm_medium=cpc") or a tracking template
    ("{lpurl}?utm_source=bing&..."); the first text that sets a parameter wins."""
    found: dict[str, str] = {}
    for text in texts:
        if not text:
            continue
        query = urlsplit(text).query if "?" in text else text
        for key, value in parse_qsl(query.lstrip("?"), keep_blank_values=False):
            key = key.strip().lower()
            if key in ("utm_source", "utm_medium", "utm_campaign") and value.strip():
                found.setdefault(key, value.strip())
    return Utm(found.get("utm_source"), found.get("utm_medium"), found.get("utm_campaign"))


def platform_channels(path: str | Path = PLATFORM_CHANNELS_FILE) -> dict[str, str]:
    """platform -> GA4 source / medium of its auto-tagged traffic (the `platform_channels` dbt seed)."""
    with open(path, newline="") as f:
        return {r["platform"]: r["ga4_source_medium"] for r in csv.DictReader(f)}


def ga4_mapping(platform: str, name: str, utm: Utm, channels: dict[str, str]) -> tuple[str, str]:
    """(GA4 session source / medium, GA4 campaign name) the campaign's clicks arrive under. A UTM campaign value that
    is a platform placeholder ({campaignname}, {{campaign.name}}, __CAMPAIGN_NAME__...) is the campaign's name."""
    if utm.source and utm.medium:
        source_medium = f"{utm.source} / {utm.medium}".lower()
    else:
        source_medium = channels.get(platform, "")
    campaign = utm.campaign
    if not campaign or "{" in campaign or "__" in campaign:
        campaign = name
    return source_medium, campaign.strip().lower()


def conventional_mapping(platform: str, name: str, channels: dict[str, str]) -> tuple[str, str]:
    """The mapping the warehouse applies when none is given (dim_campaign): the platform's source / medium and the
    campaign name in lower case."""
    return channels.get(platform, ""), name.strip().lower()
