"""Ingest throughput into the embedded ArcadeDB: applications/s, a batch-size sweep, peak memory, and the
export time of the graph that was loaded.

    .venv/bin/python scripts/bench_ingest.py --applications 100000 --sweep 500,1000,2500,5000 --sweep-rows 20000

Each run starts a private ArcadeDB in a temporary data directory on free ports and stops it at the end.
Generated data comes from ``graph.synth`` (cached per size and seed under --cache).

``--face-links truth`` loads the store without the face stage (whose exact search is O(n^2): hours at 1M):
the rows go through the ingest's own write path (``graph.ingest.load._write``: the same Cypher, batches and
order), and the SAME_FACE pairs are the generator's face identities (``truth.parquet``) scored exactly,
kept at or above the threshold and capped at ``face_link_k`` per face. Pairs of different identities
above the threshold (look-alikes) are missed, so this is for store and export figures, not for linking.
With ``--keep DIR`` the store stays in DIR with its server running; ``--export-only`` times the export of
a store kept there (``--export-repeats`` times).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq

from graph.contract.prepare import iter_prepare_file
from graph.contract.pseudonymise import Pseudonymiser, load_key
from graph.ingest.load import _write, ingest_files
from graph.settings import Settings
from graph.store import arcade
from graph.store.bolt import GraphStore
from graph.store.export import export_tables
from graph.synth.dataset import write as synth_write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeakRss:
    """Samples the resident memory of a process (the ArcadeDB server) in the background."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def dataset(cache: Path, n: int, seed: int) -> Path:
    out = cache / f"apps-{n}-{seed}"
    path = out / "applications.parquet"
    if not path.exists():
        print(f"generating {n:,} applications (seed {seed}) into {out}")
        synth_write(out, n, seed=seed, report=False)
    return path


def head(path: Path, rows: int, cache: Path) -> Path:
    out = cache / f"{path.parent.name}-head{rows}.parquet"
    if not out.exists():
        pd.read_parquet(path).head(rows).to_parquet(out, index=False)
    return out


def machine() -> str:
    load = os.getloadavg()
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (shared machine: figures are noisy)"
    )


def run(path: Path, base: Settings, store: GraphStore, batch_size: int, data_dir: Path) -> dict:
    store.delete_all()
    settings = base.model_copy(update={"batch_size": batch_size, "data_dir": data_dir})
    settings.face_index_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = ingest_files([path], settings, store, progress=True)
    seconds = time.perf_counter() - t0
    return {"summary": summary, "seconds": seconds, "rate": summary.accepted / seconds}


def truth_pairs(path: Path, truth_path: Path, threshold: float, k: int) -> pd.DataFrame:
    """SAME_FACE pairs among applications that share a generated face identity: exact cosine, at or above
    ``threshold``, each face keeping its ``k`` best (the cap ``graph.ingest.face_links`` applies)."""
    truth = pd.read_parquet(truth_path, columns=["application_id", "face_identity"])
    truth = truth[truth.face_identity.notna()]
    shared = truth[truth.face_identity.duplicated(keep=False)]
    group = dict(zip(shared.application_id, shared.face_identity.astype(np.int64), strict=True))
    ids: list[str] = []
    vecs: list[np.ndarray] = []
    for rb in pq.ParquetFile(path).iter_batches(
        columns=["application_id", "face_embedding"], batch_size=50_000
    ):
        app = rb.column(0).to_numpy(zero_copy_only=False)
        mine = np.flatnonzero([a in group for a in app])
        faces = rb.column(1).take(mine)
        for i, f in zip(mine.tolist(), faces.to_pylist(), strict=True):
            if f is not None:
                ids.append(str(app[i]))
                vecs.append(np.asarray(f, dtype=np.float32))
    if not ids:
        return pd.DataFrame({"a": [], "b": [], "similarity": []})
    x = np.stack(vecs)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    gid = np.array([group[i] for i in ids], dtype=np.int64)
    src, dst = [], []
    for rows in pd.Series(np.arange(len(ids))).groupby(gid).indices.values():
        if len(rows) > 1:
            r, c = np.triu_indices(len(rows), 1)
            src.append(rows[r])
            dst.append(rows[c])
    a, b = np.concatenate(src), np.concatenate(dst)
    sim = np.einsum("ij,ij->i", x[a], x[b]).astype(np.float32)
    ok = sim >= threshold
    a, b, sim = a[ok], b[ok], sim[ok]
    # the per-face cap: a pair is kept when either face has it among its k best
    q = np.r_[a, b]
    s2 = np.r_[sim, sim]
    order = np.lexsort((-s2, q))
    start = np.r_[0, np.flatnonzero(np.diff(q[order])) + 1]
    rank = np.empty(len(q), np.int64)
    rank[order] = np.arange(len(q)) - np.repeat(start, np.diff(np.r_[start, len(q)]))
    keep = (rank[: len(a)] < k) | (rank[len(a) :] < k)
    names = np.array(ids, dtype=object)
    a_id, b_id = names[a[keep]], names[b[keep]]
    return pd.DataFrame(
        {
            "a": np.where(a_id < b_id, a_id, b_id),
            "b": np.where(a_id < b_id, b_id, a_id),
            "similarity": sim[keep],
        }
    )


def load_store_only(
    path: Path, truth_path: Path, settings: Settings, store: GraphStore, threshold: float
) -> dict:
    """The ingest's write path without the face stage; SAME_FACE pairs from ``truth_pairs``."""
    t0 = time.perf_counter()
    pairs = truth_pairs(path, truth_path, threshold, settings.face_link_k)
    t_pairs = time.perf_counter() - t0
    print(f"  SAME_FACE pairs from the face identities: {len(pairs):,} in {t_pairs:.1f} s")
    p = Pseudonymiser(load_key(settings))
    written: set[str] = set()
    accepted = links = face_links = 0
    t_prepare = t_store = 0.0
    t0 = time.perf_counter()
    for batch in iter_prepare_file(path, settings, p, chunk_rows=settings.ingest_chunk_rows):
        t1 = time.perf_counter()
        t_prepare += t1 - t0
        frame = batch.frame.reset_index(drop=True)
        ids = frame["application_id"].astype(str).to_numpy(dtype=object)
        written.update(ids.tolist())
        # pairs whose later endpoint is in this chunk: both accounts exist once it is written
        here = pairs.a.isin(written).to_numpy() & pairs.b.isin(written).to_numpy()
        mine, pairs = pairs[here], pairs[~here]
        face_of = dict(zip(pd.Index(ids).get_indexer(batch.face_ids).tolist(), batch.faces, strict=True))
        work = np.arange(len(frame))
        status = np.full(len(frame), "new", dtype=object)
        n_links, n_face = _write(store, settings, frame, work, status, face_of, mine, ids, progress=True)
        accepted += len(frame)
        links += n_links
        face_links += n_face
        t0 = time.perf_counter()
        t_store += t0 - t1
    return {
        "accepted": accepted,
        "signal_links": links,
        "same_face_links": face_links,
        "seconds": t_pairs + t_prepare + t_store,
        "stages": {"truth pairs": t_pairs, "prepare": t_prepare, "store": t_store},
    }


def time_export(store: GraphStore, repeats: int, hetero: bool = False) -> None:
    """``export_tables`` (and with ``hetero``, ``to_heterodata`` on its result: ``export_heterodata``)."""
    for _ in range(repeats):
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        tables = export_tables(store, progress=True)
        dt = time.perf_counter() - t0
        print(
            f"\nexport_tables: {tables.n_accounts:,} accounts, {len(tables.links):,} links, "
            f"{len(tables.same_face):,} SAME_FACE in {dt:.1f} s ({tables.n_accounts / dt:,.0f} accounts/s); "
            f"load {load:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
        if hetero:
            from graph.learn.hetero import to_heterodata

            t0 = time.perf_counter()
            data, _ = to_heterodata(tables)
            dh = time.perf_counter() - t0
            print(
                f"to_heterodata: {dh:.1f} s ({data.num_nodes:,} nodes, {data.num_edges:,} edges); "
                f"export_heterodata {dt + dh:.1f} s"
            )
            del data
        del tables


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--applications", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rows", type=int, default=0, help="main run on the first ROWS of the data (0: all)")
    ap.add_argument("--sweep", default="500,1000,2500,5000", help="batch sizes for the sweep ('' to skip)")
    ap.add_argument("--sweep-rows", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=5000, help="batch size of the main run")
    ap.add_argument("--threshold", type=float, default=0.45)
    ap.add_argument("--heap", default="2g")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ringwatch-bench")
    ap.add_argument(
        "--face-links",
        choices=("search", "truth"),
        default="search",
        help="search: the real ingest; truth: store only, SAME_FACE from the generator's face identities",
    )
    ap.add_argument("--keep", type=Path, default=None, help="data directory to keep, server left running")
    ap.add_argument("--export-only", action="store_true", help="time the export of the store kept in --keep")
    ap.add_argument("--export-repeats", type=int, default=1)
    ap.add_argument("--hetero", action="store_true", help="also time to_heterodata on the exported tables")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print("machine:", machine())
    if args.export_only:
        if args.keep is None:
            ap.error("--export-only needs --keep DIR")
        settings = Settings(data_dir=args.keep, neo4j_uri=None, arcadedb_heap=args.heap)
        with GraphStore.connect(settings, start_local=False) as store:
            time_export(store, args.export_repeats, args.hetero)
        print(f"peak memory: python {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
        print("machine:", machine())
        return
    path = dataset(args.cache, args.applications, args.seed)
    truth_path = path.with_name("truth.parquet")
    if args.rows:
        path = head(path, args.rows, args.cache)

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        holder = None
        tmp = str(args.keep)
    else:
        holder = tempfile.TemporaryDirectory(prefix="bench-ingest-")
        tmp = holder.name
    try:
        base = Settings(
            data_dir=Path(tmp),
            neo4j_uri=None,
            arcadedb_bolt_port=free_port(),
            arcadedb_http_port=free_port(),
            arcadedb_heap=args.heap,
            pseudonym_key="bench-key-not-secret-0123456789abcdef",
            same_face_threshold=args.threshold,
            batch_size=args.batch_size,
        )
        server = arcade.start(base, owner_pid=None if args.keep else os.getpid())
        rss = PeakRss(server.pid)
        try:
            with GraphStore.connect(base, start_local=False) as store:
                store.ensure_schema()
                sizes = [int(s) for s in args.sweep.split(",") if s.strip()]
                if sizes and args.face_links == "search":
                    sample = head(path, args.sweep_rows, args.cache)
                    # one unreported pass first, so the JVM's JIT warm-up does not favour later sizes
                    run(head(path, 3000, args.cache), base, store, 1000, Path(tmp) / "warmup")
                    print(f"\nbatch-size sweep on {args.sweep_rows:,} applications (fresh graph each):")
                    for size in sizes:
                        r = run(sample, base, store, size, Path(tmp) / f"sweep{size}")
                        print(
                            f"  batch_size {size:>6}: {r['rate']:>7,.0f} applications/s  ({r['seconds']:.1f} s)"
                        )
                n = args.rows or args.applications
                print(
                    f"\nmain run: {n:,} applications, batch_size {args.batch_size}, face links: {args.face_links}"
                )
                if args.face_links == "truth":
                    store.delete_all()
                    r = load_store_only(path, truth_path, base, store, args.threshold)
                    for k, v in r.items():
                        print(f"  {k:<16} {v}")
                    print(f"  store rate       {r['accepted'] / r['stages']['store']:>10,.0f} applications/s")
                else:
                    main_run = run(path, base, store, args.batch_size, Path(tmp) / "main")
                    for line in main_run["summary"].lines():
                        print("  " + line)
                    print(f"  end-to-end rate  {main_run['rate']:>10,.0f} applications/s")

                    t0 = time.perf_counter()
                    again = ingest_files([path], base.model_copy(update={"data_dir": Path(tmp) / "main"}), store,
                                         progress=False)  # fmt: skip
                    print(f"  re-ingest of the same file (no-op): {time.perf_counter() - t0:.1f} s, "
                          f"unchanged {again.unchanged:,}")  # fmt: skip
                time_export(store, args.export_repeats, args.hetero)
        finally:
            peak_server = rss.stop()
            if args.keep is None:
                arcade.stop(base)
            else:
                print(
                    f"server left running on {args.keep}: stop it with RINGWATCH_DATA_DIR={args.keep} ringwatch db stop"
                )
    finally:
        if holder is not None:
            holder.cleanup()
    peak_py = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory: python {peak_py:,.0f} MB, ArcadeDB server {peak_server / 2**20:,.0f} MB")
    print("machine:", machine())


if __name__ == "__main__":
    main()
