"""The learning environment: one market (`BiddingEnv`) or many in one numpy call (`BatchedBiddingVecEnv`).

Pure Python (no Dagster). Observations come only from reported metrics (`rl.env.observation`), actions pass through
`rl.env.guardrails`, rewards are reported-score increments (`rl.env.reward`), the layout is `rl.env.schema`.
"""

from rl.env.core import EnvConfig, EpisodeSetup, MarketBatch
from rl.env.env import BiddingEnv
from rl.env.guardrails import ActionCodec, GuardrailLimits, apply_guardrails, encode_settings
from rl.env.schema import SCHEMA_VERSION, ObservationSchema
from rl.env.settings import Settings, apply_action, encode_action
from rl.env.vec_env import BatchedBiddingVecEnv

__all__ = [
    "SCHEMA_VERSION",
    "ActionCodec",
    "BatchedBiddingVecEnv",
    "BiddingEnv",
    "EnvConfig",
    "EpisodeSetup",
    "GuardrailLimits",
    "MarketBatch",
    "ObservationSchema",
    "Settings",
    "apply_action",
    "apply_guardrails",
    "encode_action",
    "encode_settings",
]
