"""Load applications into the identity graph: prepared rows in, accounts, signals and face links out.

Order is what makes a crash harmless. Per segment of rows, the store gets the account and its signal
relationships, then the ``SAME_FACE`` links whose later endpoint is in the segment, and only then the
account's face vector together with its ``content_hash``. A row without its hash is "changed" to the next run, which clears what it half
wrote and writes it again, so a re-run after ``kill -9`` ends with the graph of an uninterrupted run. The
face index is saved after the store; a journal beside it names the ids in flight, and the next run copies
their faces back from the store before it starts (``reconcile_face_index``).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from embeddings.index import EXACT_MIN_QUERIES, FLAT, FaceIndex, normalise
from embeddings.pairs import face_pairs_frame, face_pairs_list
from graph import schema
from graph.contract.io import ROW, records_frame
from graph.contract.prepare import PreparedBatch, iter_prepare_file, prepare
from graph.contract.pseudonymise import Pseudonymiser, load_key
from graph.contract.validate import write_rejects
from graph.ingest.face_links import new_face_pairs
from graph.settings import Settings
from graph.store import cypher
from graph.store.bolt import GraphStore

log = logging.getLogger(__name__)

# Bolt messages over 16 MiB are refused by ArcadeDB (and stall the client), so batches are also capped by size
MAX_BATCH_BYTES = 8_000_000
ROW_OVERHEAD_BYTES = 600
READ_CHUNK = 5000
# queries per face search: large, because a big batch is searched exactly with BLAS in one pass over the
# gallery per call (see embeddings.index.EXACT_MIN_QUERIES); it bounds the [q, k] result arrays
SEARCH_CHUNK = 65_536
ACCOUNT_PROPS = (
    "created_at",
    "created_at_iso",
    "name_key",
    "dob_key",
    "birth_year",
    "document_type",
    "document_country",
    "liveness_score",
    "document_authenticity_score",
    "label",
)
# the input's ring_id is ground truth for evaluation; Account.ring_id is where scoring writes detected rings
KNOWN_RING_PROP = "known_ring_id"
# relationships an account owns and a re-ingest rewrites; MEMBER_OF belongs to scoring
OWNED_RELS = [s.rel for s in schema.SIGNALS] + [schema.SAME_FACE]

Status = Literal["new", "updated", "unchanged", "rejected"]


class ThresholdMissing(RuntimeError):
    """No SAME_FACE threshold is configured or calibrated."""


@dataclass
class IngestSummary:
    files: list[str] = field(default_factory=list)
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    new_accounts: int = 0
    updated: int = 0
    unchanged: int = 0
    signal_links: int = 0
    same_face_links: int = 0
    faces_indexed: int = 0
    seconds: float = 0.0
    rejects_files: list[str] = field(default_factory=list)
    # seconds per stage (prepare, classify, faces, store, index), for benchmarks and tuning
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Accepted applications per second."""
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: IngestSummary) -> None:
        for name in (
            "rows",
            "accepted",
            "rejected",
            "new_accounts",
            "updated",
            "unchanged",
            "signal_links",
            "same_face_links",
            "faces_indexed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.files += other.files
        self.rejects_files += other.rejects_files
        for k, v in other.stages.items():
            self.stages[k] = self.stages.get(k, 0.0) + v

    def lines(self) -> list[str]:
        return [
            f"rows read        {self.rows:>10,}",
            f"accepted         {self.accepted:>10,}",
            f"rejected         {self.rejected:>10,}",
            f"new accounts     {self.new_accounts:>10,}",
            f"updated          {self.updated:>10,}",
            f"unchanged        {self.unchanged:>10,}",
            f"new signal links {self.signal_links:>10,}",
            f"SAME_FACE links  {self.same_face_links:>10,}",
            f"faces indexed    {self.faces_indexed:>10,}",
            f"time             {self.seconds:>10.1f} s",
            f"rate             {self.rate:>10,.0f} applications/s",
        ] + (
            ["stages           " + ", ".join(f"{k} {v:.1f} s" for k, v in self.stages.items())]
            if self.stages
            else []
        )


@dataclass
class RecordOutcome:
    """What happened to one submitted record (the API's per-record answer)."""

    application_id: str | None
    status: Status
    reasons: list[str] = field(default_factory=list)
    face_matches: list[tuple[str, float]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status != "rejected"


@dataclass
class IngestResult:
    records: list[RecordOutcome]
    summary: IngestSummary


# ---- public entry points ----------------------------------------------------------------------------


def ingest_files(
    paths: Sequence[str | Path],
    settings: Settings,
    store: GraphStore,
    index: FaceIndex | None = None,
    threshold: float | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Load each file in turn; rejects go to a file beside each input. ``index`` defaults to the saved one."""
    started = time.perf_counter()
    thr = same_face_threshold(settings, threshold)
    pseudonymiser = Pseudonymiser(load_key(settings))
    index = open_face_index(settings, store, index)
    total = IngestSummary()
    for path in paths:
        rejects = []
        t0 = time.perf_counter()
        # chunks keep memory flat on large files; the index is saved after each chunk's store writes
        for batch in iter_prepare_file(path, settings, pseudonymiser, chunk_rows=settings.ingest_chunk_rows):
            prepared = time.perf_counter() - t0
            summary, _ = _ingest_batch(
                batch, settings, store, index, thr, progress, save_index=True, bulk=True
            )
            summary.stages = {"prepare": prepared, **summary.stages}
            summary.files = [] if rejects else [str(path)]
            summary.rows = int(batch.summary.get("rows", len(batch.frame) + summary.rejected))
            rejects.append(batch.rejects)
            total.add(summary)
            t0 = time.perf_counter()
        written = write_rejects(pd.concat(rejects, ignore_index=True), path) if rejects else None
        if written is not None:
            total.rejects_files.append(str(written))
    total.seconds = time.perf_counter() - started
    return total


def ingest_records(
    records: list[dict],
    settings: Settings,
    store: GraphStore,
    index: FaceIndex,
    threshold: float | None = None,
    save_index: bool = False,
    pseudonymiser: Pseudonymiser | None = None,
) -> IngestResult:
    """The real-time path: one outcome per record, in order. The index is updated in memory; the caller
    saves it when it chooses (a saved index that fell behind is caught up by ``reconcile_face_index``)."""
    started = time.perf_counter()
    thr = same_face_threshold(settings, threshold)
    p = pseudonymiser or Pseudonymiser(load_key(settings))
    batch = prepare(records_frame(records), settings, p) if records else _empty_batch(settings)
    summary, outcomes = _ingest_batch(batch, settings, store, index, thr, False, save_index=save_index)
    summary.rows = len(records)
    by_row: dict[int, RecordOutcome] = {o_row: o for o_row, o in outcomes.items()}
    for row, group in batch.rejects.groupby("row", sort=True):
        reasons = [
            f"{c}: {r}" if c else str(r) for c, r in zip(group["column"], group["reason"], strict=True)
        ]
        app = group["application_id"].iloc[0]
        by_row[int(row)] = RecordOutcome(None if pd.isna(app) else str(app), "rejected", reasons)
    result = []
    for i, rec in enumerate(records, start=1):
        outcome = by_row.get(i)
        if outcome is None:  # cannot happen unless prepare drops a row silently; say so rather than hide it
            outcome = RecordOutcome(str(rec.get("application_id")), "rejected", ["row was not processed"])
        result.append(outcome)
    summary.seconds = time.perf_counter() - started
    return IngestResult(result, summary)


def same_face_threshold(settings: Settings, explicit: float | None = None) -> float:
    """An explicit value, else ``RINGWATCH_SAME_FACE_THRESHOLD``, else the calibration file."""
    if explicit is not None:
        return float(explicit)
    if settings.same_face_threshold is not None:
        return float(settings.same_face_threshold)
    path = settings.face_calibration_path
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("same_face_threshold") is not None:
            return float(data["same_face_threshold"])
    raise ThresholdMissing(
        f"no SAME_FACE threshold: {path} does not exist and RINGWATCH_SAME_FACE_THRESHOLD is not set. "
        "Run `ringwatch faces calibrate` first, or pass an explicit threshold (--threshold)."
    )


# ---- face index: open, reconcile, rebuild ------------------------------------------------------------


def journal_path(settings: Settings) -> Path:
    return settings.face_index_path.with_name(settings.face_index_path.name + ".pending.json")


def new_face_index(settings: Settings) -> FaceIndex:
    """An empty index of the configured type and recall knobs."""
    return FaceIndex(
        settings.face_dim,
        index_type=settings.face_index_type,
        nprobe=settings.face_nprobe,
        ef_search=settings.face_ef_search,
    )


def open_face_index(settings: Settings, store: GraphStore, index: FaceIndex | None = None) -> FaceIndex:
    """The given or saved index (a new one if none), made to agree with the faces in the store."""
    if index is None:
        path = settings.face_index_path
        index = FaceIndex.load(path) if path.exists() else new_face_index(settings)
    reconcile_face_index(store, index, settings)
    return index


def reconcile_face_index(store: GraphStore, index: FaceIndex, settings: Settings) -> int:
    """Bring the index in line with the store's faces after a crash; returns how many ids were fixed.

    Cheap when nothing went wrong: a journal left by an interrupted ingest names the ids to copy back, and
    otherwise only the counts are compared. A count mismatch rebuilds the whole index from the store.
    """
    fixed = 0
    journal = journal_path(settings)
    if journal.exists():
        ids = json.loads(journal.read_text())
        index.remove(ids)
        found_ids, vectors = fetch_faces(store, ids, index.dim)
        if len(found_ids):
            index.add(found_ids, vectors)
        fixed = len(ids)
        log.warning("face index: re-synced %d ids from an interrupted ingest", fixed)
    stored = store.read(cypher.FACE_COUNT)[0]["n"]
    if stored != len(index):
        log.warning(
            "face index holds %d faces, the store %d: rebuilding it from the store", len(index), stored
        )
        ids, vectors = _all_faces(store, index.dim)
        if len(ids):
            index.rebuild(ids, vectors)
        else:
            index.remove(index.ids())
        fixed += len(ids)
    if fixed:
        index.save(settings.face_index_path)
    journal.unlink(missing_ok=True)
    return fixed


def rebuild_face_index(store: GraphStore, settings: Settings, save: bool = True) -> FaceIndex:
    """A fresh index from the faces persisted on the accounts (the store is the system of record)."""
    ids, vectors = _all_faces(store, settings.face_dim)
    index = new_face_index(settings)
    if len(ids):
        index.rebuild(ids, vectors)
    if save:
        index.save(settings.face_index_path)
        journal_path(settings).unlink(missing_ok=True)
    return index


def encode_face(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_faces(encoded: Sequence[str], dim: int) -> np.ndarray:
    if not encoded:
        return np.zeros((0, dim), np.float32)
    raw = b"".join(base64.b64decode(e) for e in encoded)
    return np.frombuffer(raw, dtype="<f4").reshape(len(encoded), dim).astype(np.float32)


def fetch_faces(store: GraphStore, ids: Sequence[str], dim: int) -> tuple[list[str], np.ndarray]:
    out_ids: list[str] = []
    out_faces: list[str] = []
    for lo in range(0, len(ids), READ_CHUNK):
        rows = store.read(
            cypher.FACES,
            ids=list(ids[lo : lo + READ_CHUNK]),
        )
        out_ids += [r["id"] for r in rows]
        out_faces += [r["face"] for r in rows]
    return out_ids, decode_faces(out_faces, dim)


def _all_faces(store: GraphStore, dim: int) -> tuple[list[str], np.ndarray]:
    ids = [r["id"] for r in store.read(cypher.FACE_IDS)]
    return fetch_faces(store, ids, dim)


# ---- the work ----------------------------------------------------------------------------------------


def _empty_batch(settings: Settings) -> PreparedBatch:
    rejects = pd.DataFrame({"row": [], "application_id": [], "column": [], "reason": []})
    return PreparedBatch(
        pd.DataFrame({"application_id": []}),
        np.zeros((0, settings.face_dim), np.float32),
        np.array([], dtype=object),
        rejects,
        {"rows": 0},
    )


def _ingest_batch(
    batch: PreparedBatch,
    settings: Settings,
    store: GraphStore,
    index: FaceIndex,
    threshold: float,
    progress: bool,
    save_index: bool,
    bulk: bool = False,
) -> tuple[IngestSummary, dict[int, RecordOutcome]]:
    frame = batch.frame.reset_index(drop=True)
    ids = frame["application_id"].astype(str).to_numpy(dtype=object)
    clock = _Stages()
    existing = _stored_hashes(store, ids)
    hashes = frame["content_hash"].to_numpy(dtype=object)
    status = np.array(
        [
            "new" if i not in existing else "unchanged" if existing[i] == h else "updated"
            for i, h in zip(ids, hashes, strict=True)
        ],
        dtype=object,
    )
    clock.lap("classify")
    face_of = _faces_by_row(batch, ids)
    work = np.flatnonzero(status != "unchanged")
    extracted, failed = _extract_missing(frame, work, face_of, settings)
    face_of.update(extracted)
    if failed:
        _reject_rows(batch, frame, failed)
        status[list(failed)] = "rejected"
        work = np.array([i for i in work if i not in failed], dtype=np.int64)

    work_ids = ids[work]
    face_rows = [i for i in work if i in face_of]
    face_ids = [str(ids[i]) for i in face_rows]
    # the index is changed in memory now and saved only after the store, so a crash leaves the old file
    index.remove([str(i) for i in ids[work][status[work] == "updated"]])
    vectors = normalise(np.stack([face_of[i] for i in face_rows]), index.dim) if face_rows else None
    if bulk and vectors is not None and (len(face_rows) >= EXACT_MIN_QUERIES or index.index_type == FLAT):
        # a file's batch: exact range search over the stored vectors, whatever the index type (an
        # approximate index would miss pairs), and the batch against itself only once (symmetric)
        pairs = new_face_pairs(
            face_ids, vectors, _gallery(index), threshold, settings.face_link_k, index.ids_of
        )
        index.add(face_ids, vectors)
    else:
        if face_rows:
            index.add(face_ids, vectors)
        pairs = face_pairs(index, face_ids, vectors, threshold, settings.face_link_k)

    clock.lap("faces")
    journal = journal_path(settings)
    if save_index and len(work):
        journal.parent.mkdir(parents=True, exist_ok=True)
        journal.write_text(json.dumps([str(i) for i in work_ids]))
    summary = IngestSummary(
        accepted=len(frame) - len(failed),
        rejected=int(
            batch.summary.get("rejected", batch.rejects["row"].nunique() if len(batch.rejects) else 0)
        )
        + len(failed),
        new_accounts=int((status == "new").sum()),
        updated=int((status == "updated").sum()),
        unchanged=int((status == "unchanged").sum()),
        faces_indexed=len(face_rows),
    )
    links, face_links = _write(store, settings, frame, work, status, face_of, pairs, ids, progress)
    summary.signal_links, summary.same_face_links = links, face_links
    clock.lap("store")
    if save_index and len(work):
        index.save(settings.face_index_path)
        journal.unlink(missing_ok=True)
    clock.lap("index")
    summary.stages = clock.laps

    matches: dict[str, list[tuple[str, float]]] = {}
    for a, b, s in pairs.itertuples(index=False):
        matches.setdefault(a, []).append((b, float(s)))
        matches.setdefault(b, []).append((a, float(s)))
    rows = frame[ROW].to_numpy() if ROW in frame else np.arange(1, len(frame) + 1)
    outcomes = {}
    for i, app in enumerate(ids):
        if status[i] == "rejected":
            outcomes[int(rows[i])] = RecordOutcome(str(app), "rejected", [failed[i]])
        else:
            found = sorted(matches.get(str(app), []), key=lambda m: -m[1])
            outcomes[int(rows[i])] = RecordOutcome(str(app), status[i], [], found)
    return summary, outcomes


class _Stages:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._t
        self._t = now


def _stored_hashes(store: GraphStore, ids: np.ndarray) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for lo in range(0, len(ids), READ_CHUNK):
        rows = store.read(
            cypher.HASHES,
            ids=[str(i) for i in ids[lo : lo + READ_CHUNK]],
        )
        found.update((r["id"], r["h"]) for r in rows)
    return found


def _faces_by_row(batch: PreparedBatch, ids: np.ndarray) -> dict[int, np.ndarray]:
    pos = {str(a): i for i, a in enumerate(ids)}
    return {pos[str(a)]: batch.faces[k] for k, a in enumerate(batch.face_ids) if str(a) in pos}


def _extract_missing(
    frame: pd.DataFrame, work: np.ndarray, face_of: dict[int, np.ndarray], settings: Settings
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Embeddings for rows that bring a selfie but no vector; a selfie that fails rejects its row."""
    if "selfie_path" not in frame:
        return {}, {}
    selfies = frame["selfie_path"].to_numpy(dtype=object)
    todo = [i for i in work if i not in face_of and selfies[i] is not None and pd.notna(selfies[i])]
    if not todo:
        return {}, {}
    from embeddings.extract import make_extractor

    extractor = make_extractor(settings.face_model)
    got: dict[int, np.ndarray] = {}
    failed: dict[int, str] = {}
    if extractor.dim != settings.face_dim:
        reason = f"selfie_path: extractor {extractor.name} gives {extractor.dim}-d faces, face_dim is {settings.face_dim}"
        return {}, dict.fromkeys(todo, reason)
    for i in tqdm(todo, desc="selfies", unit="img", disable=len(todo) < 50):
        try:
            v = np.asarray(extractor.extract(selfies[i]), dtype=np.float32)
        except ValueError as exc:  # NoFaceFound and UnreadableImage are ValueErrors
            failed[i] = f"selfie_path: {exc}"
            continue
        got[i] = v / np.linalg.norm(v)
    return got, failed


def _reject_rows(batch: PreparedBatch, frame: pd.DataFrame, failed: dict[int, str]) -> None:
    rows = frame[ROW].to_numpy() if ROW in frame else np.arange(1, len(frame) + 1)
    extra = pd.DataFrame(
        {
            "row": [int(rows[i]) for i in failed],
            "application_id": [frame["application_id"].iloc[i] for i in failed],
            "column": ["selfie_path"] * len(failed),
            "reason": [r.removeprefix("selfie_path: ") for r in failed.values()],
        }
    )
    batch.rejects = pd.concat([batch.rejects, extra], ignore_index=True).sort_values("row", kind="stable")


def _gallery(index: FaceIndex) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The index's (keys, vectors) blocks, its read lock held until the last block has been used."""
    with index.reading():
        yield from index.iter_vectors(SEARCH_CHUNK)


def face_pairs(
    index: FaceIndex, ids: list[str], vectors: np.ndarray | None, threshold: float, k: int
) -> pd.DataFrame:
    """SAME_FACE pairs (``embeddings.pairs``) between new faces, already added to ``index``, and the whole
    gallery."""
    if vectors is None or not len(ids) or len(index) < 2:
        return face_pairs_frame((), (), ())
    return face_pairs_frame(*_pair_arrays(index, ids, vectors, threshold, k))


def face_pair_list(
    index: FaceIndex, ids: list[str], vectors: np.ndarray | None, threshold: float, k: int
) -> list[tuple[str, str, float]]:
    """``face_pairs`` as ``(a, b, similarity)`` tuples, in the same order, for the handful of faces of a
    real-time decision."""
    if vectors is None or not len(ids) or len(index) < 2:
        return []
    return face_pairs_list(*_pair_arrays(index, ids, vectors, threshold, k))


def _pair_arrays(
    index: FaceIndex, ids: list[str], vectors: np.ndarray, threshold: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a_parts, b_parts, s_parts = [], [], []
    for lo in range(0, len(ids), SEARCH_CHUNK):
        # ids are mapped under the search's own lock, so a concurrent remove cannot leave a key without id
        sims, found = index.search_ids(vectors[lo : lo + SEARCH_CHUNK], k=min(k + 1, len(index)), bulk=True)
        me = np.array(ids[lo : lo + SEARCH_CHUNK], dtype=object)[:, None]
        # a face that finds itself goes with the self-pairs (embeddings.pairs)
        keep = (found != None) & (sims >= threshold)  # noqa: E711
        rows, cols = np.nonzero(keep)
        a_parts.append(me[rows, 0])
        b_parts.append(found[rows, cols])
        s_parts.append(sims[rows, cols])
    return np.concatenate(a_parts), np.concatenate(b_parts), np.concatenate(s_parts)


def _props(frame: pd.DataFrame, settings: Settings) -> list[dict]:
    cols = [c for c in (*ACCOUNT_PROPS, *settings.extra_columns) if c in frame]
    out = []
    data = {c: frame[c].to_numpy(dtype=object) for c in cols}
    ring = frame["ring_id"].to_numpy(dtype=object) if "ring_id" in frame else None
    for i in range(len(frame)):
        p = {c: _plain(data[c][i]) for c in cols}
        p[KNOWN_RING_PROP] = _plain(ring[i]) if ring is not None else None
        out.append(p)
    return out


def _plain(v: object) -> object:
    """Bolt-safe scalars: numpy to Python, NaN to null (absent)."""
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def face_batch_size(settings: Settings) -> int:
    """Rows per face-carrying transaction, so a message stays far below Bolt's 16 MiB."""
    per_row = ROW_OVERHEAD_BYTES + 4 * settings.face_dim * 4 // 3
    return max(1, min(settings.batch_size, MAX_BATCH_BYTES // per_row))


def _write(
    store: GraphStore,
    settings: Settings,
    frame: pd.DataFrame,
    work: np.ndarray,
    status: np.ndarray,
    face_of: dict[int, np.ndarray],
    pairs: pd.DataFrame,
    ids: np.ndarray,
    progress: bool,
) -> tuple[int, int]:
    if not len(work):
        return 0, 0
    sub = frame.iloc[work].reset_index(drop=True)
    props = _props(sub, settings)
    signal_cols = {s.column: sub[s.column].to_numpy(dtype=object) for s in schema.SIGNALS if s.column in sub}
    # each pair is written with the segment of its later endpoint, once both accounts exist
    position = {str(ids[i]): k for k, i in enumerate(work)}
    pa = np.array([position.get(a, -1) for a in pairs["a"]], dtype=np.int64)
    pb = np.array([position.get(b, -1) for b in pairs["b"]], dtype=np.int64)
    pair_pos = np.maximum(pa, pb)
    seg = max(1, settings.batch_size)
    bar = tqdm(total=len(work), desc="ingest", unit="app", disable=not progress)
    links = 0
    rels = OWNED_RELS
    updated = status[work] == "updated"
    for lo in range(0, len(work), seg):
        hi = min(lo + seg, len(work))
        clear = [{"id": str(ids[work[k]])} for k in range(lo, hi) if updated[k]]
        if clear:
            store.write(cypher.CLEAR, rows=clear, rels=rels)
        rows = []
        for k in range(lo, hi):
            i = work[k]
            row = {"id": str(ids[i]), "props": props[k]}
            for col, values in signal_cols.items():
                v = values[k]
                row[col] = [] if v is None or (isinstance(v, float) and v != v) else [str(v)]
                links += len(row[col])
            rows.append(row)
        store.write_batches(cypher.ACCOUNT, rows, batch_size=seg)
        mine = pairs[(pair_pos >= lo) & (pair_pos < hi)]
        if len(mine):
            store.write_batches(
                cypher.FACE_LINK,
                [{"a": a, "b": b, "similarity": float(s)} for a, b, s in mine.itertuples(index=False)],
            )
        hashes = sub["content_hash"].to_numpy(dtype=object)
        done = [
            {
                "id": str(ids[work[k]]),
                "hash": str(hashes[k]),
                "face": encode_face(face_of[work[k]]) if work[k] in face_of else None,
            }
            for k in range(lo, hi)
        ]
        store.write_batches(cypher.DONE, done, batch_size=face_batch_size(settings))
        bar.update(hi - lo)
    bar.close()
    return links, len(pairs)


# ---- the real-time path: a handful of records, one transaction ---------------------------------------------
# The bulk path above orders its transactions so a crash mid-file is harmless. A handful of records can go in
# one transaction instead (the API's decisions): all or nothing, one round trip, and the caller's own
# properties (scores) travel with the account, so a stored account is never without its decision.


def one_shot_rows(
    settings: Settings,
    prepared: list[dict] | pd.DataFrame,
    positions: Sequence[int],
    updated: Sequence[bool],
    face_of: dict[int, np.ndarray],
    pairs: pd.DataFrame | Sequence[tuple[str, str, float]],
) -> list[dict]:
    """Rows for ``write_one_shot``: prepared rows ``positions`` of ``prepared`` (dicts from
    ``graph.contract.prepare.prepare_rows``, or a prepared frame; ``updated`` ones are cleared first), each with its
    signals, face, ``content_hash`` and the SAME_FACE ``pairs`` (``face_pairs`` or ``face_pair_list``) whose
    later endpoint it is (a partner outside ``positions`` already exists). Callers may add to each row's
    ``props`` and set ``ring_id``."""
    positions = list(positions)
    if not positions:
        return []
    if isinstance(prepared, pd.DataFrame):
        sub = prepared.iloc[positions].to_dict("records")
    else:
        sub = [prepared[k] for k in positions]
    cols = [c for c in (*ACCOUNT_PROPS, *settings.extra_columns) if any(c in r for r in sub)]
    rows = []
    for k, (pos, r) in enumerate(zip(positions, sub, strict=True)):
        p = {c: _plain(r.get(c)) for c in cols}
        p[KNOWN_RING_PROP] = _plain(r.get("ring_id"))
        p["content_hash"] = str(r["content_hash"])
        p["face"] = encode_face(face_of[pos]) if pos in face_of else None
        row = {"id": str(r["application_id"]), "props": p, "clear": bool(updated[k]), "ring_id": None}
        for s in schema.SIGNALS:
            v = r.get(s.column)
            row[s.column] = [] if v is None or (isinstance(v, float) and v != v) else [str(v)]
        row["face_out"], row["face_in"] = [], []
        rows.append(row)
    order = {row["id"]: k for k, row in enumerate(rows)}
    for a, b, s in pairs.itertuples(index=False) if isinstance(pairs, pd.DataFrame) else pairs:
        ka, kb = order.get(a, -1), order.get(b, -1)
        if ka >= kb:  # written with ``a`` (``a < b``: the relationship points a -> b)
            rows[ka]["face_out"].append({"id": b, "similarity": float(s)})
        else:
            rows[kb]["face_in"].append({"id": a, "similarity": float(s)})
    return rows


def write_one_shot(store: GraphStore, rows: list[dict]) -> None:
    """Write ``rows`` (from ``one_shot_rows``, or ``{"id", "props"}`` for a property-only update of an
    existing account) in one transaction: everything or nothing. Meant for a handful of rows."""
    if not rows:
        return
    empty = {s.column: [] for s in schema.SIGNALS} | {"face_out": [], "face_in": [], "clear": False}
    store.write(cypher.ONE_SHOT, rows=[empty | {"ring_id": None} | r for r in rows], rels=OWNED_RELS)
