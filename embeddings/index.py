"""A persistent 1:N face index over FAISS, keyed by application id.

Cosine similarity is inner product on L2-normalised vectors, so every vector is normalised on the way in
and bad vectors (wrong dimension, NaN, all zero) are refused before they can poison the gallery.

Small galleries use exact search (``IndexFlatIP``). Past ``FLAT_MAX`` vectors an ``auto`` index switches to
IVF-Flat; HNSW (``IndexHNSWFlat``, M 32, efConstruction 40) is there to be chosen (``index_type="hnsw"``,
``RINGWATCH_FACE_INDEX_TYPE``). Both keep the full vectors, so scores are exact cosines. What
``scripts/bench_faces.py`` measured on the generator's near-isotropic 512-d embeddings (figures in docs/benchmarks.md):

- Single 1:N searches: at 100k the two are level in recall of the neighbours above the SAME_FACE threshold
  and in latency (HNSW ef 128, IVF-Flat nprobe 64 of 512). HNSW's cost grows about with log n, IVF's with
  the share of the gallery it must scan, so at 1M HNSW is ahead on both.
- Building and growing: HNSW builds several times slower than IVF-Flat, most of all at 100k; inside
  ``ringwatch ingest`` HNSW's adds made the face stage much longer at 100k.
- All-pairs linking: HNSW ef 16 and IVF-Flat nprobe 32 find nearly all the same-identity pairs above the
  threshold, HNSW faster and IVF-Flat with slightly more recall.

So ``auto`` keeps IVF-Flat, which grows cheaply with ingest; a large, mostly static gallery that serves
real-time searches is better on HNSW. HNSW cannot delete: removed faces become tombstones (see
``remove``). M 16 with efConstruction 80 built slower and recalled less; M 48+ would put 1M faces at 3 GB
or more (computed). IVF-SQ8 with float refinement lost recall at equal nprobe and saved no memory once the
refinement vectors were kept. Recall is set per search through ``ef_search`` (HNSW) or ``nprobe`` (IVF).
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

FORMAT_VERSION = 1
MAGIC = b"RWFACEIX"
METRIC = "cosine"
FLAT = "flat"
IVF_FLAT = "ivf_flat"
HNSW = "hnsw"
INDEX_TYPES = (FLAT, IVF_FLAT, HNSW)
# below this many vectors exact search is fast enough for a real-time query at 512-d on two cores
FLAT_MAX = 50_000
# an IVF index is retrained once the gallery has grown this many times past its training size
RETRAIN_GROWTH = 4.0
DEFAULT_NPROBE = 64
TRAIN_POINTS_PER_CELL = 50
CHUNK = 65_536
# with bulk=True, a batch of at least this many queries is searched exactly (BLAS over the stored vectors)
# when IVF would scan more than 1/EXACT_SCAN_RATIO of the gallery: measured at 100k (512-d, 2 cores), a few
# thousand queries were faster exact than at nprobe 64 of 512 cells, which also missed some pairs >= 0.45
EXACT_MIN_QUERIES = 1024
EXACT_SCAN_RATIO = 10
# HNSW graph parameters (see scripts/bench_faces.py): links per node, build-time and search-time beam widths.
# ef 256 finds more of the neighbours above the SAME_FACE threshold than ef 128, which is faster; a missed
# duplicate face is a missed ring, so recall wins. Pass ef_search=512 (more recall still, at 1M most of all)
# where latency allows.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
DEFAULT_EF_SEARCH = 256
# HNSW cannot delete: removed faces become tombstones that every search filters out (exactly, through an
# IDSelector), and the graph is rebuilt from the live vectors once they pass this share of the nodes
TOMBSTONE_REBUILD_FRACTION = 0.2
TOMBSTONE_REBUILD_MIN = 1000


def choose_index_type(n: int) -> str:
    return FLAT if n < FLAT_MAX else IVF_FLAT


def choose_nlist(n: int) -> int:
    """About 2·sqrt(n) cells, a power of two (2,048 at 1M).

    Training and assignment cost grow with the cell count; on near-isotropic embeddings recall depends on
    the share of the gallery scanned, which nprobe sets, so more cells buy little.
    """
    return int(2 ** round(math.log2(max(64.0, 2.0 * math.sqrt(max(n, 1))))))


def normalise(vectors: np.ndarray | Sequence[float], dim: int) -> np.ndarray:
    """Validated float32 unit rows; a clear ValueError for anything a gallery must never hold."""
    x = np.array(vectors, dtype=np.float32, copy=True)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"face vectors must be 1-D or 2-D, got shape {x.shape}")
    if x.shape[1] != dim:
        raise ValueError(f"face vector dimension mismatch: index holds {dim}-d vectors, got {x.shape[1]}-d")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(f"face vectors contain NaN or infinite values (rows {_rows(bad)})")
    norms = np.linalg.norm(x, axis=1)
    zero = norms < 1e-12
    if zero.any():
        raise ValueError(f"face vectors must not be all zero (rows {_rows(zero)})")
    x /= norms[:, None]
    return x


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:10])
    return shown + (f", ... ({len(rows)} in all)" if len(rows) > 10 else "")


def _validated(vectors: np.ndarray | Sequence, dim: int) -> np.ndarray:
    """Check every row in chunks (so a 2 GB gallery is not copied whole); normalisation happens per chunk."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    for lo in range(0, len(x), CHUNK):
        try:
            normalise(x[lo : lo + CHUNK], dim)
        except ValueError as e:
            if lo == 0:
                raise
            raise ValueError(f"{e} (in the chunk starting at row {lo})") from None
    return x


def _training_sample(x: np.ndarray, kind: str) -> np.ndarray | None:
    if kind != IVF_FLAT or len(x) == 0:
        return None
    want = choose_nlist(len(x)) * TRAIN_POINTS_PER_CELL
    if len(x) <= want:
        return x
    rows = np.sort(np.random.default_rng(len(x)).choice(len(x), size=want, replace=False))
    return x[rows]


def _kind_of(index: faiss.Index) -> str:
    if not isinstance(index, faiss.IndexIDMap2):
        return IVF_FLAT
    return HNSW if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSWFlat) else FLAT


def _check_ids(ids: Sequence[str]) -> list[str]:
    out = [str(i) for i in ids]
    for i in out:
        if not i or "\x00" in i:
            raise ValueError(f"face ids must be non-empty strings without NUL characters, got {i!r}")
    if len(set(out)) != len(out):
        raise ValueError("face ids must be unique within one call")
    return out


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers so it is not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class FaceIndex:
    """Face gallery: string ids in, cosine similarities out.

    ``index_type`` is ``"auto"`` (exact while small, ``choose_index_type`` once large), ``"flat"``,
    ``"ivf_flat"`` or ``"hnsw"``. Searches may run concurrently from many threads; writes take an
    exclusive lock. Adding an id that is already present replaces its vector. ``nprobe`` (IVF) and
    ``ef_search`` (HNSW) are the default recall/latency knobs; both can be overridden per search.
    """

    def __init__(
        self,
        dim: int,
        index_type: str = "auto",
        nprobe: int = DEFAULT_NPROBE,
        ef_search: int = DEFAULT_EF_SEARCH,
        hnsw_m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        if index_type != "auto" and index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be 'auto' or one of {INDEX_TYPES}, got {index_type!r}")
        if min(nprobe, ef_search, hnsw_m, ef_construction) <= 0:
            raise ValueError("nprobe, ef_search, hnsw_m and ef_construction must be positive")
        self.dim = dim
        self.policy = index_type
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self._lock = RWLock()
        self._key_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_key = 0
        self._trained_on = 0
        # HNSW only: keys removed from the id maps whose nodes are still in the graph, and the selector
        # that hides them from searches (rebuilt by each write, read-only while searches hold the lock)
        self._dead: set[int] = set()
        self._live_sel: faiss.IDSelector | None = None
        self._dead_batch: faiss.IDSelector | None = None
        # IVF needs vectors to train on, so every index starts exact and converts on its first add
        self._index = self._empty(FLAT, None)

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        vectors: np.ndarray,
        index_type: str = "auto",
        nprobe: int = DEFAULT_NPROBE,
        **params: int,
    ) -> FaceIndex:
        """A new index over a whole gallery, its type picked for the gallery's size when ``auto``.

        ``params``: ``ef_search``, ``hnsw_m``, ``ef_construction`` (HNSW)."""
        x = np.asarray(vectors)
        if x.ndim != 2:
            raise ValueError(f"face vectors must be 2-D, got shape {x.shape}")
        index = cls(x.shape[1], index_type=index_type, nprobe=nprobe, **params)
        index.rebuild(ids, x)
        return index

    def rebuild(
        self,
        ids: Sequence[str] | None = None,
        vectors: np.ndarray | None = None,
        index_type: str | None = None,
    ) -> None:
        """Replace the contents, or re-create the index from its own vectors (retraining IVF cells)."""
        if (ids is None) != (vectors is None):
            raise ValueError("rebuild needs both ids and vectors, or neither")
        if ids is None:
            with self._lock.write():
                self._retrain_locked(index_type or self._kind_for(len(self)))
            return
        ids = _check_ids(ids)
        x = _validated(vectors, self.dim)
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids but {len(x)} vectors")
        kind = index_type or self._kind_for(len(x))
        index = self._empty(kind, _training_sample(x, kind), len(x))
        with self._lock.write():
            self._index = index
            self._key_of, self._id_of, self._next_key = {}, {}, 0
            self._set_dead(set())
            self._add_locked(ids, x)

    def _kind_for(self, n: int) -> str:
        return choose_index_type(n) if self.policy == "auto" else self.policy

    def _empty(self, kind: str, train: np.ndarray | None, n: int = 0) -> faiss.Index:
        """An empty index of ``kind``; IVF cells are sized for ``n`` vectors and trained on ``train``."""
        if kind not in INDEX_TYPES:
            raise ValueError(f"unknown index type {kind!r}")
        if kind == HNSW:
            self._trained_on = n
            graph = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = self.ef_construction
            graph.hnsw.efSearch = self.ef_search
            return faiss.IndexIDMap2(graph)
        if kind == FLAT or train is None or len(train) == 0:
            self._trained_on = 0
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        nlist = max(1, min(choose_nlist(max(n, len(train))), len(train) // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True
        index.cp.niter = 10
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_CELL
        index.cp.seed = 1234
        index.train(normalise(train, self.dim))
        # the gallery size the cells were laid out for, not the sample size (retraining keys off it)
        self._trained_on = max(n, len(train))
        return index

    def _retrain_locked(self, kind: str) -> None:
        """Move every vector into a freshly trained index, batch by batch; keys and ids stay as they are."""
        n = len(self)
        want = choose_nlist(n) * TRAIN_POINTS_PER_CELL
        rng = np.random.default_rng(n)
        sample = [x[rng.random(len(x)) < want / max(n, 1)] for _, x in self.iter_vectors(1 << 16)]
        train = np.concatenate(sample) if sample else np.empty((0, self.dim), np.float32)
        index = self._empty(kind, train if kind == IVF_FLAT else None, n)
        for keys, x in self.iter_vectors(1 << 16):
            index.add_with_ids(x, keys)
        self._index = index
        self._set_dead(set())  # iter_vectors skipped the tombstones, so the new index has none

    # ---- writes -------------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray | Sequence[Sequence[float]]) -> None:
        ids = _check_ids(ids)
        x = _validated(vectors, self.dim)
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids but {len(x)} vectors")
        with self._lock.write():
            self._remove_locked([i for i in ids if i in self._key_of])
            self._add_locked(ids, x)
            self._maybe_grow()

    def remove(self, ids: Iterable[str]) -> int:
        """Remove the ids that are present; returns how many were."""
        with self._lock.write():
            return self._remove_locked([str(i) for i in ids if str(i) in self._key_of])

    def _add_locked(self, ids: list[str], x: np.ndarray) -> None:
        keys = np.arange(self._next_key, self._next_key + len(ids), dtype=np.int64)
        for lo in range(0, len(x), CHUNK):
            self._index.add_with_ids(normalise(x[lo : lo + CHUNK], self.dim), keys[lo : lo + CHUNK])
        self._next_key += len(ids)
        for i, k in zip(ids, keys.tolist(), strict=True):
            self._key_of[i] = k
            self._id_of[k] = i

    def _remove_locked(self, ids: list[str]) -> int:
        if not ids:
            return 0
        keys = np.array([self._key_of.pop(i) for i in ids], dtype=np.int64)
        for k in keys.tolist():
            del self._id_of[k]
        if self.index_type != HNSW:
            self._index.remove_ids(keys)
            return len(keys)
        self._set_dead(self._dead | set(keys.tolist()))
        dead = len(self._dead)
        if dead >= TOMBSTONE_REBUILD_MIN and dead > TOMBSTONE_REBUILD_FRACTION * self._index.ntotal:
            self._retrain_locked(HNSW)
        return len(keys)

    def _set_dead(self, dead: set[int]) -> None:
        """Swap in a new tombstone set and its selector (under the write lock; searches read both under the
        read lock, so a search never sees a half-made selector)."""
        self._dead = dead
        if not dead:
            self._dead_batch = self._live_sel = None
            return
        batch = faiss.IDSelectorBatch(np.fromiter(dead, dtype=np.int64, count=len(dead)))
        # IDSelectorNot does not own the batch: keep a reference for as long as the selector lives
        self._dead_batch, self._live_sel = batch, faiss.IDSelectorNot(batch)

    def _maybe_grow(self) -> None:
        if self.policy == FLAT:
            return
        n = self._index.ntotal
        large = choose_index_type(max(n, FLAT_MAX)) if self.policy == "auto" else self.policy
        to_large = self.index_type == FLAT and n >= (FLAT_MAX if self.policy == "auto" else 1)
        if to_large:
            self._retrain_locked(large)
        elif self.index_type == IVF_FLAT and n > RETRAIN_GROWTH * self._trained_on:
            # an IVF index stays IVF as it grows; rebuild() moves an "auto" one to today's large type
            self._retrain_locked(IVF_FLAT)

    # ---- reads --------------------------------------------------------------------------------------
    @property
    def index_type(self) -> str:
        return _kind_of(self._index)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._dead)

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._key_of

    def ids(self) -> list[str]:
        with self._lock.read():
            return list(self._key_of)

    def search(
        self,
        vectors: np.ndarray | Sequence[float],
        k: int = 10,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        """For each query, up to ``k`` (id, cosine similarity) pairs, most similar first."""
        x = normalise(vectors, self.dim)
        with self._lock.read():
            sims, keys = self._search_locked(x, k, nprobe, ef_search=ef_search)
            return [
                [(self._id_of[key], s) for s, key in zip(srow, krow, strict=True) if key >= 0]
                for srow, krow in zip(sims.tolist(), keys.tolist(), strict=True)
            ]

    def search_arrays(
        self, vectors: np.ndarray, k: int = 10, nprobe: int | None = None, ef_search: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Similarities [q, k] and internal int64 keys [q, k] (-1 where fewer than k), for bulk callers."""
        x = normalise(vectors, self.dim)
        with self._lock.read():
            return self._search_locked(x, k, nprobe, ef_search=ef_search)

    def search_ids(
        self,
        vectors: np.ndarray,
        k: int = 10,
        nprobe: int | None = None,
        bulk: bool = False,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Similarities [q, k] and application ids [q, k] (object; None where fewer than k), mapped under
        the same lock as the search so a concurrent remove cannot leave a key without its id.

        ``bulk`` lets a large batch be searched exactly when that is cheaper than IVF (see
        ``EXACT_MIN_QUERIES``); results are then exact rather than approximate."""
        x = normalise(vectors, self.dim)
        with self._lock.read():
            sims, keys = self._search_locked(x, k, nprobe, bulk=bulk, ef_search=ef_search)
            return sims, self._lookup(keys)

    def ids_of(self, keys: np.ndarray) -> np.ndarray:
        """Map internal keys back to application ids (object array; None for -1 or removed keys)."""
        with self._lock.read():
            return self._lookup(keys)

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        flat = [self._id_of.get(k) for k in np.ravel(keys).tolist()]
        return np.array(flat, dtype=object).reshape(np.shape(keys))

    def _search_locked(
        self,
        x: np.ndarray,
        k: int,
        nprobe: int | None,
        bulk: bool = False,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        if len(self) == 0:
            return np.full((len(x), k), np.nan, np.float32), np.full((len(x), k), -1, np.int64)
        params = None
        kind = self.index_type
        if kind == HNSW:
            # the beam must hold at least k results; tombstones are walked through but never returned
            ef = max(ef_search or self.ef_search, k)
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=self._live_sel)
        elif kind == IVF_FLAT:
            probe = min(nprobe or self.nprobe, self._index.nlist)
            if bulk and len(x) >= EXACT_MIN_QUERIES and probe * EXACT_SCAN_RATIO > self._index.nlist:
                return self._exact_locked(x, k)
            params = faiss.SearchParametersIVF(nprobe=probe)
        return self._index.search(x, k, params=params)

    def _exact_locked(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force top ``k`` over the IVF lists' full vectors, a block of the gallery at a time."""
        best_s = np.full((len(x), k), -np.finfo(np.float32).max, np.float32)
        best_k = np.full((len(x), k), -1, np.int64)
        for keys, vecs in self.iter_vectors(CHUNK):
            block = faiss.IndexFlatIP(self.dim)
            block.add(vecs)
            sims, pos = block.search(x, min(k, len(vecs)))
            cand_s = np.concatenate([best_s, sims], axis=1)
            cand_k = np.concatenate([best_k, np.where(pos >= 0, keys[np.maximum(pos, 0)], -1)], axis=1)
            top = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
            best_s = np.take_along_axis(cand_s, top, axis=1)
            best_k = np.take_along_axis(cand_k, top, axis=1)
        return best_s, best_k

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the read lock across several calls (e.g. an all-pairs pass) so no writer interleaves."""
        with self._lock.read():
            yield

    def iter_vectors(self, batch_size: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(keys, unit vectors) in batches, copied from the index without materialising the gallery.

        Call inside ``reading()``.
        """
        kind = self.index_type
        if kind in (FLAT, HNSW):
            flat = faiss.downcast_index(self._index.index)
            if kind == HNSW:
                flat = faiss.downcast_index(flat.storage)
            n = flat.ntotal
            xb = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
            keys = faiss.vector_to_array(self._index.id_map)
            dead = np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))
            for s in range(0, n, batch_size):
                part = keys[s : s + batch_size]
                if len(dead):
                    live = ~np.isin(part, dead)
                    yield part[live], xb[s : s + batch_size][live]
                else:
                    yield part.copy(), xb[s : s + batch_size].copy()
            return
        invlists = self._index.invlists
        buf_k: list[np.ndarray] = []
        buf_x: list[np.ndarray] = []
        held = 0
        for cell in range(self._index.nlist):
            size = invlists.list_size(cell)
            if not size:
                continue
            keys = faiss.rev_swig_ptr(invlists.get_ids(cell), size).copy()
            codes = faiss.rev_swig_ptr(invlists.get_codes(cell), size * invlists.code_size)
            buf_k.append(keys)
            buf_x.append(codes.view(np.float32).reshape(size, self.dim).copy())
            held += size
            if held >= batch_size:
                yield np.concatenate(buf_k), np.concatenate(buf_x)
                buf_k, buf_x, held = [], [], 0
        if buf_k:
            yield np.concatenate(buf_k), np.concatenate(buf_x)

    def _export(self) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.iter_vectors(1 << 16))
        if not parts:
            return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ---- persistence --------------------------------------------------------------------------------
    def header(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "metric": METRIC,
            "index_type": self.index_type,
            "policy": self.policy,
            "count": len(self),
            "nprobe": self.nprobe,
            "trained_on": self._trained_on,
            "next_key": self._next_key,
            "ef_search": self.ef_search,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "tombstones": len(self._dead),
        }

    def save(self, path: str | Path) -> None:
        """Write atomically: a temporary file in the same folder, fsynced, then renamed over ``path``.

        A crash at any point leaves either the previous file or the new one, never a torn one. The FAISS
        index is streamed to disk, so saving needs no second copy of the gallery in memory.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f, self._lock.read():
                header = json.dumps(self.header(), sort_keys=True).encode("utf-8")
                keys = np.array(list(self._id_of), dtype=np.int64)
                ids_blob = "\x00".join(self._id_of[k] for k in keys.tolist()).encode("utf-8")
                out = _ChecksumWriter(f)
                out.write(MAGIC + struct.pack("<I", len(header)) + header)
                for blob in (ids_blob, keys.tobytes()):
                    out.write(struct.pack("<Q", len(blob)) + blob)
                writer = faiss.PyCallbackIOWriter(out.write)
                faiss.write_index(self._index, writer)
                del writer
                f.write(struct.pack("<I", out.crc) + MAGIC)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    @classmethod
    def load(cls, path: str | Path) -> FaceIndex:
        """Read a saved index; a truncated, corrupt or foreign file raises ValueError."""
        path = Path(path)
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - 4 - len(MAGIC)))
            trailer = f.read()
            f.seek(0)
            if size < 2 * len(MAGIC) + 24 or trailer[4:] != MAGIC or f.read(len(MAGIC)) != MAGIC:
                raise ValueError(f"{path} is not a complete ringwatch face index")
            src = _ChecksumReader(f, size - 4 - len(MAGIC))
            src.crc = zlib.crc32(MAGIC)
            (header_len,) = struct.unpack("<I", src.read(4))
            header = json.loads(src.read(header_len))
            if header.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported face index format {header.get('format_version')}")
            blobs = [src.read(struct.unpack("<Q", src.read(8))[0]) for _ in range(2)]
            reader = faiss.PyCallbackIOReader(src.read)
            try:
                raw = faiss.read_index(reader)
            except RuntimeError as e:  # FAISS validates what it reads (a flipped byte in an HNSW graph)
                raise ValueError(f"{path}: face index is corrupt ({str(e).splitlines()[0][:200]})") from None
            finally:
                del reader
            if src.remaining or src.crc != struct.unpack("<I", trailer[:4])[0]:
                raise ValueError(f"{path}: face index is corrupt (checksum mismatch)")
        ids = blobs[0].decode("utf-8").split("\x00") if blobs[0] else []
        keys = np.frombuffer(blobs[1], dtype=np.int64).tolist()
        # files written before HNSW existed carry no HNSW fields; the defaults apply
        params = {k: header[k] for k in ("ef_search", "hnsw_m", "ef_construction") if k in header}
        index = cls(header["dim"], index_type=header["policy"], nprobe=header["nprobe"], **params)
        index._index = raw
        index._trained_on = header["trained_on"]
        index._next_key = header["next_key"]
        index._key_of = dict(zip(ids, keys, strict=True))
        index._id_of = dict(zip(keys, ids, strict=True))
        if index.index_type == HNSW:
            # the tombstones are the graph's keys that no id maps to any more
            stored = faiss.vector_to_array(raw.id_map)
            index._set_dead(set(stored[~np.isin(stored, np.array(keys, dtype=np.int64))].tolist()))
        if not len(index._key_of) == len(index) == header["count"] or len(index._dead) != header.get(
            "tombstones", 0
        ):
            raise ValueError(f"{path}: face index is inconsistent (count mismatch)")
        return index


class _ChecksumWriter:
    def __init__(self, f) -> None:
        self.f = f
        self.crc = 0

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        return self.f.write(data)


class _ChecksumReader:
    """Reads at most ``limit`` bytes (the trailer is not part of the body) and checksums them."""

    def __init__(self, f, limit: int) -> None:
        self.f = f
        self.remaining = limit - f.tell()
        self.crc = 0

    def read(self, n: int) -> bytes:
        data = self.f.read(min(n, self.remaining))
        if len(data) < n:
            raise ValueError("face index file is truncated")
        self.remaining -= len(data)
        self.crc = zlib.crc32(data, self.crc)
        return data


def read_header(path: str | Path) -> dict:
    """The header alone, without loading the index (for status commands)."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 4)
        if head[: len(MAGIC)] != MAGIC:
            raise ValueError(f"{path} is not a ringwatch face index")
        (header_len,) = struct.unpack_from("<I", head, len(MAGIC))
        return json.loads(f.read(header_len))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
