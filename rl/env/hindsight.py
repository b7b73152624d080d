"""What only hindsight or the hidden truth can answer about the markets of a `MarketBatch`: the clairvoyant oracle
(today's draws) and the greedy informed oracle (true parameters and state). Evaluation only; no observation or
reward ever reads these.
"""

from __future__ import annotations

import numpy as np

from rl.env.settings import Settings, encode_action
from rl.market.draws import DayDraws, draw_day
from rl.market.engine import MarketState
from rl.policies.oracle import DEFAULT_BID_MULTIPLIERS, OracleResult, clairvoyant_oracle, informed_oracle


class Hindsight:
    """Mixin of `rl.env.core.MarketBatch`: the yardsticks that read today's draws or the hidden state."""

    def market_view(self, m: int) -> tuple[DayDraws, MarketState]:
        """Today's draws and state of market m alone (identical numbers to its slice of the batched day)."""
        rng = [np.random.default_rng([self.setup.market_seed, m, self.date.toordinal()])]
        volume = None if self.setup.volume_scale is None else self.setup.volume_scale[m : m + 1]
        draws = draw_day(self.cm, self.date, rng, volume)
        state = MarketState(self.state.exposure[m : m + 1].copy(), self.state.comp_shift[m : m + 1].copy())
        return draws, state

    def oracle_result(self, m: int, budget_step: float = 5.0, multipliers=DEFAULT_BID_MULTIPLIERS) -> OracleResult:
        """The clairvoyant (hindsight) best budgets and bids for today in market m."""
        draws, state = self.market_view(m)
        return clairvoyant_oracle(self.cm, draws, state, budget_step=budget_step, multipliers=multipliers)

    def oracle_actions(self, budget_step: float = 5.0, multipliers=DEFAULT_BID_MULTIPLIERS) -> np.ndarray:
        """[M, 2C] actions whose targets are the oracle's budgets and bids (the guardrails still apply: with the
        default step limit this is the step-limited oracle, with max_step=None the exact per-day oracle)."""
        out = np.empty((self.n_markets, self.schema.action_size))
        for m in range(self.n_markets):
            o = self.oracle_result(m, budget_step, multipliers)
            now = self.settings.market(m)
            out[m] = encode_action(Settings(o.budgets, o.bids, now.device, now.hours), self.limits)
        return out

    def informed_actions(
        self, replicates: int = 8, budget_step: float = 5.0, multipliers=DEFAULT_BID_MULTIPLIERS
    ) -> np.ndarray:
        """[M, 2C] actions for the informed oracle's settings: the best expected-score budgets and bids for today
        given the true parameters and state, from `replicates` independent draws of today (never today's own
        draws). Evaluation only: it reads the hidden truth."""
        out = np.empty((self.n_markets, self.schema.action_size))
        volume = self.setup.volume_scale
        for m in range(self.n_markets):
            _, state = self.market_view(m)
            reps = [
                draw_day(
                    self.cm,
                    self.date,
                    [np.random.default_rng([self.setup.market_seed, m, self.date.toordinal(), 7919, r])],
                    None if volume is None else volume[m : m + 1],
                )
                for r in range(replicates)
            ]
            budgets, bids, _ = informed_oracle(self.cm, reps, state, budget_step=budget_step, multipliers=multipliers)
            now = self.settings.market(m)
            out[m] = encode_action(Settings(budgets, bids, now.device, now.hours), self.limits)
        return out
