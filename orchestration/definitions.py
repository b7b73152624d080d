"""The one `dg.Definitions` of the GAELP code location (loaded by workspace.yaml).

Assets come one module per stage from assets/; resources are chosen by environment in orchestration/resources.
"""

import dagster as dg

from assets.discovery import DISCOVERY_ASSETS
from assets.ingestion import INGESTION_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.jobs import daily_data_job, ingestion_job, warehouse_job
from orchestration.resources import build_resources

defs = dg.Definitions(
    assets=[*INGESTION_ASSETS, *WAREHOUSE_ASSETS, *DISCOVERY_ASSETS],
    jobs=[ingestion_job, warehouse_job, daily_data_job],
    resources=build_resources(),
)
