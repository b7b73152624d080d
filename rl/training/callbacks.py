"""Training callbacks: the learning curve in true scores, and the wall-clock budget of a run."""

from __future__ import annotations

import time

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


class LearningCurve(BaseCallback):
    """Records every finished reset cycle's mean true score and return (from the infos' "episode_summary")."""

    def __init__(self, sink: list[dict]):
        super().__init__()
        self.sink = sink

    def _on_step(self) -> bool:
        summaries = [i["episode_summary"] for i in self.locals.get("infos", []) if "episode_summary" in i]
        if summaries:
            score = float(np.mean([s["score"] for s in summaries]))
            ret = float(np.mean([s["return"] for s in summaries]))
            self.sink.append({"timesteps": int(self.num_timesteps), "score": score, "return": ret})
            self.logger.record("episode/score", score)
            self.logger.record("episode/return", ret)
        return True


class WallClockLimit(BaseCallback):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()
        self.hit = False

    def _on_step(self) -> bool:
        if time.perf_counter() - self.start > self.seconds:
            self.hit = True
            return False
        return True
