"""The one `dg.Definitions` of the GAELP code location (loaded by workspace.yaml).

Assets come one module per stage from assets/; resources are chosen by environment in orchestration/resources;
jobs, schedules and sensors are wired here and defined next door.
"""

import dagster as dg

from assets.accounts import ACCOUNT_ASSETS
from assets.bidding import BIDDING_ASSETS
from assets.calibration import CALIBRATION_ASSETS
from assets.discovery import DISCOVERY_ASSETS
from assets.ingestion import INGESTION_ASSETS
from assets.learning import LEARNING_ASSETS
from assets.reporting import REPORTING_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.jobs import (
    bidding_loop_job,
    daily_bidding_job,
    daily_data_job,
    ingestion_job,
    recover_window_job,
    retrain_job,
    safe_push_job,
    warehouse_job,
)
from orchestration.resources import build_resources
from orchestration.schedules import SCHEDULES
from orchestration.sensors import SENSORS

defs = dg.Definitions(
    assets=[
        *INGESTION_ASSETS,
        *WAREHOUSE_ASSETS,
        *DISCOVERY_ASSETS,
        *CALIBRATION_ASSETS,
        *LEARNING_ASSETS,
        *BIDDING_ASSETS,
        *REPORTING_ASSETS,
        *ACCOUNT_ASSETS,
    ],
    jobs=[
        ingestion_job,
        recover_window_job,
        warehouse_job,
        daily_data_job,
        daily_bidding_job,
        bidding_loop_job,
        safe_push_job,
        retrain_job,
    ],
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=build_resources(),
)
