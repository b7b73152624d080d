"""The account settings: one typed value, read from a file and the environment, each bad value named."""

from __future__ import annotations

import pytest

from rl.account import AccountSettings, AccountSettingsError


def test_the_environment_overrides_the_file_field_by_field(tmp_path):
    path = tmp_path / "account.yaml"
    path.write_text("daily_budget: 800\nmax_bid_multiple: 2.5\n")
    settings = AccountSettings.from_sources(
        {"GAELP_ACCOUNT_FILE": str(path), "GAELP_MAX_BID_MULTIPLE": "3", "GAELP_TARGET_CPA": "80"}
    )
    assert (settings.daily_budget, settings.target_cpa, settings.max_bid_multiple) == (800.0, 80.0, 3.0)
    assert AccountSettings.from_sources({}) == AccountSettings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GAELP_MAX_BID_MULTIPLE": "0.5"}, "max_bid_multiple must be >= 1"),
        ({"GAELP_MAX_BID_MULTIPLE": "nan"}, "max_bid_multiple must be >= 1"),
        ({"GAELP_MAX_BID_MULTIPLE": "twice"}, "max_bid_multiple='twice' is not a float"),
        ({"GAELP_MAX_DAILY_STEP": "1.5"}, "max_step must be in (0, 1]"),
    ],
)
def test_a_bad_setting_is_named(environ, message):
    with pytest.raises(AccountSettingsError, match=message.replace("(", r"\(").replace("]", r"\]")):
        AccountSettings.from_sources(environ)
