import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from graph.contract.io import records_frame
from graph.contract.prepare import PII_COLUMNS, iter_prepare_file, prepare, prepare_file, validate_file
from graph.contract.pseudonymise import Pseudonymiser
from graph.contract.validate import rejects_path, validate
from graph.settings import Settings

from ..contract_rows import BREAKAGES, DIM, valid_rows


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", face_dim=DIM, pseudonym_key="test-key-0123456789abcdef")


def write_rows(rows: list[dict], path):
    if path.suffix == ".jsonl":
        with path.open("w") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
        return path
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame["face_embedding"] = [None if e is None else json.dumps(e) for e in frame["face_embedding"]]
        frame.to_csv(path, index=False)
    else:
        for col in frame.columns.drop("face_embedding"):
            kinds = {type(v) for v in frame[col] if v is not None and v == v}
            if len(kinds) > 1:  # Parquet columns have one type: mixed ones travel as text
                frame[col] = [None if v is None else str(v) for v in frame[col]]
        frame.to_parquet(path)
    return path


def broken_rows(n_good: int = 40):
    rows = valid_rows(n_good + len(BREAKAGES))
    expected = {}
    for k, (_name, column, mutate) in enumerate(BREAKAGES):
        i = n_good + k
        mutate(rows[i])
        expected[i + 1] = column
    return rows, expected


def test_every_breakage_is_rejected_with_row_and_column(settings):
    rows, expected = broken_rows()
    v = validate(records_frame(rows), settings)
    assert len(v.frame) == 40
    got = v.rejects.groupby("row")["column"].apply(set).to_dict()
    assert set(got) == set(expected)
    for row, column in expected.items():
        assert column in got[row], (row, column, got[row])
    assert v.rejects["reason"].str.len().min() > 5


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_formats_agree_and_rejects_file_is_written(tmp_path, settings, suffix):
    rows, expected = broken_rows()
    path = write_rows(rows, tmp_path / f"apps{suffix}")
    batch = prepare_file(path, settings)
    assert batch.summary["accepted"] == 40
    assert batch.summary["rejected"] == len(expected)
    written = pd.read_csv(rejects_path(path))
    assert list(written.columns) == ["row", "application_id", "column", "reason"]
    assert set(written["row"]) == set(expected)
    reference = prepare(records_frame(valid_rows(40)), settings)
    for col in ("application_id", "phone", "email", "ip_prefix", "name_key", "content_hash"):
        assert batch.frame[col].tolist() == reference.frame[col].tolist(), col
    np.testing.assert_allclose(batch.faces, reference.faces, atol=1e-6)


def test_rerun_without_rejects_removes_stale_rejects_file(tmp_path, settings):
    rows, _ = broken_rows()
    path = write_rows(rows, tmp_path / "apps.csv")
    prepare_file(path, settings)
    assert rejects_path(path).exists()
    write_rows(valid_rows(10), path)
    prepare_file(path, settings)
    assert not rejects_path(path).exists()


def test_unparseable_jsonl_lines_are_rejects_not_crashes(tmp_path, settings):
    path = tmp_path / "apps.jsonl"
    good = valid_rows(3)
    path.write_text(
        json.dumps(good[0])
        + "\n{not json\n"
        + json.dumps(good[1])
        + "\n[1, 2]\n"
        + json.dumps(good[2])
        + "\n"
    )
    batch = prepare_file(path, settings)
    assert batch.summary["accepted"] == 3
    assert sorted(batch.rejects["row"]) == [2, 4]


def test_prepare_is_deterministic_and_hashes_track_content(settings):
    rows = valid_rows(20)
    a = prepare(records_frame(rows), settings)
    b = prepare(records_frame(rows), settings)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    rows[3]["phone"] = "+1 212 555 0199"
    c = prepare(records_frame(rows), settings)
    changed = a.frame["content_hash"] != c.frame["content_hash"]
    assert changed.tolist() == [i == 3 for i in range(20)]


def test_prepared_rows_hold_no_raw_pii(settings):
    rows = valid_rows(30)
    frame = prepare(records_frame(rows), settings).frame
    stored = {str(v) for v in frame.to_numpy().ravel() if v is not None}
    for r in rows:
        for col in ("national_id", "email", "phone", "document_number", "full_name", "address"):
            assert r[col] not in stored
    assert not set(PII_COLUMNS) - set(frame.columns) - {"full_name", "date_of_birth"}
    assert "full_name" not in frame and "date_of_birth" not in frame


def test_key_changes_pseudonyms(settings):
    rows = valid_rows(5)
    a = prepare(records_frame(rows), settings, Pseudonymiser(b"a" * 32)).frame
    b = prepare(records_frame(rows), settings, Pseudonymiser(b"b" * 32)).frame
    assert not (a["phone"] == b["phone"]).any()


def test_duplicate_ids_keep_the_first(settings):
    rows = valid_rows(4)
    rows[2]["application_id"] = rows[0]["application_id"]
    v = validate(records_frame(rows), settings)
    assert len(v.frame) == 3 and v.rejects["row"].tolist() == [3]


def test_naive_timestamp_is_utc_and_offsets_convert(settings):
    rows = valid_rows(2)
    rows[0]["created_at"] = "2026-03-01T12:00:00"
    rows[1]["created_at"] = "2026-03-01T14:00:00+02:00"
    v = validate(records_frame(rows), settings)
    assert v.frame["created_at"].tolist() == [v.frame["created_at"][0]] * 2
    assert v.frame["created_at_iso"][0] == "2026-03-01T12:00:00.000000Z"


def test_undeclared_columns_warn_once_declared_are_kept(settings, caplog):
    rows = valid_rows(3)
    for r in rows:
        r["channel"] = "web"
        r["campaign"] = "x"
    with caplog.at_level(logging.WARNING):
        v = validate(records_frame(rows), settings.model_copy(update={"extra_columns": ["channel"]}))
    assert v.ignored_columns == ["campaign"]
    assert sum("campaign" in m for m in caplog.messages) == 1
    assert v.frame["channel"].tolist() == ["web"] * 3


def test_validate_cli_10k_rows_500_malformed(tmp_path):
    """The acceptance check: 10,000 rows, 500 broken in 16 ways -> 9,500 in, 500 out, exit status 1."""
    rows = valid_rows(10_000, seed=1)
    rng = np.random.default_rng(7)
    broken = rng.choice(len(rows), size=500, replace=False)
    for k, i in enumerate(broken):
        BREAKAGES[k % len(BREAKAGES)][2](rows[i])
    path = write_rows(rows, tmp_path / "apps.csv")
    env = {"RINGWATCH_FACE_DIM": str(DIM), "PATH": "", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli.main", "validate", "--json", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert summary["accepted"] == 9_500 and summary["rejected"] == 500
    assert len(summary["reasons"]) >= 10
    rejects = pd.read_csv(summary["rejects_file"])
    assert rejects["row"].nunique() == 500
    assert set(rejects["row"]) == {int(i) + 1 for i in broken}
    assert rejects["reason"].notna().all()


def test_validate_cli_clean_file_exits_zero_and_unreadable_exits_two(tmp_path):
    path = write_rows(valid_rows(50), tmp_path / "apps.parquet")
    env = {"RINGWATCH_FACE_DIM": str(DIM), "PATH": "", "HOME": str(tmp_path)}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "api.cli.main", "validate", *a],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run(str(path)).returncode == 0
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    proc = run(str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert run(str(tmp_path / "missing.csv")).returncode == 2


def test_missing_values_in_pandas_string_columns_stay_missing(settings):
    """pandas 3 stores missing text as NaN; it must not borrow another row's value."""
    rows = valid_rows(4)
    frame = pd.DataFrame(rows)
    frame.loc[[1, 3], "national_id"] = None
    frame.loc[2, "document_template"] = None
    frame["national_id"] = frame["national_id"].astype("str")
    frame["_row"] = range(1, 5)
    v = validate(frame, settings)
    assert v.frame["national_id"].isna().tolist() == [False, True, False, True]
    assert v.frame["document_template"].isna().tolist() == [False, False, True, False]
    assert len(v.rejects) == 0


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_chunked_preparation_matches_whole_file(tmp_path, settings, suffix):
    rows, expected = broken_rows()
    rows.append(dict(rows[0]))  # a duplicate id in a later chunk
    path = write_rows(rows, tmp_path / f"apps{suffix}")
    whole = prepare_file(path, settings)
    chunks = list(iter_prepare_file(path, settings, chunk_rows=7))
    assert len(chunks) == -(-len(rows) // 7)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(frame, whole.frame)
    rejects = pd.concat([c.rejects for c in chunks], ignore_index=True)
    assert rejects["row"].tolist() == whole.rejects["row"].tolist()
    assert len(rows) in set(rejects["row"])  # the cross-chunk duplicate
    np.testing.assert_array_equal(np.concatenate([c.faces for c in chunks]), whole.faces)
    v = validate_file(path, settings, chunk_rows=7)
    assert v.summary["accepted"] == len(whole.frame) and v.summary["rejected"] == len(expected) + 1


# (column, mutation, words of the reason): values that used to crash ingest or reach the store unusable
EXTREMES = [
    ("face_embedding", lambda r: r.update(face_embedding=[1e30] * DIM), "overflows"),
    ("face_embedding", lambda r: r.update(face_embedding=[1e-45] * DIM), "too small"),
    ("face_embedding", lambda r: r.update(face_embedding=[1e39] * DIM), "float32"),
    ("created_at", lambda r: r.update(created_at="0001-01-01T00:00:00+14:00"), "out of range"),
    ("created_at", lambda r: r.update(created_at="9999-12-31T23:59:59-12:00"), "out of range"),
    ("application_id", lambda r: r.update(application_id="\ud800"), "surrogate"),
    ("national_id", lambda r: r.update(national_id="x\udfffy"), "surrogate"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_extreme_values_are_rejected_with_row_and_reason(tmp_path, settings, suffix):
    """Each row is rejected with its number, column and reason (not a crash, not a NaN face or a year-0
    timestamp in the store); the good rows go in. CSV and Parquet cannot hold a lone surrogate (they are
    UTF-8), so those rows are JSON Lines only."""
    cases = [c for c in EXTREMES if suffix == ".jsonl" or c[0] not in ("application_id", "national_id")]
    rows = valid_rows(5 + len(cases))
    for k, (_, mutate, _) in enumerate(cases):
        mutate(rows[5 + k])
    batch = prepare_file(write_rows(rows, tmp_path / f"apps{suffix}"), settings)
    assert batch.summary["accepted"] == 5 and batch.summary["rejected"] == len(cases)
    for k, (column, _, words) in enumerate(cases):
        (reason,) = batch.rejects.loc[batch.rejects["row"] == 6 + k, "reason"]
        assert batch.rejects.loc[batch.rejects["row"] == 6 + k, "column"].item() == column
        assert words in reason, (column, reason)
    assert np.isfinite(batch.faces).all() and len(batch.faces) == 5
    written = pd.read_csv(rejects_path(tmp_path / f"apps{suffix}"))
    assert sorted(written["row"]) == [6 + k for k in range(len(cases))]


def test_extreme_values_are_rejected_alike_on_the_api_path(settings):
    """The API's row-by-row preparation hands every one of them to the file path's rules, so the rejects
    read the same (and a record cannot be accepted by one path and rejected by the other)."""
    from graph.contract.prepare import prepare_records

    p = Pseudonymiser(b"k" * 32)
    for column, mutate, words in EXTREMES:
        rows = valid_rows(2)
        mutate(rows[1])
        fast, full = prepare_records(rows, settings, p), prepare(records_frame(rows), settings, p)
        assert fast.rejects.to_dict("records") == full.rejects.to_dict("records")
        assert fast.rejects["column"].tolist() == [column] and words in fast.rejects["reason"].item()
        assert fast.frame["content_hash"].tolist() == full.frame["content_hash"].tolist()


def test_timestamps_at_the_ends_of_the_calendar_are_kept_exactly(settings):
    """In range once in UTC, they are accepted by both paths with four-digit years, and sub-microsecond
    digits do not push the whole column into nanoseconds (whose range is 1677 to 2262)."""
    from graph.contract.prepare import prepare_records

    rows = valid_rows(4)
    rows[0]["created_at"] = "0001-01-01T00:00:00Z"
    rows[1]["created_at"] = "9999-12-31T23:59:59.999999Z"
    rows[2]["created_at"] = "0001-01-01T10:00:00+09:59"
    rows[3]["created_at"] = "2026-03-01T12:00:00.123456789Z"
    p = Pseudonymiser(b"k" * 32)
    full = prepare(records_frame(rows), settings, p)
    assert len(full.rejects) == 0
    assert full.frame["created_at_iso"].tolist() == [
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:01:00.000000Z",
        "2026-03-01T12:00:00.123456Z",
    ]
    fast = prepare_records(rows[:3], settings, p)
    assert fast.frame["created_at_iso"].tolist() == full.frame["created_at_iso"].tolist()[:3]
    assert fast.frame["created_at"].tolist() == full.frame["created_at"].tolist()[:3]
