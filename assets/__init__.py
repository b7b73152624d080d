"""Thin Dagster assets, one module per stage (ingestion, warehouse, discovery, calibration, learning, bidding,
reporting): they call rl/ or SQL and attach metadata; no business math lives here."""
