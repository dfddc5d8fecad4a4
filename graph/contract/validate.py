"""Row-level validation and normalisation of the applications table (DESIGN.md §2).

A bad row is rejected with its row number, the column and a reason, and the good rows go on. Reasons never
quote the raw value, because the value may be PII and rejects files get shared.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from graph.contract import normalise
from graph.contract.io import ROW, object_frame
from graph.schema import KNOWN_COLUMNS, OPTIONAL_FLOAT01, REQUIRED
from graph.settings import Settings

log = logging.getLogger(__name__)

REJECT_COLUMNS = ["row", "application_id", "column", "reason"]
MAX_ID_LEN = 128
# The L2 norms between which normalising in float32 (``unit_rows``) gives a unit vector. Above sqrt(float32
# max) = 1.84e19 the sum of squares overflows (the vector comes out as zeros). Below about 1e-18 the squares
# are subnormal floats, whose rounding (up to dim x 7e-46 on the sum) is no longer small against the sum;
# further down they round to zero (0 / 0: NaN). Real embeddings lie many orders of magnitude inside both.
MAX_FACE_NORM = 1.8e19
MIN_FACE_NORM = 1e-18
LONE_SURROGATE = "not valid Unicode text (contains a lone UTF-16 surrogate)"
# digits past microseconds: pandas would parse the whole column in nanoseconds, whose range (1677-2262) is
# narrower than the contract's (years 0001 to 9999); the stored values keep microseconds at most anyway
_SUB_MICROSECONDS = re.compile(r"(\.\d{6})\d+")


@dataclass
class Validated:
    """Canonical (still raw, not yet pseudonymised) values of the accepted rows."""

    frame: pd.DataFrame
    faces: np.ndarray  # float32 [m, dim], L2-normalised
    face_rows: np.ndarray  # positions in ``frame`` of the rows that have a face
    rejects: pd.DataFrame
    total: int
    ignored_columns: list[str] = field(default_factory=list)
    # set when the rows themselves were not kept (validation of a whole file in chunks)
    counts: dict | None = None

    @property
    def summary(self) -> dict:
        counts = self.counts or {"accepted": len(self.frame), "with_face": len(self.face_rows)}
        return {
            "rows": self.total,
            "accepted": counts["accepted"],
            "rejected": int(self.rejects["row"].nunique()) if len(self.rejects) else 0,
            "with_face": counts["with_face"],
            "ignored_columns": self.ignored_columns,
        }


class _Errors:
    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def add(self, row: int, column: str, reason: str) -> None:
        self.rows.append((int(row), column, reason))


def _map_unique(values: np.ndarray, fn: Callable[[str], object]) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn`` once per distinct value: identifiers repeat a lot, and parsing is the slow part."""
    present = np.array([v is not None for v in values], dtype=bool)
    out = np.full(len(values), None, dtype=object)
    err = np.full(len(values), None, dtype=object)
    if not present.any():
        return out, err
    codes, uniques = pd.factorize(np.array([str(v) for v in values[present]], dtype=object), sort=False)
    res = np.empty(len(uniques), dtype=object)
    res_err = np.full(len(uniques), None, dtype=object)
    for i, u in enumerate(uniques):
        try:
            res[i] = fn(u)
        except ValueError as exc:
            res[i] = None
            res_err[i] = str(exc)
    out[present] = res[codes]
    err[present] = res_err[codes]
    return out, err


def _as_float01(v: object) -> float:
    if isinstance(v, bool):
        raise ValueError("must be a number between 0 and 1")
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError("must be a number between 0 and 1") from exc
    if math.isnan(f):
        raise ValueError("value is NaN")
    if not 0.0 <= f <= 1.0:
        raise ValueError("must be between 0 and 1")
    return f


def _as_label(v: object) -> float:
    if isinstance(v, bool):
        return float(v)
    s = str(v).strip()
    if s in {"0", "1", "0.0", "1.0"}:
        return float(s)
    raise ValueError("label must be 0 or 1")


def as_embedding(v: object, dim: int) -> np.ndarray:
    """A face embedding as a float32 vector that ``unit_rows`` can normalise, or ``ValueError`` with the
    reason. The one check for every way a vector comes in: file rows and API applications (``validate`` and
    ``prepare_rows``), and the face search route's query vector."""
    if isinstance(v, str):
        try:
            v = json.loads(v, parse_constant=str)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError("face_embedding is not a JSON array") from exc
    if isinstance(v, np.ndarray):
        arr = v
    elif isinstance(v, list | tuple):
        try:
            with np.errstate(over="ignore"):  # beyond float32: infinity, rejected below
                arr = np.asarray(v, dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError("face_embedding must be a list of numbers") from exc
    else:
        raise ValueError("face_embedding must be a list of numbers")
    if arr.ndim != 1:
        raise ValueError("face_embedding must be a flat list")
    if arr.shape[0] != dim:
        raise ValueError(f"face_embedding has dimension {arr.shape[0]}, expected {dim}")
    if arr.dtype.kind not in "biuf":
        raise ValueError("face_embedding must be a list of numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(np.float32, copy=False)  # a float64 beyond float32's range becomes infinity here
        squares = float(np.dot(arr, arr))  # NaN or infinity for non-finite values, and on overflow
    if not MIN_FACE_NORM**2 <= squares <= MAX_FACE_NORM**2:  # one comparison on the common path
        if not np.isfinite(arr).all():
            raise ValueError("face_embedding contains NaN or infinity (or a value beyond float32's range)")
        if not np.any(arr):
            raise ValueError("face_embedding is all zeros")
        if squares > MAX_FACE_NORM**2:
            raise ValueError("face_embedding is too large to normalise: its L2 norm overflows float32")
        raise ValueError(
            f"face_embedding is too small to normalise: its L2 norm is below {MIN_FACE_NORM:g}, where "
            "float32 loses it"
        )
    return arr


def unit_rows(faces: np.ndarray) -> np.ndarray:
    """L2-normalise float32 rows (each passed ``as_embedding``) in place, the same arithmetic on every path,
    so content hashes of the same face agree whichever path prepared it."""
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return faces


def _lone_surrogates(raw: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Text that cannot be encoded as UTF-8 (a lone surrogate, as JSON's ``"\\ud800"`` gives): its positions
    and columns, and the frame with those values made encodable (their rows are rejected; the placeholder
    only keeps later steps, and the rejects file, from failing on them)."""
    found: list[tuple[int, str]] = []
    fixed = raw
    for name in columns:
        values = raw[name].to_numpy(dtype=object)
        try:
            "".join(v for v in values if isinstance(v, str)).encode("utf-8")
            continue  # the common case: one encode per column
        except UnicodeEncodeError:
            pass
        clean = values.copy()
        for i, v in enumerate(values):
            if isinstance(v, str) and not _encodable(v):
                found.append((i, name))
                clean[i] = v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        if fixed is raw:
            fixed = raw.copy()
        fixed[name] = pd.Series(clean, index=raw.index, dtype=object)
    return fixed, found


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(
    raw: pd.DataFrame, settings: Settings, today: date | None = None, seen_ids: set[str] | None = None
) -> Validated:
    """``seen_ids`` carries the ids of earlier chunks of the same file, so a duplicate is caught across
    chunks too; it is updated in place."""
    n = len(raw)
    rows = raw[ROW].to_numpy() if ROW in raw else np.arange(1, n + 1)
    errors = _Errors()
    bad = np.zeros(n, dtype=bool)

    extra = set(settings.extra_columns)
    ignored = sorted(
        str(c).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        for c in raw.columns
        if c not in KNOWN_COLUMNS and c != ROW and c not in extra
    )
    if ignored:
        log.warning("ignoring undeclared columns: %s", ", ".join(ignored))
    raw, bad_text = _lone_surrogates(raw, [c for c in raw.columns if c in KNOWN_COLUMNS or c in extra])

    def reject(mask: np.ndarray, column: str, reasons: np.ndarray | str) -> None:
        for i in np.flatnonzero(mask):
            errors.add(rows[i], column, reasons if isinstance(reasons, str) else reasons[i])
        bad[mask] = True

    def col(name: str) -> np.ndarray:
        if name not in raw:
            return np.full(n, None, dtype=object)
        values = raw[name].to_numpy(dtype=object)
        # a blank string, or NaN in a text column (pandas 3 string dtype), means "missing"; NaN in a
        # numeric column is kept so that it is rejected as NaN
        numeric = name in OPTIONAL_FLOAT01 or name == "label"
        blank = np.array(
            [
                (isinstance(v, str) and not v.strip())
                or (not numeric and isinstance(v, float) and math.isnan(v))
                for v in values
            ],
            dtype=bool,
        )
        if blank.any():
            values = values.copy()
            values[blank] = None
        return values

    for i, name in bad_text:
        errors.add(rows[i], name, LONE_SURROGATE)
        bad[i] = True

    out: dict[str, np.ndarray] = {}
    for name in REQUIRED:
        values = col(name)
        missing = np.array([v is None for v in values], dtype=bool)
        reject(missing, name, "required field is missing")

    app_ids = np.array([None if v is None else str(v).strip() for v in col("application_id")], dtype=object)
    too_long = np.array([v is not None and len(v) > MAX_ID_LEN for v in app_ids], dtype=bool)
    reject(too_long, "application_id", f"application_id longer than {MAX_ID_LEN} characters")
    present_ids = pd.Series(app_ids)
    dup = present_ids.notna().to_numpy() & present_ids.duplicated(keep="first").to_numpy()
    if seen_ids is not None:
        dup |= present_ids.isin(seen_ids).to_numpy()
        seen_ids.update(v for v in app_ids if v is not None)
    reject(dup, "application_id", "duplicate application_id in this input (the first one is kept)")
    out["application_id"] = app_ids

    present_created = np.array([v is not None for v in col("created_at")], dtype=bool)
    created_raw = pd.Series(
        [None if v is None else _SUB_MICROSECONDS.sub(r"\1", str(v)) for v in col("created_at")], dtype=object
    )
    created = pd.to_datetime(created_raw, utc=True, format="ISO8601", errors="coerce")
    unparsed = created.isna().to_numpy() & present_created
    reject(unparsed, "created_at", "created_at is not an ISO-8601 timestamp")
    year = created.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    out_of_range = (year < 1) | (year > 9999)  # NaN (missing or unparsed) compares False
    reject(out_of_range, "created_at", normalise.TIMESTAMP_OUT_OF_RANGE)
    created = created.mask(out_of_range)
    epoch = pd.Timestamp(0, tz="UTC")
    out["created_at"] = created.fillna(epoch).dt.as_unit("ms").astype("int64").to_numpy()
    out["created_at_iso"] = created.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_numpy(dtype=object)

    dob, dob_err = _map_unique(col("date_of_birth"), lambda v: normalise.date_of_birth(v, today))
    reject(np.array([e is not None for e in dob_err]), "date_of_birth", dob_err)
    out["date_of_birth"] = np.array([None if d is None else d.isoformat() for d in dob], dtype=object)
    out["birth_year"] = np.array([0 if d is None else d.year for d in dob], dtype=np.int64)

    full_name, name_err = _map_unique(col("full_name"), normalise.name)
    reject(np.array([e is not None for e in name_err]), "full_name", name_err)
    out["full_name"] = full_name

    region = settings.default_phone_region
    parsers: dict[str, Callable[[str], str]] = {
        "email": normalise.email,
        "phone": lambda v: normalise.phone(v, region),
        "address": normalise.address,
        "device_id": normalise.token,
        "document_number": normalise.token,
        "national_id": normalise.token,
        "document_template": normalise.token,
    }
    for name, fn in parsers.items():
        vals, errs = _map_unique(col(name), fn)
        reject(np.array([e is not None for e in errs]), name, errs)
        out[name] = vals

    ip_pairs, ip_err = _map_unique(col("ip"), normalise.ip)
    reject(np.array([e is not None for e in ip_err]), "ip", ip_err)
    out["ip"] = np.array([None if p is None else p[0] for p in ip_pairs], dtype=object)
    out["ip_prefix"] = np.array([None if p is None else p[1] for p in ip_pairs], dtype=object)

    for name in ("document_type", "document_country"):
        out[name] = np.array(
            [None if v is None else str(v).strip().upper() or None for v in col(name)], dtype=object
        )
    for name in ("ring_id", "selfie_path"):
        out[name] = np.array([None if v is None else str(v) for v in col(name)], dtype=object)

    for name in OPTIONAL_FLOAT01:
        vals, errs = _map_unique(col(name), _as_float01)
        reject(np.array([e is not None for e in errs]), name, errs)
        out[name] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)

    labels, label_err = _map_unique(col("label"), _as_label)
    reject(np.array([e is not None for e in label_err]), "label", label_err)
    out["label"] = np.array([np.nan if v is None else v for v in labels], dtype=np.float64)

    for name in settings.extra_columns:
        out[name] = col(name)

    embeddings = col("face_embedding")
    face = np.zeros(n, dtype=bool)
    vectors: list[np.ndarray] = []
    emb_rows: list[int] = []
    for i, v in enumerate(embeddings):
        if v is None:
            continue
        try:
            vectors.append(as_embedding(v, settings.face_dim))
        except ValueError as exc:
            errors.add(rows[i], "face_embedding", str(exc))
            bad[i] = True
            continue
        emb_rows.append(i)
        face[i] = True

    keep = ~bad
    frame = object_frame(out)
    frame.insert(0, ROW, rows)
    frame = frame[keep].reset_index(drop=True)
    positions = np.cumsum(keep) - 1
    keep_emb = [k for k, i in enumerate(emb_rows) if keep[i]]
    if keep_emb:
        faces = unit_rows(np.stack([vectors[k] for k in keep_emb]).astype(np.float32, copy=False))
        face_rows = positions[[emb_rows[k] for k in keep_emb]].astype(np.int64)
    else:
        faces = np.zeros((0, settings.face_dim), dtype=np.float32)
        face_rows = np.zeros(0, dtype=np.int64)

    rejects = pd.DataFrame(errors.rows, columns=["row", "column", "reason"])
    id_by_row = dict(zip(rows.tolist(), app_ids.tolist(), strict=True))
    rejects.insert(1, "application_id", [id_by_row.get(r) for r in rejects["row"]])
    rejects = rejects.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    return Validated(frame, faces, face_rows, rejects, total=n, ignored_columns=ignored)


def rejects_path(input_path: str | Path) -> Path:
    p = Path(input_path)
    return p.with_name(p.name.split(".")[0] + ".rejects.csv")


def write_rejects(rejects: pd.DataFrame, input_path: str | Path) -> Path | None:
    """Beside the input, so the person who owns the file finds it; removed when a re-run has none."""
    path = rejects_path(input_path)
    if len(rejects) == 0:
        path.unlink(missing_ok=True)
        return None
    rejects[REJECT_COLUMNS].to_csv(path, index=False)
    return path
