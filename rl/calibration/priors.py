"""What calibration takes as known rather than fitted: the platforms' auction structure (public documentation and
industry figures) and the spread of quantities the reports cannot identify.

None of it comes from the demo world's file: slots and position click-through rates are the reference account's
observed search figures (DESIGN.md, "Reference account facts"), reserves are the platforms' published floors in
round numbers. Each is flagged in the calibration output as a prior.
"""

from __future__ import annotations

from rl.calibration.auction import AuctionStructure

SEARCH_POSITION_CTR = (0.065, 0.032, 0.021, 0.016)  # reference account, slots 1-4
SOCIAL_BASE_CTR = 0.01  # per impression; the campaign's fitted multiplier carries the level

STRUCTURES: dict[str, AuctionStructure] = {
    "google_ads": AuctionStructure("search", 4, tuple(c / SEARCH_POSITION_CTR[0] for c in SEARCH_POSITION_CTR), 0.3),
    "microsoft_ads": AuctionStructure(
        "search", 3, tuple(c / SEARCH_POSITION_CTR[0] for c in SEARCH_POSITION_CTR[:3]), 0.25
    ),
    "meta": AuctionStructure("social", 1, (1.0,), 2.0),
    "tiktok": AuctionStructure("social", 1, (1.0,), 1.5),
}

# Lag ranges (whole days, both ends included) of the basis segments a campaign's lag distribution is mixed from.
LAG_BASIS: tuple[tuple[int, int], ...] = ((0, 1), (1, 3), (3, 7), (5, 14), (7, 21), (14, 29))
VALUE_SIGMA = 0.3  # order values are only reported as sums: their spread is a prior
MATURE_DAYS = 30  # click dates at least this old have (nearly) all their conversions reported


def structure(platform: str) -> AuctionStructure:
    if platform not in STRUCTURES:
        raise ValueError(f"no auction structure is known for platform {platform!r} (known: {sorted(STRUCTURES)})")
    return STRUCTURES[platform]
