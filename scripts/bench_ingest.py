"""Ingest throughput into the embedded ArcadeDB: applications/s, a batch-size sweep, peak memory, and the
export time of the graph that was loaded.

    .venv/bin/python scripts/bench_ingest.py --applications 100000 --sweep 500,1000,2500,5000 --sweep-rows 20000

Each run starts a private ArcadeDB in a temporary data directory on free ports and stops it at the end.
Generated data comes from ``graph.synth`` (cached per size and seed under --cache).
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

import pandas as pd
import psutil

from graph import arcade
from graph.export import export_tables
from graph.ingest import ingest_files
from graph.settings import Settings
from graph.store import GraphStore
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
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print("machine:", machine())
    path = dataset(args.cache, args.applications, args.seed)
    if args.rows:
        path = head(path, args.rows, args.cache)

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        base = Settings(
            data_dir=Path(tmp),
            neo4j_uri=None,
            arcadedb_bolt_port=free_port(),
            arcadedb_http_port=free_port(),
            arcadedb_heap=args.heap,
            pseudonym_key="bench-key-not-secret-0123456789abcdef",
            same_face_threshold=args.threshold,
        )
        server = arcade.start(base, owner_pid=os.getpid())
        rss = PeakRss(server.pid)
        try:
            with GraphStore.connect(base, start_local=False) as store:
                store.ensure_schema()
                sizes = [int(s) for s in args.sweep.split(",") if s.strip()]
                if sizes:
                    sample = head(path, args.sweep_rows, args.cache)
                    # one unreported pass first, so the JVM's JIT warm-up does not favour later sizes
                    run(head(path, 3000, args.cache), base, store, 1000, Path(tmp) / "warmup")
                    print(f"\nbatch-size sweep on {args.sweep_rows:,} applications (fresh graph each):")
                    for size in sizes:
                        r = run(sample, base, store, size, Path(tmp) / f"sweep{size}")
                        print(
                            f"  batch_size {size:>6}: {r['rate']:>7,.0f} applications/s  ({r['seconds']:.1f} s)"
                        )
                print(
                    f"\nmain run: {args.rows or args.applications:,} applications, batch_size {args.batch_size}"
                )
                main_run = run(path, base, store, args.batch_size, Path(tmp) / "main")
                for line in main_run["summary"].lines():
                    print("  " + line)
                print(f"  end-to-end rate  {main_run['rate']:>10,.0f} applications/s")

                t0 = time.perf_counter()
                again = ingest_files([path], base.model_copy(update={"data_dir": Path(tmp) / "main"}), store,
                                     progress=False)  # fmt: skip
                print(f"  re-ingest of the same file (no-op): {time.perf_counter() - t0:.1f} s, "
                      f"unchanged {again.unchanged:,}")  # fmt: skip

                t0 = time.perf_counter()
                tables = export_tables(store, progress=True)
                dt = time.perf_counter() - t0
                print(
                    f"\nexport_tables: {tables.n_accounts:,} accounts, {len(tables.links):,} links, "
                    f"{len(tables.same_face):,} SAME_FACE in {dt:.1f} s ({tables.n_accounts / dt:,.0f} accounts/s; "
                    f"1M accounts extrapolates to ~{1e6 / (tables.n_accounts / dt):,.0f} s)"
                )
        finally:
            peak_server = rss.stop()
            arcade.stop(base)
    peak_py = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory: python {peak_py:,.0f} MB, ArcadeDB server {peak_server / 2**20:,.0f} MB")
    print("machine:", machine())


if __name__ == "__main__":
    main()
