"""Criteo attribution layout: reading plain and gzip files the test writes, clear errors for bad values, and the
response model on the aggregated cells with a time split by timestamp."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rl.calibration.criteo import (
    CAT_COLUMNS,
    DAY_SECONDS,
    REQUIRED_COLUMNS,
    CriteoFormatError,
    criteo_cells,
    fit_criteo_response,
    read_criteo,
)
from rl.calibration.response import InsufficientDataError

HEADER = [
    "timestamp",
    "uid",
    "campaign",
    "conversion",
    "conversion_timestamp",
    "conversion_id",
    "attribution",
    "click",
    "click_pos",
    "click_nb",
    "cost",
    "cpo",
    "time_since_last_click",
    *CAT_COLUMNS,
]


def criteo_like(n: int = 30_000, days: int = 20, seed: int = 0) -> list[dict]:
    """Impressions in the public file's layout: campaign and cat1 set click and conversion rates."""
    rng = np.random.default_rng(seed)
    ctr = {11: 0.25, 22: 0.4, 33: 0.15}
    cvr = {11: 0.04, 22: 0.12, 33: 0.07}
    cat1_mult = {"100": 0.5, "200": 1.0, "300": 2.0}
    rows = []
    for t in np.sort(rng.integers(0, days * DAY_SECONDS, n)):
        camp = int(rng.choice(list(ctr)))
        cat1 = str(rng.choice(list(cat1_mult)))
        click = int(rng.random() < ctr[camp])
        conv = int(rng.random() < (cvr[camp] * cat1_mult[cat1] if click else 0.005))
        conv_ts = int(t + rng.integers(60, 5 * DAY_SECONDS)) if conv else -1
        rows.append(
            {
                "timestamp": int(t),
                "uid": int(rng.integers(1, 10**6)),
                "campaign": camp,
                "conversion": conv,
                "conversion_timestamp": conv_ts,
                "conversion_id": int(rng.integers(1, 10**6)) if conv else -1,
                "attribution": int(conv and click),
                "click": click,
                "click_pos": 0 if click else -1,
                "click_nb": 1 if click else -1,
                "cost": round(float(rng.gamma(2.0, 1e-4)), 8),
                "cpo": round(float(rng.gamma(2.0, 0.05)), 6),
                "time_since_last_click": -1,
                "cat1": cat1,
                **{c: str(int(rng.integers(0, 5))) for c in CAT_COLUMNS[1:]},
            }
        )
    return rows


def write_tsv(path: Path, rows: list[dict], header: list[str] = HEADER) -> Path:
    lines = ["\t".join(header)] + ["\t".join(str(r[c]) for c in header) for r in rows]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return criteo_like()


@pytest.mark.parametrize("name", ["criteo.tsv", "criteo_attribution_dataset.tsv.gz"])
def test_reads_plain_and_gzip_files(tmp_path, rows, name):
    frame = read_criteo(write_tsv(tmp_path / name, rows[:500]))
    assert frame.height == 500
    assert frame.columns == HEADER  # extras kept, order kept
    assert frame.schema["timestamp"] == pl.Int64 and frame.schema["cost"] == pl.Float64
    assert frame.schema["cat1"] == pl.String and frame.schema["attribution"] == pl.Int64
    assert frame["conversion"].sum() == sum(r["conversion"] for r in rows[:500])


def test_only_the_named_columns_are_required(tmp_path, rows):
    header = [*REQUIRED_COLUMNS, "my_note"]
    frame = read_criteo(write_tsv(tmp_path / "min.tsv", [r | {"my_note": "x"} for r in rows[:50]], header))
    assert frame["my_note"].to_list() == ["x"] * 50
    missing = [c for c in HEADER if c != "cpo"]
    with pytest.raises(CriteoFormatError, match=r"missing.tsv: missing required column\(s\) \['cpo'\]"):
        read_criteo(write_tsv(tmp_path / "missing.tsv", rows[:5], missing))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("click", 2, r"line 5, column 'click': must be 0 or 1, got 2"),
        ("conversion", "yes", r"line 5, column 'conversion': not an integer, got 'yes'"),
        ("timestamp", -7, r"line 5, column 'timestamp': timestamp must be a non-negative integer, got -7"),
        ("cost", "nan", r"line 5, column 'cost': not a finite number, got 'nan'"),
        ("cpo", -1.5, r"line 5, column 'cpo': must be non-negative, got -1.5"),
        ("cat3", "", r"line 5, column 'cat3': empty value"),
    ],
)
def test_bad_values_name_file_line_column_and_value(tmp_path, rows, column, value, message):
    bad = [dict(r) for r in rows[:10]]
    bad[3][column] = value  # data row 4 = line 5 (the header is line 1)
    path = write_tsv(tmp_path / "bad.tsv.gz", bad)
    with pytest.raises(CriteoFormatError, match=f"bad.tsv.gz: {message}"):
        read_criteo(path)


def test_conversion_timestamp_must_agree_with_conversion(tmp_path, rows):
    no_conv = next(i for i, r in enumerate(rows) if r["conversion"] == 0)
    bad = [dict(r) for r in rows[: no_conv + 1]]
    bad[no_conv]["conversion_timestamp"] = 123
    with pytest.raises(CriteoFormatError, match=rf"line {no_conv + 2}, column 'conversion_timestamp': must be -1"):
        read_criteo(write_tsv(tmp_path / "a.tsv", bad))
    conv = next(i for i, r in enumerate(rows) if r["conversion"] == 1)
    bad = [dict(r) for r in rows[: conv + 1]]
    bad[conv]["conversion_timestamp"] = bad[conv]["timestamp"] - 1
    with pytest.raises(CriteoFormatError, match="at or after the impression's timestamp"):
        read_criteo(write_tsv(tmp_path / "b.tsv", bad))


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(CriteoFormatError, match="empty file"):
        read_criteo(tmp_path / "empty.tsv")
    with pytest.raises(CriteoFormatError, match="no data rows"):
        read_criteo(write_tsv(tmp_path / "header_only.tsv", []))


def test_cells_aggregate_clicked_impressions(tmp_path, rows):
    frame = read_criteo(write_tsv(tmp_path / "c.tsv", rows))
    cells = criteo_cells(frame, "conversion", ("campaign", "cat1"), holdout_days=5)
    clicked = frame.filter(pl.col("click") == 1)
    assert cells["trials"].sum() == clicked.height
    assert cells["successes"].sum() == clicked["conversion"].sum()
    assert cells["day"].max() == 19
    lumped = criteo_cells(frame, "click", ("campaign", "cat2"), holdout_days=5, max_levels=2)
    levels = set(lumped["cat2"].unique())
    assert "__other__" in levels and len(levels - {"__other__"}) == 2
    assert lumped["trials"].sum() == frame.height


def test_fit_criteo_response_beats_the_frequency_baseline(tmp_path, rows):
    path = write_tsv(tmp_path / "criteo_attribution_dataset.tsv.gz", rows)
    result = fit_criteo_response(path, target="conversion", features=("campaign", "cat1"), holdout_days=6)
    m = result.metrics
    assert (m["train_last_date"], m["holdout_first_date"], m["holdout_last_date"]) == ("13", "14", "19")
    assert m["holdout_auc"] > m["baseline_auc"] > 0.5
    assert m["holdout_logloss"] < m["baseline_logloss"] < m["global_baseline_logloss"]
    assert m["logloss_gain"] > 2 * m["logloss_gain_se"]
    assert m["target"] == "conversion" and m["source"] == str(path)
    coef = result.model.coefficients()
    assert coef["cat1=300"] > coef["cat1=200"] > coef["cat1=100"]

    clicks = fit_criteo_response(path, target="click", features=("campaign",), holdout_days=6)
    assert clicks.metrics["holdout_auc"] > 0.55
    assert clicks.metrics["n_holdout_trials"] + clicks.metrics["n_train_trials"] == len(rows)


def test_too_little_criteo_data(tmp_path, rows):
    one_day = [r for r in rows if r["timestamp"] < DAY_SECONDS]
    path = write_tsv(tmp_path / "one_day.tsv", one_day)
    with pytest.raises(InsufficientDataError, match="no training trials before the 3-day holdout: the window 0..0"):
        fit_criteo_response(path, features=("campaign",), holdout_days=3)
    late_campaign = [r for r in rows if r["campaign"] != 33 or r["timestamp"] >= 15 * DAY_SECONDS]
    path = write_tsv(tmp_path / "late.tsv", late_campaign)
    with pytest.raises(InsufficientDataError, match=r"campaign 33 has zero training clicks in 0..13"):
        fit_criteo_response(path, features=("campaign",), holdout_days=6, max_levels=1)
    kept = fit_criteo_response(path, features=("campaign",), holdout_days=6, drop_unseen_campaigns=True)
    assert kept.metrics["dropped_unseen_trials"] > 0
    assert "campaign=33" not in kept.model.coefficients()
    with pytest.raises(ValueError, match="features must include 'campaign'"):
        fit_criteo_response(path, features=("cat1",))
