"""Bid plans and their pushes: the plan row type, the push protocol and the push audit table (no Dagster here)."""
