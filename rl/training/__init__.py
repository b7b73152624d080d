"""Training bidding policies (SB3), domain randomisation around the calibrated market, the model registry."""
