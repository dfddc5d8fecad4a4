"""From a raw applications table to rows that are safe to store: validated, canonical, pseudonymised."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.io import ROW, iter_table, object_frame
from graph.pseudonymise import Pseudonymiser, load_key
from graph.schema import SIGNALS
from graph.settings import Settings
from graph.validate import REJECT_COLUMNS, Validated, validate, write_rejects

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


__all__ = [
    "PreparedBatch",
    "prepare",
    "prepare_file",
    "iter_prepare_file",
    "pseudonymise",
    "validate_file",
    "PII_COLUMNS",
    "ROW",
]
