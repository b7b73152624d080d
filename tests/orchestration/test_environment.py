"""The environment is chosen in one place and a typo is an error, not a silent fallback to demo."""

import pytest

from orchestration.environment import Environment, current_environment


def test_demo_is_the_default(monkeypatch):
    monkeypatch.delenv("GAELP_ENV", raising=False)
    assert current_environment() is Environment.DEMO


def test_prod_is_selected_explicitly(monkeypatch):
    monkeypatch.setenv("GAELP_ENV", " PROD ")
    assert current_environment() is Environment.PROD


def test_unknown_environment_names_the_value(monkeypatch):
    monkeypatch.setenv("GAELP_ENV", "staging")
    with pytest.raises(ValueError, match="'staging'.*accepted: demo, prod"):
        current_environment()


def test_definitions_load():
    from orchestration.definitions import defs

    defs.resolve_all_job_defs()  # raises if the code location cannot be loaded
