"""Store-level figures for the embedded ArcadeDB: start/stop time, batched MERGE throughput per batch size,
keyed-read throughput, server memory. (End-to-end ingest is scripts/bench_ingest.py.)

    .venv/bin/python scripts/bench_store.py --rows 50000 --batch-sizes 1000 5000 10000

Runs a private server in a temporary directory on free ports and stops it at the end. Against Neo4j instead:
set RINGWATCH_NEO4J_URI (the script then empties that database: never point it at real data).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

import psutil
from tqdm import tqdm

from graph.settings import Settings
from graph.store import arcade
from graph.store.bolt import GraphStore

UPSERT = (
    "UNWIND $rows AS row MERGE (a:Account {id: row.id}) SET a.created_at = row.t "
    "MERGE (d:Device {id: row.dev}) MERGE (a)-[:USED_DEVICE]->(d) "
    "MERGE (p:Phone {id: row.phone}) MERGE (a)-[:HAS_PHONE]->(p)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rows_for(n: int, tag: str) -> list[dict]:
    # ~5 accounts per device and ~2 per phone, like a graph with some sharing
    return [
        {
            "id": f"{tag}-{i}",
            "t": 1_700_000_000_000 + i,
            "dev": f"{tag}-d{i // 5}",
            "phone": f"{tag}-p{i // 2}",
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000, help="applications per batch-size run")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--heap", default="2g")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load avg {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            arcadedb_bolt_port=free_port(),
            arcadedb_http_port=free_port(),
            arcadedb_heap=args.heap,
        )
        server = None
        if not settings.neo4j_uri:
            t0 = time.perf_counter()
            server = arcade.start(settings, owner_pid=os.getpid())
            print(f"arcadedb start to Bolt-ready: {time.perf_counter() - t0:.1f} s")
        try:
            with GraphStore.connect(settings, start_local=False) as store:
                print(f"dialect: {store.dialect}")
                store.ensure_schema()
                store.delete_all()
                store.write_batches(
                    UPSERT, rows_for(5000, "warmup"), batch_size=1000
                )  # JIT warm-up, not timed
                for size in args.batch_sizes:
                    rows = rows_for(args.rows, f"b{size}")
                    with tqdm(total=len(rows), desc=f"batch {size}", unit="row") as bar:
                        t0 = time.perf_counter()
                        store.write_batches(UPSERT, rows, batch_size=size, progress=bar.update)
                        dt = time.perf_counter() - t0
                    print(
                        f"batch_size {size:>6}: {len(rows) / dt:8.0f} applications/s (3 MERGE nodes + 2 rels)"
                    )
                ids = [r["id"] for r in rows_for(args.rows, f"b{args.batch_sizes[-1]}")][:20_000]
                t0 = time.perf_counter()
                got = store.read("UNWIND $ids AS id MATCH (a:Account {id: id}) RETURN a.id AS id", ids=ids)
                dt = time.perf_counter() - t0
                print(f"keyed read: {len(got) / dt:8.0f} accounts/s ({len(got)} in one query)")
                if server is not None:
                    print(f"server RSS: {psutil.Process(server.pid).memory_info().rss / 2**20:.0f} MiB")
        finally:
            if server is not None:
                t0 = time.perf_counter()
                print(f"{arcade.stop(settings).message} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
