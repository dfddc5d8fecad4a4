"""Readers for the applications table (Parquet, CSV, JSON Lines).

Every reader returns the same shape: object columns with ``None`` for missing values, the face embedding
as one numpy array per row (views into a single block for Parquet), and a ``_row`` column holding the
1-based record number in the file, so a reject can point at the row a person would look for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROW = "_row"
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class UnreadableFile(ValueError):
    pass


def object_frame(columns: dict) -> pd.DataFrame:
    """A frame whose text columns keep ``None`` for missing values. pandas 3 would otherwise infer its
    string dtype and turn ``None`` into ``NaN``, which then stringifies as ``"nan"``."""
    return pd.DataFrame(
        {
            k: pd.Series(v, dtype=object) if getattr(v, "dtype", None) in (None, np.dtype(object)) else v
            for k, v in columns.items()
        }
    )


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFile(f"{path.name}: unknown format; use .parquet, .csv or .jsonl")
    return fmt


def read_table(path: str | Path) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Returns the frame and the records that could not even be parsed, as ``(row, column, reason)``."""
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(f"{path}: no such file")
    fmt = detect_format(path)
    if fmt == "parquet":
        return _read_parquet(path), []
    if fmt == "csv":
        return _read_csv(path), []
    return _read_jsonl(path)


def _embedding_column(col: pa.ChunkedArray) -> list:
    arr = col.combine_chunks()
    if not pa.types.is_list(arr.type) and not pa.types.is_large_list(arr.type):
        return col.to_pylist()
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    lengths = np.diff(offsets)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    out: list = [None] * len(arr)
    if len(arr) and (lengths[valid] == lengths[valid][0]).all() and offsets[0] == 0 and valid.all():
        block = values.reshape(len(arr), lengths[0]) if lengths[0] else values.reshape(len(arr), 0)
        return list(block)
    for i in np.flatnonzero(valid):
        out[i] = values[offsets[i] : offsets[i + 1]]
    return out


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({exc})") from exc
    data = {}
    for name in table.column_names:
        col = table.column(name)
        if name == "face_embedding":
            data[name] = _embedding_column(col)
            continue
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
            values = col.to_numpy(zero_copy_only=False).astype(object)
            values[col.is_null().to_numpy(zero_copy_only=False)] = None
            data[name] = values
        elif pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            data[name] = [None if v is None else v.isoformat() for v in col.to_pylist()]
        else:
            data[name] = col.to_numpy(zero_copy_only=False).astype(object)
    frame = object_frame(data)
    frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable CSV file ({exc})") from exc
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    frame = frame.astype(object).where(frame != "", None)
    frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    records, bad = [], []
    with path.open(encoding="utf-8", errors="replace") as fh:
        row = 0
        for line in fh:
            if not line.strip():
                continue
            row += 1
            try:
                # NaN/Infinity stay visible as strings so validation rejects them instead of
                # reading them as missing
                rec = json.loads(line, parse_constant=str)
            except json.JSONDecodeError:
                bad.append((row, "", "line is not valid JSON"))
                continue
            if not isinstance(rec, dict):
                bad.append((row, "", "line is not a JSON object"))
                continue
            rec[ROW] = row
            records.append(rec)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({ROW: []})
    frame = frame.astype(object).where(frame.notna(), None)
    return frame, bad


def records_frame(records: list[dict]) -> pd.DataFrame:
    """The API's path: a list of JSON objects, numbered from 1."""
    frame = pd.DataFrame.from_records([{**r, ROW: i} for i, r in enumerate(records, start=1)])
    return frame.astype(object).where(frame.notna(), None)
