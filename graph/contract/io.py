"""Readers for the applications table (Parquet, CSV, JSON Lines).

Every reader returns the same shape: object columns with ``None`` for missing values, the face embedding
as one numpy array per row (views into a single block for Parquet), and a ``_row`` column holding the
1-based record number in the file, so a reject can point at the row a person would look for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    string dtype and turn ``None`` into ``NaN``, which then stringifies as ``"nan"``.

    Columns are arrays or lists of one length (a Series keeps its own index). The index is given up front:
    pandas otherwise infers and aligns one per column, a third of the cost of the one-row frames a real-time
    decision builds. The frame is consolidated (slicing rows of a block-per-column frame pays per column)."""
    if any(isinstance(v, pd.Series) for v in columns.values()):
        index = None
    else:
        index = pd.RangeIndex(len(next(iter(columns.values()))) if columns else 0)

    def column(v):
        dtype = getattr(v, "dtype", None)
        # not ``dtype in (None, object)``: numpy reads None as float64, so floats would match
        if dtype is None or dtype == np.dtype(object):
            return pd.Series(v, index=index, dtype=object)
        return v if index is None else pd.Series(v, index=index, copy=False)

    return pd.DataFrame({k: column(v) for k, v in columns.items()}, index=index)


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFile(f"{path.name}: unknown format; use .parquet, .csv or .jsonl")
    return fmt


def read_table(path: str | Path) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Returns the frame and the records that could not even be parsed, as ``(row, column, reason)``."""
    frames, errors = [], []
    for frame, bad in iter_table(path, chunk_rows=None):
        frames.append(frame)
        errors += bad
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True), errors


def iter_table(
    path: str | Path, chunk_rows: int | None = 100_000
) -> Iterator[tuple[pd.DataFrame, list[tuple[int, str, str]]]]:
    """The file in chunks of ``chunk_rows`` records (all at once for None), so that memory stays bounded
    for files of millions of rows. Row numbers continue across chunks."""
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(f"{path}: no such file")
    fmt = detect_format(path)
    if fmt == "parquet":
        yield from _iter_parquet(path, chunk_rows)
    elif fmt == "csv":
        yield from _iter_csv(path, chunk_rows)
    else:
        yield from _iter_jsonl(path, chunk_rows)


def _embedding_column(col: pa.ChunkedArray) -> list:
    arr = col.combine_chunks()
    if not pa.types.is_list(arr.type) and not pa.types.is_large_list(arr.type):
        return col.to_pylist()
    offsets = arr.offsets.to_numpy()
    with np.errstate(over="ignore"):  # beyond float32: infinity, which validation rejects
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


def _iter_parquet(path: Path, chunk_rows: int | None):
    try:
        pf = pq.ParquetFile(path)
        if chunk_rows is None:
            tables = iter([pf.read()])
        else:
            tables = (pa.Table.from_batches([b]) for b in pf.iter_batches(batch_size=chunk_rows))
        first = 1
        for table in tables:
            frame = _parquet_frame(table, first)
            first += len(frame)
            yield frame, []
        if first == 1 and chunk_rows is not None:
            yield _parquet_frame(pf.schema_arrow.empty_table(), 1), []
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({exc})") from exc


def _parquet_frame(table: pa.Table, first_row: int) -> pd.DataFrame:
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
    frame[ROW] = np.arange(first_row, first_row + len(frame))
    return frame


def _iter_csv(path: Path, chunk_rows: int | None):
    try:
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8", chunksize=chunk_rows
        )
        chunks = [reader] if chunk_rows is None else reader
        first = 1
        for frame in chunks:
            frame = frame.astype(object).where(frame != "", None)
            frame[ROW] = np.arange(first, first + len(frame))
            first += len(frame)
            yield frame, []
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable CSV file ({exc})") from exc
    except pd.errors.EmptyDataError:
        yield pd.DataFrame({ROW: []}), []


def _jsonl_frame(records: list[dict]) -> pd.DataFrame:
    """Object columns built directly: pandas' string inference would hand text to Arrow, which fails on a lone
    surrogate (JSON can spell one, ``"\\ud800"``) before validation could reject its row."""
    if not records:
        return pd.DataFrame({ROW: []})
    keys = dict.fromkeys(k for r in records for k in r)
    return object_frame({k: object_array([r.get(k) for r in records]) for k in keys})


def _iter_jsonl(path: Path, chunk_rows: int | None):
    records: list[dict] = []
    bad: list[tuple[int, str, str]] = []
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
            except (json.JSONDecodeError, RecursionError):
                bad.append((row, "", "line is not valid JSON"))
                continue
            if not isinstance(rec, dict):
                bad.append((row, "", "line is not a JSON object"))
                continue
            rec[ROW] = row
            records.append(rec)
            if chunk_rows is not None and len(records) >= chunk_rows:
                yield _jsonl_frame(records), bad
                records, bad = [], []
    if records or bad or row == 0:
        yield _jsonl_frame(records), bad


def object_array(values: list) -> np.ndarray:
    """A 1-d object array of ``values``, whatever they are: ``np.array`` alone would make a 2-d array of equal
    length sequences, or of a string's characters."""
    return np.array([*values, None], dtype=object)[:-1]


def records_frame(records: list[dict]) -> pd.DataFrame:
    """The API's path: a list of JSON objects, numbered from 1."""
    keys = dict.fromkeys(k for r in records for k in r)
    columns = {k: object_array([r.get(k) for r in records]) for k in keys}
    columns[ROW] = np.arange(1, len(records) + 1)
    return object_frame(columns)
