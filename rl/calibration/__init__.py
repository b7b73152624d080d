"""Calibration math: fitting the market simulator to what the account's reports show (pure Python, no Dagster)."""
