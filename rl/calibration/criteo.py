"""Loader for the public Criteo Attribution Modeling dataset's column layout, and a response model fitted on it.

The file (``criteo_attribution_dataset.tsv.gz``, or any plain/gzip TSV in the same layout) has a header row and one
row per impression. Required columns: timestamp, uid, campaign, conversion, conversion_timestamp, click, cost, cpo,
cat1 … cat9. Other columns (the public file also has conversion_id, attribution, click_pos, click_nb,
time_since_last_click) are kept; the known integer ones are validated as integers, unknown ones kept as text.

Validation (`read_criteo`): timestamp a non-negative integer; uid and campaign integers; conversion and click in
{0, 1}; conversion_timestamp −1 when there is no conversion, otherwise an integer at or after the impression's
timestamp; cost and cpo finite and non-negative; cat1–cat9 non-empty. The first violation raises
`CriteoFormatError` naming the file, the line (the header is line 1), the column and the value.

`fit_criteo_response` turns the impressions into the same aggregated binomial cells the account's response model
trains on — by default trials = clicked impressions, successes = those followed by a conversion (click →
conversion), or trials = impressions, successes = clicks — with day = timestamp // 86400 as the time axis, and
evaluates the same `BinomialLogit` with the same time split and metrics (held-out AUC, log loss, per-campaign and
global frequency baselines), so a model pre-trained or compared on Criteo reads like one trained on the account.
Categoricals keep their `max_levels` most frequent levels *of the training days*; the rest become ``__other__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from rl.calibration.response import (
    CAMPAIGN,
    SUCCESSES,
    TRIALS,
    InsufficientDataError,
    ModelSpec,
    ResponseModel,
    fit_response_model,
)

CAT_COLUMNS = tuple(f"cat{i}" for i in range(1, 10))
INT_COLUMNS = ("timestamp", "uid", "campaign", "conversion", "conversion_timestamp", "click")
FLOAT_COLUMNS = ("cost", "cpo")
REQUIRED_COLUMNS = (*INT_COLUMNS, *FLOAT_COLUMNS, *CAT_COLUMNS)
KNOWN_INT_EXTRAS = ("conversion_id", "attribution", "click_pos", "click_nb", "time_since_last_click")
OTHER = "__other__"
DAY_SECONDS = 86_400


class CriteoFormatError(ValueError):
    """The file does not follow the Criteo attribution layout (missing column, bad value)."""


def _read_header(path: Path) -> list[str]:
    try:
        return pl.read_csv(path, separator="\t", n_rows=0, infer_schema=False, quote_char=None).columns
    except pl.exceptions.NoDataError as exc:
        raise CriteoFormatError(f"{path}: empty file (expected a header row)") from exc


def read_criteo(path: str | Path, n_rows: int | None = None) -> pl.DataFrame:
    """Read and validate a Criteo attribution TSV (plain or .gz). Returns every column: the required integers as
    Int64, cost/cpo as Float64, cat1–cat9 as String, known extras as Int64, unknown extras as String."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    header = _read_header(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CriteoFormatError(f"{path}: missing required column(s) {missing}; header has {header}")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise CriteoFormatError(f"{path}: duplicated column(s) {dupes}")
    ints = [c for c in header if c in INT_COLUMNS or c in KNOWN_INT_EXTRAS]
    floats = list(FLOAT_COLUMNS)
    raw = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None, n_rows=n_rows)
    if raw.height == 0:
        raise CriteoFormatError(f"{path}: no data rows")
    frame = _parse(path, raw, ints, floats)
    _validate(path, frame)
    return frame


def _fail(path: Path, mask: pl.Series, frame: pl.DataFrame, col: str, problem: str) -> None:
    bad = np.flatnonzero(mask.fill_null(True).to_numpy())
    if bad.size:
        i = int(bad[0])
        value = frame[col][i]
        more = f" ({bad.size} rows in all)" if bad.size > 1 else ""
        raise CriteoFormatError(f"{path}: line {i + 2}, column {col!r}: {problem}, got {value!r}{more}")


def _parse(path: Path, raw: pl.DataFrame, ints: Sequence[str], floats: Sequence[str]) -> pl.DataFrame:
    required_text = [*ints, *floats, *CAT_COLUMNS]
    for col in required_text:
        if col in raw.columns:
            _fail(path, raw[col].is_null() | (raw[col].str.strip_chars() == ""), raw, col, "empty value")
    stripped = raw.with_columns(pl.col(c).str.strip_chars() for c in [*ints, *floats])
    typed = stripped.with_columns(
        *(pl.col(c).cast(pl.Int64, strict=False) for c in ints),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in floats),
    )
    for col in ints:
        _fail(path, typed[col].is_null(), raw, col, "not an integer")
    for col in floats:
        _fail(path, typed[col].is_null() | ~typed[col].is_finite(), raw, col, "not a finite number")
    return typed


def _validate(path: Path, f: pl.DataFrame) -> None:
    _fail(path, f["timestamp"] < 0, f, "timestamp", "timestamp must be a non-negative integer")
    for col in ("conversion", "click"):
        _fail(path, ~f[col].is_in([0, 1]), f, col, "must be 0 or 1")
    no_conv = f["conversion"] == 0
    _fail(
        path,
        no_conv & (f["conversion_timestamp"] != -1),
        f,
        "conversion_timestamp",
        "must be -1 when conversion is 0",
    )
    _fail(
        path,
        ~no_conv & (f["conversion_timestamp"] < f["timestamp"]),
        f,
        "conversion_timestamp",
        "a conversion must be at or after the impression's timestamp",
    )
    for col in FLOAT_COLUMNS:
        _fail(path, f[col] < 0, f, col, "must be non-negative")


def criteo_rows(
    frame: pl.DataFrame,
    target: Literal["conversion", "click"] = "conversion",
    features: Sequence[str] = (CAMPAIGN, "cat1"),
    conversion_window_days: float | None = None,
) -> pl.DataFrame:
    """One row per trial: day (timestamp // 86400), the features as text and `successes` (0/1), `trials` (1).

    target "conversion": trials are clicked impressions, success = a conversion followed (click → conversion).
    target "click": trials are impressions, success = a click.
    `conversion_window_days`: count a conversion only within that many days of the impression and drop the
    impressions younger than the window at the end of the file (their label is not yet mature)."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise CriteoFormatError(f"unknown feature column(s) {missing}; columns: {frame.columns}")
    if target == "conversion":
        rows = frame.filter(pl.col("click") == 1)
        success = pl.col("conversion") == 1
        if conversion_window_days is not None:
            window = int(conversion_window_days * DAY_SECONDS)
            end = int(max(frame["timestamp"].max(), frame["conversion_timestamp"].max()))
            rows = rows.filter(pl.col("timestamp") + window <= end)
            success = success & (pl.col("conversion_timestamp") - pl.col("timestamp") <= window)
    elif target == "click":
        rows, success = frame, pl.col("click") == 1
    else:
        raise ValueError(f"target must be 'conversion' or 'click', got {target!r}")
    return rows.select(
        (pl.col("timestamp") // DAY_SECONDS).alias("day"),
        *(pl.col(c).cast(pl.String) for c in features),
        success.cast(pl.Float64).alias(SUCCESSES),
        pl.lit(1.0).alias(TRIALS),
    )


def lump_levels(rows: pl.DataFrame, features: Sequence[str], reference: pl.DataFrame, max_levels: int) -> pl.DataFrame:
    """Keep each feature's `max_levels` most frequent levels in `reference` (by trials); the other levels seen in
    `reference` become ``__other__``. Levels absent from `reference` keep their value (an unknown campaign stays an
    error, never a bucket)."""
    out = rows
    for col in features:
        counts = reference.group_by(col).agg(pl.col(TRIALS).sum()).sort([TRIALS, col], descending=[True, False])
        top, seen = counts.head(max_levels)[col], counts[col]
        out = out.with_columns(
            pl.when(pl.col(col).is_in(top.implode()) | ~pl.col(col).is_in(seen.implode()))
            .then(pl.col(col))
            .otherwise(pl.lit(OTHER))
        )
    return out


def criteo_cells(
    frame: pl.DataFrame,
    target: Literal["conversion", "click"] = "conversion",
    features: Sequence[str] = (CAMPAIGN, "cat1"),
    holdout_days: int = 7,
    max_levels: int = 50,
    conversion_window_days: float | None = None,
) -> pl.DataFrame:
    """Aggregated binomial cells (day × features: trials, successes), levels lumped on the training days only."""
    rows = criteo_rows(frame, target, features, conversion_window_days)
    if rows.height == 0:
        raise InsufficientDataError(f"no {target} trials in the file (target {target!r})")
    cutoff = int(rows["day"].max()) - holdout_days
    rows = lump_levels(rows, features, rows.filter(pl.col("day") <= cutoff), max_levels)
    return rows.group_by(["day", *features]).agg(pl.col(TRIALS).sum(), pl.col(SUCCESSES).sum()).sort(["day", *features])


def fit_criteo_response(
    path: str | Path,
    target: Literal["conversion", "click"] = "conversion",
    features: Sequence[str] = (CAMPAIGN, "cat1", "cat2", "cat3"),
    holdout_days: int = 7,
    max_levels: int = 50,
    l2: float | None = None,
    conversion_window_days: float | None = None,
    n_rows: int | None = None,
    drop_unseen_campaigns: bool = False,
) -> ResponseModel:
    """Response model on a Criteo attribution file: the most recent `holdout_days` days held out, metrics as the
    account's models (holdout_auc, holdout_logloss, baseline_logloss per campaign, global_baseline_logloss, ...),
    then refitted on the whole file. `features` must include ``campaign`` (the baseline's group).

    A campaign with held-out trials but none in the training days is an `InsufficientDataError` naming it, unless
    `drop_unseen_campaigns` — then its rows are dropped and counted in ``dropped_unseen_trials``."""
    if CAMPAIGN not in features:
        raise ValueError(f"features must include {CAMPAIGN!r} (the frequency baseline is per campaign), got {features}")
    frame = read_criteo(path, n_rows=n_rows)
    cells = criteo_cells(frame, target, features, holdout_days, max_levels, conversion_window_days)
    dropped = 0.0
    if drop_unseen_campaigns and cells.height:
        cutoff = int(cells["day"].max()) - holdout_days
        seen = cells.filter((pl.col("day") <= cutoff) & (pl.col(TRIALS) > 0))[CAMPAIGN].unique().implode()
        unseen = ~pl.col(CAMPAIGN).is_in(seen)
        dropped = float(cells.filter(unseen)[TRIALS].sum())
        cells = cells.filter(~unseen)
    spec = ModelSpec(categorical=tuple(features), l2=l2)
    what = "clicks" if target == "conversion" else "impressions"
    model = fit_response_model(f"criteo {target}", cells, spec, holdout_days=holdout_days, what=what, date_col="day")
    model.metrics.update(
        {
            "source": str(path),
            "target": target,
            "features": list(features),
            "max_levels": max_levels,
            "dropped_unseen_trials": dropped,
        }
    )
    return model
