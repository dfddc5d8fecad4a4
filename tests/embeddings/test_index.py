"""FaceIndex against brute force, persistence, crash safety, removal and input validation (real FAISS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embeddings.index import FLAT, HNSW, INDEX_TYPES, IVF_FLAT, FaceIndex, read_header

DIM = 32


def clustered(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Vectors around 50 centres, so an IVF index has structure to find."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def brute_force(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    sims = qn @ xn.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def ids_for(n: int, offset: int = 0) -> list[str]:
    return [f"app-{i + offset}" for i in range(n)]


@pytest.mark.parametrize("kind", ["auto", HNSW])
def test_flat_search_equals_brute_force(kind: str):
    """Exact search, and HNSW with a beam as wide as the gallery (which makes it exhaustive)."""
    x, q = clustered(3000), clustered(40, seed=1)
    index = FaceIndex.build(ids_for(len(x)), x, index_type=kind, ef_search=3000)
    assert index.index_type == (FLAT if kind == "auto" else HNSW)
    hits = index.search(q, k=10)
    order, sims = brute_force(x, q, 10)
    for row, want_idx, want_sim in zip(hits, order, sims, strict=True):
        got_sims = np.array([s for _, s in row])
        np.testing.assert_allclose(got_sims, want_sim, atol=1e-5)
        # ids agree wherever similarities are not tied
        assert [i for i, _ in row][:3] == [f"app-{j}" for j in want_idx[:3]]


def test_ivf_with_all_cells_probed_is_exact():
    x, q = clustered(4000), clustered(30, seed=2)
    index = FaceIndex.build(ids_for(len(x)), x, index_type=IVF_FLAT, nprobe=10_000)
    assert index.index_type == IVF_FLAT
    order, sims = brute_force(x, q, 5)
    got = index.search(q, k=5)
    np.testing.assert_allclose([[s for _, s in r] for r in got], sims, atol=1e-5)
    # a partial probe finds the exact nearest neighbour for most queries on clustered data
    top1 = [r[0][0] for r in index.search(q, k=1, nprobe=24)]
    assert np.mean([t == f"app-{o}" for t, o in zip(top1, order[:, 0], strict=True)]) >= 0.9


@pytest.mark.parametrize("kind", INDEX_TYPES)
def test_save_load_round_trip(tmp_path: Path, kind: str):
    x, q = clustered(2500), clustered(20, seed=3)
    index = FaceIndex.build(ids_for(len(x)), x, index_type=kind)
    index.remove(["app-7", "app-8"])
    path = tmp_path / "faces.index"
    index.save(path)
    loaded = FaceIndex.load(path)
    assert len(loaded) == len(index) == 2498
    assert read_header(path) == {**index.header()} == loaded.header()
    assert read_header(path)["dim"] == DIM and read_header(path)["metric"] == "cosine"
    assert loaded.search(q, k=7) == index.search(q, k=7)
    assert "app-7" not in loaded and "app-9" in loaded
    assert loaded.index_type == kind and loaded.header()["tombstones"] == (2 if kind == HNSW else 0)
    # a loaded index keeps working: new ids get fresh keys, not recycled ones
    loaded.add(["new"], x[:1])
    assert loaded.search(x[:1], k=1)[0][0][1] == pytest.approx(1.0, abs=1e-5)
    assert {i for i, _ in loaded.search(x[:1], k=2)[0]} == {"app-0", "new"}


@pytest.mark.parametrize("kind", INDEX_TYPES)
def test_truncated_or_foreign_file_is_refused(tmp_path: Path, kind: str):
    index = FaceIndex.build(ids_for(2000), clustered(2000), index_type=kind)
    path = tmp_path / "faces.index"
    index.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.index").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a complete"):
        FaceIndex.load(tmp_path / "cut.index")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.index").write_bytes(bytes(flipped))
    with pytest.raises(ValueError):
        FaceIndex.load(tmp_path / "flip.index")
    (tmp_path / "other.index").write_bytes(b"hello world" * 10)
    with pytest.raises(ValueError):
        FaceIndex.load(tmp_path / "other.index")


def test_failed_save_keeps_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "faces.index"
    old = FaceIndex.build(ids_for(200), clustered(200))
    old.save(path)
    new = FaceIndex.build(ids_for(300, offset=1000), clustered(300, seed=9))

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()
    assert len(FaceIndex.load(path)) == 200
    assert [p.name for p in tmp_path.iterdir()] == ["faces.index"]  # no temporary file left behind


def test_killed_during_save_leaves_a_readable_index(tmp_path: Path):
    """A real crash: a child process saving in a loop is killed with SIGKILL at an arbitrary moment."""
    path = tmp_path / "faces.index"
    FaceIndex.build(ids_for(20_000), clustered(20_000, dim=128), index_type=FLAT).save(path)
    child = textwrap.dedent(
        f"""
        import numpy as np, sys
        from embeddings.index import FaceIndex
        rng = np.random.default_rng(0)
        sizes = [20_000, 30_000]
        indexes = [FaceIndex.build([f"app-{{i}}" for i in range(n)], rng.standard_normal((n, 128)), "flat")
                   for n in sizes]
        print("ready", flush=True)
        i = 0
        while True:
            indexes[i % 2].save({str(path)!r})
            i += 1
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.7)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(FaceIndex.load(path)) in (20_000, 30_000)


@pytest.mark.parametrize("kind", INDEX_TYPES)
def test_remove_and_replace(kind: str):
    x = clustered(2000)[:500]
    index = FaceIndex.build(ids_for(500), x, index_type=kind, nprobe=10_000)
    assert index.remove(["app-0", "app-1", "missing"]) == 2
    assert len(index) == 498 and "app-0" not in index
    assert all(i not in {"app-0", "app-1"} for i, _ in index.search(x[0], k=10)[0])
    # adding an existing id replaces its vector instead of duplicating it
    index.add(["app-2"], x[3])
    assert len(index) == 498
    hit = index.search(x[3], k=2)[0]
    assert {i for i, _ in hit} == {"app-2", "app-3"}


def test_auto_switches_to_ivf_when_large(monkeypatch: pytest.MonkeyPatch):
    """An index saved while IVF was the large type keeps growing and retraining as IVF."""
    import embeddings.index as mod

    monkeypatch.setattr(mod, "FLAT_MAX", 1000)
    monkeypatch.setattr(mod, "choose_index_type", lambda n: FLAT if n < 1000 else IVF_FLAT)
    x = clustered(1500)
    index = FaceIndex(DIM)
    index.add(ids_for(900), x[:900])
    assert index.index_type == FLAT
    index.add(ids_for(600, offset=900), x[900:])
    assert index.index_type == IVF_FLAT and len(index) == 1500
    assert index.search(x[1200], k=1)[0][0][0] == "app-1200"
    index.rebuild()
    assert index.search(x[5], k=1, nprobe=64)[0][0][0] == "app-5"


def test_bad_vectors_are_rejected_with_clear_errors():
    index = FaceIndex(DIM)
    good = clustered(3)
    with pytest.raises(ValueError, match="dimension mismatch: index holds 32-d vectors, got 16-d"):
        index.add(["a"], np.ones(16))
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.search(np.ones((2, 64)), k=1)
    nan = good.copy()
    nan[1, 4] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(rows 1\)"):
        index.add(["a", "b", "c"], nan)
    zero = good.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match=r"all zero \(rows 2\)"):
        index.add(["a", "b", "c"], zero)
    with pytest.raises(ValueError, match="3 ids but 2 vectors"):
        index.add(["a", "b", "c"], good[:2])
    with pytest.raises(ValueError, match="unique"):
        index.add(["a", "a"], good[:2])
    assert len(index) == 0  # nothing half-added


def test_empty_index_search():
    index = FaceIndex(DIM)
    assert index.search(clustered(2), k=3) == [[], []]


@pytest.mark.parametrize("kind", INDEX_TYPES)
def test_concurrent_searches_with_one_writer(kind: str):
    x = clustered(4000)
    index = FaceIndex.build(ids_for(2000), x[:2000], index_type=kind, nprobe=10_000)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                j = int(rng.integers(0, 2000))
                hits = index.search(x[j], k=5)[0]
                assert hits[0] == (f"app-{j}", pytest.approx(1.0, abs=1e-4))
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for s in range(2000, 4000, 100):
        index.add(ids_for(100, offset=s), x[s : s + 100])
        index.remove([f"app-{s + 1}"])
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(index) == 4000 - 20


def test_built_ivf_is_not_retrained_by_the_next_small_add(monkeypatch: pytest.MonkeyPatch):
    """Training uses a sample, but growth is measured against the gallery size the cells were made for."""
    import embeddings.index as mod

    monkeypatch.setattr(mod, "FLAT_MAX", 1000)
    monkeypatch.setattr(mod, "TRAIN_POINTS_PER_CELL", 40)
    x = clustered(6000)
    index = FaceIndex.build(ids_for(5000), x[:5000], index_type=IVF_FLAT)
    assert index.index_type == IVF_FLAT and index.header()["trained_on"] == 5000
    quantizer_before = faiss_centroids(index)
    index.add(ids_for(100, offset=5000), x[5000:5100])
    np.testing.assert_array_equal(faiss_centroids(index), quantizer_before)


def faiss_centroids(index: FaceIndex) -> np.ndarray:
    import faiss

    q = faiss.downcast_index(index._index.quantizer)
    return faiss.rev_swig_ptr(q.get_xb(), q.ntotal * q.d).copy()


@pytest.mark.parametrize("kind", INDEX_TYPES)
def test_search_ids_matches_search(kind: str):
    x = clustered(800)
    index = FaceIndex.build(ids_for(800), x, index_type=kind)
    sims, ids = index.search_ids(x[:5], k=3)
    hits = index.search(x[:5], k=3)
    assert [
        [(i, pytest.approx(float(s), abs=1e-6)) for i, s in zip(r, sr, strict=True)]
        for r, sr in zip(ids, sims, strict=True)
    ] == hits
    small = FaceIndex.build(["a", "b"], x[:2])
    _, ids = small.search_ids(x[:1], k=4)
    assert ids[0, 2] is None and ids[0, 3] is None


def test_bulk_search_on_ivf_is_exact():
    """Ingest searches big batches with bulk=True: when IVF would scan much of the gallery anyway, the
    batch is searched exactly, so the links do not depend on IVF cell borders."""
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(4000, 16)).astype(np.float32)
    ids = [f"g{i}" for i in range(len(gallery))]
    index = FaceIndex.build(ids, gallery, index_type="ivf_flat")
    assert index.index_type == "ivf_flat"
    # probing a fifth of the cells: approximate without bulk, worth an exact pass with it
    index.nprobe = max(1, index._index.nlist // 5)
    queries = rng.normal(size=(1100, 16)).astype(np.float32)
    sims, found = index.search_ids(queries, k=5, bulk=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(q @ g.T), axis=1)[:, :5]
    expected = np.array(ids, dtype=object)[exact]
    assert (found == expected).mean() > 0.999
    _, approximate = index.search_ids(queries, k=5)
    assert (approximate == expected).mean() < 0.99
    np.testing.assert_allclose(sims, np.take_along_axis(q @ g.T, exact, axis=1), atol=1e-5)


def test_hnsw_tombstones_are_filtered_then_rebuilt_away(monkeypatch: pytest.MonkeyPatch):
    """HNSW cannot delete: removed faces stay in the graph, never come back from a search, and the graph is
    rebuilt from the live vectors once the tombstones pass their share."""
    import embeddings.index as mod

    monkeypatch.setattr(mod, "TOMBSTONE_REBUILD_MIN", 50)
    x = clustered(1000)
    index = FaceIndex.build(ids_for(1000), x, index_type=HNSW)
    gone = ids_for(150)  # below 20% of 1,000: kept as tombstones
    assert index.remove(gone) == 150
    assert len(index) == 850 and index._index.ntotal == 1000 and index.header()["tombstones"] == 150
    # the nearest live neighbours of a removed face, not the face itself
    _, ids = index.search_ids(x[:150], k=20)
    assert not set(ids.ravel()) & set(gone)
    assert {k for k, _ in index.iter_vectors(100) for k in k.tolist()} == set(range(150, 1000))
    assert index.remove(ids_for(100, offset=150)) == 100  # 250 > 20%: rebuilt without tombstones
    assert index._index.ntotal == len(index) == 750 and index.header()["tombstones"] == 0
    assert index.search(x[500], k=1)[0][0][0] == "app-500"
    index.add(["app-3"], x[3])  # a removed id can come back
    assert index.search(x[3], k=1)[0][0][0] == "app-3"


def test_auto_grows_into_the_chosen_large_type(monkeypatch: pytest.MonkeyPatch):
    import embeddings.index as mod

    monkeypatch.setattr(mod, "FLAT_MAX", 1000)
    large = mod.choose_index_type(10**6)
    assert large in (IVF_FLAT, HNSW) and mod.choose_index_type(999) == FLAT
    x = clustered(1500)
    index = FaceIndex(DIM)
    index.add(ids_for(1200), x[:1200])
    assert index.index_type == large
    index.add(ids_for(300, offset=1200), x[1200:])
    assert index.search(x[1400], k=1)[0][0][0] == "app-1400"


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="index_type"):
        FaceIndex(DIM, index_type="hnsw_pq")
    with pytest.raises(ValueError, match="ef_search"):
        FaceIndex(DIM, index_type=HNSW, ef_search=0)
