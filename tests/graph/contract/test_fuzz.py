"""Fuzzing the applications contract at its extremes: timestamps near the ends of the calendar and offsets
that push them over, numbers beyond float32 and float64, embeddings whose norm overflows or vanishes, text
with lone surrogates. Whatever a file or an API record holds, reading, validating and preparing it either
accepts a row with stored values that make sense, or rejects the row with its number and a reason (or the
whole file as unreadable); nothing raises. The API's row-by-row preparation must agree with the file path
on every record, so that a record cannot be accepted by one and rejected by the other."""

from __future__ import annotations

import json
import math
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.contract.io import UnreadableFile, records_frame
from graph.contract.prepare import prepare, prepare_file, prepare_records, validate_file
from graph.contract.pseudonymise import Pseudonymiser
from graph.contract.validate import rejects_path
from graph.settings import Settings
from tests.graph.contract_rows import DIM, valid_rows

pytestmark = pytest.mark.slow

P = Pseudonymiser(b"fuzz-test-key-0123456789abcdef0123")
SETTINGS = Settings(data_dir=Path(tempfile.gettempdir()), face_dim=DIM, pseudonym_key="x" * 32)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is reproducible, not flaky
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udc00\ud800", "x\ud83d"])
text = st.one_of(st.text(max_size=12), surrogates, st.text(st.characters(categories=["Cs", "L"]), max_size=4))
OFFSETS = st.sampled_from(["", "Z", "+00:00", "+14:00", "-12:00", "+23:59", "-23:59", "+05:30"])


@st.composite
def iso_times(draw) -> str:
    """ISO-8601 strings across the whole calendar, with offsets that may carry them past either end."""
    t = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    digits = draw(st.integers(0, 9))
    fraction = "." + "".join(str(draw(st.integers(0, 9))) for _ in range(digits)) if digits else ""
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}{draw(st.sampled_from('T '))}"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}{fraction}{draw(OFFSETS)}"
    )


created_values = st.one_of(
    iso_times(),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "0000-12-31T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "1677-09-21T00:12:43.145224191Z",
            "2262-04-11T23:47:16.854775808Z",
            "",
        ]
    ),
    text,
    st.integers(-(10**20), 10**20),
    st.floats(),
)
numbers = st.one_of(
    st.floats(),
    st.floats(width=32),
    st.integers(-(10**40), 10**40),
    st.just(10**400),
    st.sampled_from(["1e999", "-0", "nan", "0x1", "1_0", " 0.5 ", "", "Infinity"]),
    st.booleans(),
    st.none(),
)
extremes = st.sampled_from(
    [
        1e30,
        -1e30,
        1e-45,
        -1e-45,
        0.0,
        -0.0,
        3.4e38,
        1e39,
        1.2e-38,
        1e19,
        1e-20,
        1e-22,
        1.0,
        math.inf,
        math.nan,
    ]
)
embeddings = st.one_of(
    st.lists(extremes, min_size=DIM, max_size=DIM),
    st.lists(st.one_of(extremes, st.floats()), min_size=DIM, max_size=DIM),
    st.builds(lambda v, k: [v] * DIM if k else [v] * (DIM - 1), extremes, st.booleans()),
    st.lists(
        st.one_of(st.integers(-(10**400), 10**400), st.booleans(), st.none(), text),
        min_size=DIM,
        max_size=DIM,
    ),
    st.lists(st.lists(st.floats(), max_size=2), min_size=DIM, max_size=DIM),
    text,
    st.just("[" * 5000 + "]" * 5000),
    st.none(),
)
COLUMNS = {
    "created_at": created_values,
    "date_of_birth": st.one_of(iso_times(), text),
    "face_embedding": embeddings,
    "liveness_score": numbers,
    "document_authenticity_score": numbers,
    "label": numbers,
    "application_id": st.one_of(text, st.integers()),
    "national_id": text,
    "email": text,
    "full_name": text,
    "phone": text,
}


@st.composite
def tables(draw) -> list[dict]:
    """A few valid rows, each with a few columns replaced by extreme values."""
    n = draw(st.integers(1, 4))
    rows = valid_rows(n, seed=draw(st.integers(0, 1000)))
    for row in rows:
        for column in draw(st.lists(st.sampled_from(sorted(COLUMNS)), max_size=3, unique=True)):
            row[column] = draw(COLUMNS[column])
    return rows


def _check_prepared(batch, n: int) -> None:
    """What a prepared batch promises, whatever went in."""
    summary = batch.summary
    assert summary["rows"] == n and summary["accepted"] + summary["rejected"] == n, summary
    assert batch.rejects["reason"].map(lambda r: isinstance(r, str) and len(r) > 5).all()
    assert batch.rejects["row"].between(1, n).all()
    frame = batch.frame
    assert len(frame) == summary["accepted"] and len(batch.faces) == len(batch.face_ids)
    if len(batch.faces):
        assert np.isfinite(batch.faces).all()
        np.testing.assert_allclose(np.linalg.norm(batch.faces, axis=1), 1.0, atol=1e-3)
    for iso, ms in zip(frame.get("created_at_iso", []), frame.get("created_at", []), strict=True):
        parsed = datetime.fromisoformat(iso)
        assert 1 <= parsed.year <= 9999 and parsed.tzinfo is not None
        assert ms == (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    for column in frame.columns:  # everything stored can be written as UTF-8
        for value in frame[column]:
            if isinstance(value, str):
                value.encode("utf-8")


def _write(rows: list[dict], path: Path) -> Path | None:
    """The rows as the file a producer would write, or None where the format cannot hold them."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))  # ensure_ascii escapes surrogates
        return path
    keys = dict.fromkeys(k for r in rows for k in r)
    try:
        frame = pd.DataFrame({k: pd.Series([r.get(k) for r in rows], dtype=object) for k in keys})
        if path.suffix == ".csv":
            frame = frame.map(lambda v: json.dumps(v) if isinstance(v, list) else v)
            frame.to_csv(path, index=False, encoding="utf-8", errors="surrogatepass")
        else:
            frame = frame.astype(object).map(lambda v: v if isinstance(v, list | type(None)) else str(v))
            frame.to_parquet(path)
    except Exception:  # noqa: BLE001 - the writer refused these values: not the reader's problem
        return None
    return path


@FUZZ
@given(rows=tables())
def test_api_records_are_accepted_or_rejected_like_the_file_path(rows) -> None:
    fast = prepare_records(rows, SETTINGS, P)
    full = prepare(records_frame(rows), SETTINGS, P)
    _check_prepared(fast, len(rows))
    assert fast.rejects.to_dict("records") == full.rejects.to_dict("records")
    assert fast.frame["application_id"].tolist() == full.frame["application_id"].tolist()
    assert fast.frame["content_hash"].tolist() == full.frame["content_hash"].tolist()
    assert fast.frame["created_at_iso"].tolist() == full.frame["created_at_iso"].tolist()
    np.testing.assert_array_equal(fast.faces, full.faces)


@FUZZ
@given(rows=tables())
def test_files_of_extreme_values_are_read_and_rejected_cleanly(rows) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".jsonl", ".csv", ".parquet"):
            path = _write(rows, Path(tmp) / f"apps{suffix}")
            if path is None:
                continue
            try:
                batch = prepare_file(path, SETTINGS, P)
                checked = validate_file(path, SETTINGS)
            except UnreadableFile:
                continue  # the whole file refused, with its reason: a clean reject
            _check_prepared(batch, len(rows))
            assert checked.summary["accepted"] == batch.summary["accepted"]
            if batch.summary["rejected"]:
                written = pd.read_csv(rejects_path(path))
                assert set(written["row"]) == set(batch.rejects["row"])
