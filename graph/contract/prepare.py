"""From a raw applications table to rows that are safe to store: validated, canonical, pseudonymised."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from graph.contract import normalise
from graph.contract.io import ROW, iter_table, object_array, object_frame
from graph.contract.pseudonymise import Pseudonymiser, load_key
from graph.contract.validate import (
    MAX_ID_LEN,
    REJECT_COLUMNS,
    Validated,
    _as_float01,
    _as_label,
    _encodable,
    as_embedding,
    unit_rows,
    validate,
    write_rejects,
)
from graph.schema import KNOWN_COLUMNS, OPTIONAL_FLOAT01, REQUIRED, SIGNALS
from graph.settings import Settings

# PII columns that are replaced by pseudonyms; everything else in a prepared frame is safe to store
PII_COLUMNS = ("full_name", "date_of_birth", *(s.column for s in SIGNALS))
_HASHED = (
    "created_at",
    "name_key",
    "dob_key",
    *(s.column for s in SIGNALS),
    "document_type",
    "document_country",
    "liveness_score",
    "document_authenticity_score",
    "label",
)


@dataclass
class PreparedBatch:
    frame: pd.DataFrame
    faces: np.ndarray  # float32 [m, dim], L2-normalised
    face_ids: np.ndarray  # application ids of the face rows, aligned with ``faces``
    rejects: pd.DataFrame
    summary: dict
    rejects_file: Path | None = None


def _pseudonymise_column(values: np.ndarray, kind: str, p: Pseudonymiser) -> np.ndarray:
    present = np.array([v is not None for v in values], dtype=bool)
    out = np.full(len(values), None, dtype=object)
    if present.any():
        codes, uniques = pd.factorize(values[present].astype(object), sort=False)
        out[present] = np.array([p.pseudonym(kind, u) for u in uniques], dtype=object)[codes]
    return out


def _content_hash(frame: pd.DataFrame, faces: np.ndarray, face_rows: np.ndarray) -> np.ndarray:
    """A digest of everything stored for a row, so a re-ingest can tell unchanged from changed."""
    face_digest = np.full(len(frame), "", dtype=object)
    for k, i in enumerate(face_rows):
        face_digest[i] = hashlib.blake2b(faces[k].tobytes(), digest_size=8).hexdigest()
    cols = [frame[c].to_numpy(dtype=object).astype(str) for c in _HASHED]
    return np.array(
        [
            hashlib.blake2b(
                "\x1f".join([*(c[i] for c in cols), face_digest[i]]).encode(), digest_size=12
            ).hexdigest()
            for i in range(len(frame))
        ],
        dtype=object,
    )


def pseudonymise(v: Validated, p: Pseudonymiser) -> pd.DataFrame:
    f = v.frame
    columns = {c: f[c].to_numpy() for c in f.columns if c not in ("full_name", "date_of_birth")}
    columns["name_key"] = _pseudonymise_column(f["full_name"].to_numpy(), "name", p)
    columns["dob_key"] = _pseudonymise_column(f["date_of_birth"].to_numpy(), "dob", p)
    for s in SIGNALS:
        columns[s.column] = _pseudonymise_column(f[s.column].to_numpy(), s.column, p)
    out = object_frame(columns)
    out["content_hash"] = pd.Series(_content_hash(out, v.faces, v.face_rows), dtype=object)
    return out


def prepare(
    raw: pd.DataFrame, settings: Settings, pseudonymiser: Pseudonymiser | None = None
) -> PreparedBatch:
    p = pseudonymiser or Pseudonymiser(load_key(settings))
    v = validate(raw, settings)
    frame = pseudonymise(v, p)
    face_ids = (
        frame["application_id"].to_numpy()[v.face_rows] if len(v.face_rows) else np.array([], dtype=object)
    )
    return PreparedBatch(frame, v.faces, face_ids, v.rejects, v.summary)


def _merge_read_errors(rejects: pd.DataFrame, read_errors: list[tuple[int, str, str]]) -> pd.DataFrame:
    if not read_errors:
        return rejects
    extra = pd.DataFrame([(r, None, c, reason) for r, c, reason in read_errors], columns=REJECT_COLUMNS)
    return (
        pd.concat([rejects, extra], ignore_index=True)
        .sort_values("row", kind="stable")
        .reset_index(drop=True)
    )


def _count_rejected(rejects: pd.DataFrame) -> int:
    return int(rejects["row"].nunique()) if len(rejects) else 0


def validate_file(path: str | Path, settings: Settings, chunk_rows: int | None = 100_000) -> Validated:
    """Validation only (``ringwatch validate``): no key needed, nothing stored; writes the rejects file.
    The returned frame and faces are empty: only the counts and rejects are kept, so memory stays flat."""
    seen: set[str] = set()
    rejects, total, ignored, with_face, accepted = [], 0, [], 0, 0
    for raw, read_errors in iter_table(path, chunk_rows):
        v = validate(raw, settings, seen_ids=seen)
        rejects.append(_merge_read_errors(v.rejects, read_errors))
        total += v.total + len(read_errors)
        accepted += len(v.frame)
        with_face += len(v.face_rows)
        ignored = ignored or v.ignored_columns
    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(columns=REJECT_COLUMNS)
    write_rejects(all_rejects, path)
    empty = np.zeros((0, settings.face_dim), dtype=np.float32)
    counts = {"accepted": accepted, "with_face": with_face}
    return Validated(pd.DataFrame(), empty, np.zeros(0, dtype=np.int64), all_rejects, total, ignored, counts)


def iter_prepare_file(
    path: str | Path,
    settings: Settings,
    pseudonymiser: Pseudonymiser | None = None,
    chunk_rows: int | None = 100_000,
) -> Iterator[PreparedBatch]:
    """Prepared chunks of a file. Rejects stay on each chunk; the caller writes the rejects file once
    it has seen them all (``write_rejects``), because later stages may reject more rows."""
    p = pseudonymiser or Pseudonymiser(load_key(settings))
    seen: set[str] = set()
    for raw, read_errors in iter_table(path, chunk_rows):
        v = validate(raw, settings, seen_ids=seen)
        frame = pseudonymise(v, p)
        face_ids = (
            frame["application_id"].to_numpy()[v.face_rows]
            if len(v.face_rows)
            else np.array([], dtype=object)
        )
        batch = PreparedBatch(frame, v.faces, face_ids, _merge_read_errors(v.rejects, read_errors), v.summary)
        batch.summary["rows"] += len(read_errors)
        batch.summary["rejected"] = _count_rejected(batch.rejects)
        yield batch


def prepare_file(
    path: str | Path, settings: Settings, pseudonymiser: Pseudonymiser | None = None
) -> PreparedBatch:
    """The whole file as one batch (small files, tests); ``iter_prepare_file`` for large ones."""
    (batch,) = list(iter_prepare_file(path, settings, pseudonymiser, chunk_rows=None))
    batch.rejects_file = write_rejects(batch.rejects, path)
    return batch


# ---- a handful of records (the API): the same rules without the column-wise set-up ----------------------
_ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKENS = ("device_id", "document_number", "national_id", "document_template")


class _Fallback(Exception):
    """The record needs the full path: it is rejected (which the full path words), or unusual."""


def _present(v: object, numeric: bool = False) -> object:
    if isinstance(v, str) and not v.strip():
        return None
    if not numeric and isinstance(v, float) and math.isnan(v):
        return None
    return v


def _one(rec: dict, settings: Settings, p: Pseudonymiser) -> tuple[dict, np.ndarray | None]:
    """One clean record as a prepared row (and its raw face), or ``_Fallback``."""
    extra = set(settings.extra_columns)
    if any(k not in KNOWN_COLUMNS and k not in extra for k in rec) or _present(rec.get("selfie_path")):
        raise _Fallback
    if any(isinstance(x, str) and not x.isascii() and not _encodable(x) for x in rec.values()):
        raise _Fallback  # a lone surrogate: ``validate`` rejects it
    v = {k: _present(rec.get(k), k in OPTIONAL_FLOAT01 or k == "label") for k in KNOWN_COLUMNS}
    if any(v[k] is None for k in REQUIRED):
        raise _Fallback
    try:
        app_id = str(v["application_id"]).strip()
        if len(app_id) > MAX_ID_LEN:
            raise _Fallback
        ts = str(v["created_at"])
        if not _ISO_TS.match(ts):
            raise _Fallback
        created = normalise.utc_timestamp(ts)  # out of range in UTC: ``validate`` words the reject
        dob = normalise.date_of_birth(str(v["date_of_birth"]))
        name = normalise.name(str(v["full_name"]))
        canon = {
            "email": normalise.email,
            "phone": lambda x: normalise.phone(x, settings.default_phone_region),
            "address": normalise.address,
            **dict.fromkeys(_TOKENS, normalise.token),
        }
        signals = {c: None if v[c] is None else fn(str(v[c])) for c, fn in canon.items()}
        signals["ip"], signals["ip_prefix"] = (
            normalise.ip(str(v["ip"])) if v["ip"] is not None else (None, None)
        )
        scores = {c: np.nan if v[c] is None else _as_float01(str(v[c])) for c in OPTIONAL_FLOAT01}
        label = np.nan if v["label"] is None else _as_label(str(v["label"]))
        face = None if v["face_embedding"] is None else as_embedding(v["face_embedding"], settings.face_dim)
    except ValueError as exc:
        raise _Fallback from exc
    row = {
        "application_id": app_id,
        "created_at": (created - _EPOCH) // timedelta(milliseconds=1),
        "created_at_iso": normalise.iso_utc(created),
        "birth_year": dob.year,
        **{
            s.column: None if signals[s.column] is None else p.pseudonym(s.column, signals[s.column])
            for s in SIGNALS
        },
        **{
            c: None if v[c] is None else str(v[c]).strip().upper() or None
            for c in ("document_type", "document_country")
        },
        "ring_id": None if v["ring_id"] is None else str(v["ring_id"]),
        "selfie_path": None,
        **scores,
        "label": label,
        **{c: _present(rec.get(c)) for c in settings.extra_columns},
        "name_key": p.pseudonym("name", name),
        "dob_key": p.pseudonym("dob", dob.isoformat()),
    }
    return row, face


_EMPTY_REJECTS = pd.DataFrame({c: [] for c in REJECT_COLUMNS})


@dataclass
class PreparedRows:
    """Clean records prepared row by row, as dicts (the columns of a prepared frame, with ``content_hash``)."""

    rows: list[dict]
    faces: np.ndarray  # float32 [m, dim], L2-normalised
    face_ids: list[str]  # application ids of the face rows, aligned with ``faces``


def prepare_rows(
    records: list[dict], settings: Settings, pseudonymiser: Pseudonymiser
) -> PreparedRows | None:
    """The rows ``prepare`` would give for a handful of clean records, with no DataFrame: the real-time path
    keeps them as dicts. ``None`` when a record is to be rejected, an id repeats, or anything is unusual: the
    caller then runs ``prepare``, so rejects read the same."""
    try:
        prepared = [_one(r, settings, pseudonymiser) for r in records]
    except _Fallback:
        return None
    if len({row["application_id"] for row, _ in prepared}) < len(prepared):
        return None
    with_face = [k for k, (_, face) in enumerate(prepared) if face is not None]
    faces = np.zeros((0, settings.face_dim), dtype=np.float32)
    if with_face:
        faces = unit_rows(np.stack([prepared[k][1] for k in with_face]).astype(np.float32, copy=False))
    rows = [row for row, _ in prepared]
    digests = [""] * len(rows)
    for j, k in enumerate(with_face):
        digests[k] = hashlib.blake2b(faces[j].tobytes(), digest_size=8).hexdigest()
    for row, digest in zip(rows, digests, strict=True):
        text = "\x1f".join([*(str(row[c]) for c in _HASHED), digest])
        row["content_hash"] = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    return PreparedRows(rows, faces, [rows[k]["application_id"] for k in with_face])


def prepare_records(records: list[dict], settings: Settings, pseudonymiser: Pseudonymiser) -> PreparedBatch:
    """``prepare(records_frame(records), ...)`` for a handful of records, without the frames' fixed cost:
    row by row (``prepare_rows``), one frame at the end. Same rules and the same output
    (``tests/graph/test_prepare_records.py`` checks parity); a batch with any record to reject, or anything
    unusual, goes through ``prepare`` so rejects read the same."""
    from graph.contract.io import records_frame

    fast = prepare_rows(records, settings, pseudonymiser)
    if fast is None:
        return prepare(records_frame(records), settings, pseudonymiser)
    rows = fast.rows
    columns = {ROW: np.arange(1, len(rows) + 1)}
    for c in rows[0] if rows else ():
        values = [row[c] for row in rows]
        if c in ("created_at", "birth_year"):
            columns[c] = np.array(values, dtype=np.int64)
        elif c in (*OPTIONAL_FLOAT01, "label"):
            columns[c] = np.array(values, dtype=np.float64)
        else:
            columns[c] = object_array(values)
    frame = object_frame(columns)
    face_ids = object_array(fast.face_ids)
    summary = {
        "rows": len(rows),
        "accepted": len(rows),
        "rejected": 0,
        "with_face": len(fast.face_ids),
        "ignored_columns": [],
    }
    return PreparedBatch(frame, fast.faces, face_ids, _EMPTY_REJECTS.copy(), summary)


__all__ = [
    "PreparedBatch",
    "prepare",
    "prepare_records",
    "prepare_rows",
    "PreparedRows",
    "prepare_file",
    "iter_prepare_file",
    "pseudonymise",
    "validate_file",
    "PII_COLUMNS",
    "ROW",
]
