"""The one `dg.Definitions` of the GAELP code location (loaded by workspace.yaml).

The market engine and demo market (rl/) come first; ingestion, warehouse, discovery, calibration, learning and
bidding assets are added here, one module per stage under assets/, as they are built.
"""

import dagster as dg

from orchestration.environment import current_environment

ENVIRONMENT = current_environment()

defs = dg.Definitions()
