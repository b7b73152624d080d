"""The `account` resource: the account's settings (`rl.account.AccountSettings`) handed to the assets.

`build_resources` fills it from `orchestration.environment.account_settings()` (environment or file, read there
only); the fields have no defaults of their own, so the values always come from that one place.
"""

from __future__ import annotations

import dagster as dg

from rl.account import AccountSettings


class AccountResource(dg.ConfigurableResource):
    """Daily budget, target CPA, currency, time zone, largest change per day and max bid multiple of the account
    GAELP bids for."""

    daily_budget: float
    target_cpa: float
    currency: str
    time_zone: str
    max_step: float
    max_bid_multiple: float

    @classmethod
    def from_settings(cls, settings: AccountSettings) -> AccountResource:
        return cls(**settings.as_dict())

    def settings(self) -> AccountSettings:
        """The plain value `rl/` takes (validated)."""
        return AccountSettings(
            daily_budget=self.daily_budget,
            target_cpa=self.target_cpa,
            currency=self.currency,
            time_zone=self.time_zone,
            max_step=self.max_step,
            max_bid_multiple=self.max_bid_multiple,
        )
