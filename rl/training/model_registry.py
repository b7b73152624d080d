"""The policy registry and the promotion gate.

Every trained model is kept: its file under `model_dir` (policy-v<version>.zip) and a row in the DuckDB table
`policy_registry` with its observation schema, params hash, data window, algorithm, timesteps, evaluation scores and
gate decision. At most one model is promoted at a time; `promote` refuses a model whose gate failed.

    reg = ModelRegistry(con, model_dir)
    entry = reg.register(model_path, schema=..., params_hash=..., window=(first, last), evaluation=ev, algo="ppo")
    if entry.gate_passed: reg.promote(entry.version)
    policy = reg.load_policy(reg.promoted())   # SB3Policy; schema checked against the current registry schema
    reg.best_baseline()                        # fallback for the bid plan when nothing is promoted

`gate(evaluation)` is pure: a model passes only if, for every baseline, the paired confidence interval of (policy −
baseline) score lies above zero, and it never spent above the daily budget on any evaluated day.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from rl.env.schema import ObservationSchema
from rl.evaluation.evaluate import Evaluation
from rl.policies.base import Policy
from rl.policies.sb3 import SB3Policy
from rl.training.train import ALGOS, load_model

TABLE = "policy_registry"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    version INTEGER PRIMARY KEY,
    registered_at TIMESTAMP NOT NULL,
    algo VARCHAR NOT NULL,
    model_path VARCHAR NOT NULL,
    observation_schema VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    params_hash VARCHAR NOT NULL,
    window_first DATE,
    window_last DATE,
    source VARCHAR,
    timesteps BIGINT,
    policy_score DOUBLE,
    best_baseline VARCHAR,
    best_baseline_score DOUBLE,
    evaluation VARCHAR,
    gate_passed BOOLEAN NOT NULL,
    gate_reasons VARCHAR NOT NULL,
    promoted BOOLEAN NOT NULL DEFAULT FALSE,
    promoted_at TIMESTAMP
)
"""


class ModelRegistryError(RuntimeError):
    """A registry operation cannot be done (unknown version, failed gate, incompatible schema...)."""


class IncompatibleModelError(ModelRegistryError):
    """The model was trained for an observation schema the current campaign registry no longer matches."""


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str]


def gate(evaluation: Evaluation | Mapping) -> GateDecision:
    """Promote only if the policy beats every baseline (paired interval above zero) and never exceeds budget."""
    ev = evaluation if isinstance(evaluation, Evaluation) else Evaluation.from_dict(evaluation)
    reasons: list[str] = []
    if not ev.baselines:
        reasons.append("no baselines were evaluated: nothing shows the policy is better than the rules")
    for name, ci in ev.comparisons.items():
        if not ci.low > 0:
            reasons.append(
                f"does not beat {name}: policy − {name} = {ci.mean:+.3f} "
                f"({ci.level:.0%} paired CI {ci.low:+.3f} .. {ci.high:+.3f}, n={ci.n})"
            )
    over = sum(ev.results[ev.policy].get("days_over_budget", []))
    if over > 0:
        reasons.append(f"exceeded the daily budget on {int(over)} evaluated day(s)")
    world_over = ((ev.world or {}).get("world") or {}).get("days_over_budget", 0)
    if world_over:
        reasons.append(f"exceeded the daily budget on {int(world_over)} day(s) in the demo world")
    return GateDecision(passed=not reasons, reasons=reasons or ["beats every baseline and never exceeds budget"])


@dataclass(frozen=True)
class RegisteredModel:
    version: int
    registered_at: dt.datetime
    algo: str
    model_path: Path
    schema: ObservationSchema
    params_hash: str
    window_first: dt.date | None
    window_last: dt.date | None
    source: str | None
    timesteps: int | None
    policy_score: float | None
    best_baseline: str | None
    evaluation: dict | None
    gate_passed: bool
    gate_reasons: list[str]
    promoted: bool
    promoted_at: dt.datetime | None = None
    extra: dict = field(default_factory=dict)


_COLUMNS = (
    "version, registered_at, algo, model_path, observation_schema, params_hash, window_first, window_last, source, "
    "timesteps, policy_score, best_baseline, evaluation, gate_passed, gate_reasons, promoted, promoted_at"
)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class ModelRegistry:
    def __init__(self, con: duckdb.DuckDBPyConnection, model_dir: Path):
        self.con = con
        self.model_dir = Path(model_dir)
        self.con.execute(_DDL)

    # -- writing ------------------------------------------------------------------------------------------------
    def register(
        self,
        model_path: Path,
        schema: ObservationSchema,
        params_hash: str,
        window: tuple[dt.date | str | None, dt.date | str | None] = (None, None),
        evaluation: Evaluation | Mapping | None = None,
        algo: str = "ppo",
        timesteps: int | None = None,
        source: str | None = None,
    ) -> RegisteredModel:
        """Copy the model file into `model_dir` and record it with its schema, params hash, window and scores."""
        model_path = Path(model_path)
        if not model_path.exists():
            raise ModelRegistryError(f"model file not found: {model_path}")
        if algo not in ALGOS:
            raise ModelRegistryError(f"unknown algo {algo!r} (known: {sorted(ALGOS)})")
        ev = None
        if evaluation is not None:
            ev = evaluation if isinstance(evaluation, Evaluation) else Evaluation.from_dict(evaluation)
        decision = gate(ev) if ev is not None else GateDecision(False, ["not evaluated"])
        version = int(self.con.execute(f"SELECT coalesce(max(version), 0) + 1 FROM {TABLE}").fetchone()[0])
        self.model_dir.mkdir(parents=True, exist_ok=True)
        stored = self.model_dir / f"policy-v{version}.zip"
        shutil.copyfile(model_path, stored)
        best = ev.best_baseline() if ev is not None else None
        first, last = (None if w is None else dt.date.fromisoformat(str(w)) for w in window)
        self.con.execute(
            f"INSERT INTO {TABLE} (version, registered_at, algo, model_path, observation_schema, schema_version, "
            "params_hash, window_first, window_last, source, timesteps, policy_score, best_baseline, "
            "best_baseline_score, evaluation, gate_passed, gate_reasons, promoted) "
            "VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE)",
            [
                version,
                algo,
                str(stored),
                schema.to_json(),
                schema.version,
                params_hash,
                first,
                last,
                source,
                timesteps,
                _finite(ev.mean(ev.policy)) if ev else None,
                best,
                _finite(ev.mean(best)) if best else None,
                json.dumps(ev.to_dict(), default=str) if ev else None,
                decision.passed,
                json.dumps(decision.reasons),
            ],
        )
        return self.get(version)

    def promote(self, version: int) -> RegisteredModel:
        """Make `version` the one promoted model; refuses a model whose gate did not pass."""
        entry = self.get(version)
        if not entry.gate_passed:
            raise ModelRegistryError(
                f"model v{version} did not pass the promotion gate: " + "; ".join(entry.gate_reasons)
            )
        self.con.execute(f"UPDATE {TABLE} SET promoted = FALSE, promoted_at = NULL WHERE promoted")
        self.con.execute(f"UPDATE {TABLE} SET promoted = TRUE, promoted_at = now() WHERE version = ?", [version])
        return self.get(version)

    # -- reading ------------------------------------------------------------------------------------------------
    def _row(self, row) -> RegisteredModel:
        (ver, at, algo, path, schema, ph, wf, wl, src, ts, score, best, ev, passed, reasons, promoted, p_at) = row
        return RegisteredModel(
            version=int(ver),
            registered_at=at,
            algo=algo,
            model_path=Path(path),
            schema=ObservationSchema.from_json(schema),
            params_hash=ph,
            window_first=wf,
            window_last=wl,
            source=src,
            timesteps=ts,
            policy_score=score,
            best_baseline=best,
            evaluation=json.loads(ev) if ev else None,
            gate_passed=bool(passed),
            gate_reasons=json.loads(reasons),
            promoted=bool(promoted),
            promoted_at=p_at,
        )

    def get(self, version: int) -> RegisteredModel:
        row = self.con.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE version = ?", [version]).fetchone()
        if row is None:
            raise ModelRegistryError(f"no registered model v{version}")
        return self._row(row)

    def all(self) -> list[RegisteredModel]:
        return [self._row(r) for r in self.con.execute(f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY version").fetchall()]

    def latest(self) -> RegisteredModel | None:
        row = self.con.execute(f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY version DESC LIMIT 1").fetchone()
        return None if row is None else self._row(row)

    def promoted(self) -> RegisteredModel | None:
        row = self.con.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE promoted").fetchone()
        return None if row is None else self._row(row)

    def best_baseline(self) -> str | None:
        """The best baseline of the latest evaluated model (the bid plan's fallback when nothing is promoted)."""
        row = self.con.execute(
            f"SELECT best_baseline FROM {TABLE} WHERE evaluation IS NOT NULL ORDER BY version DESC LIMIT 1"
        ).fetchone()
        return None if row is None else row[0]

    def load_policy(self, entry: RegisteredModel, schema: ObservationSchema | None = None) -> Policy:
        """The model as an `SB3Policy`, after checking its stored schema against `schema` (default: the current
        campaign registry's). Raises `IncompatibleModelError` naming the difference."""
        current = ObservationSchema.from_registry() if schema is None else schema
        try:
            current.check_compatible(entry.schema)
        except ValueError as err:
            raise IncompatibleModelError(
                f"model v{entry.version} was trained for a different observation schema than the current one "
                f"({err}); retrain the policy for the current campaign registry"
            ) from None
        model = load_model(entry.model_path, entry.algo)
        return SB3Policy(model, name=f"policy-v{entry.version}")
