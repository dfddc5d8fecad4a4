"""Load benchmark of the real-time decision route: a real uvicorn server with N accounts loaded, and an
open-loop load generator sending new applications at a fixed rate.

Open loop: request i is sent at t0 + i/rate whether or not earlier ones have answered, and its latency is
measured from that scheduled time, so a slow server cannot hide queueing by slowing the generator down.

    .venv/bin/python scripts/bench_api.py                       # 100k accounts, 50 req/s for 60 s
    .venv/bin/python scripts/bench_api.py --accounts 20000 --duration 20 --keep /tmp/rw-bench

Set-up (generate, ingest, train, batch-score) is cached in --keep DIR, so a second run only measures;
--prepare-only builds that cache and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.http.auth import hash_key, new_key  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from graph.store import arcade  # noqa: E402

PSEUDONYM_KEY = "bench-pseudonym-key-not-for-production"
SLOW_MS = 100  # the target p99
FACE_THRESHOLD = 0.45  # the generator's faces: genuine pairs about 0.69, impostors about 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_settings(data_dir: Path, face_dim: int) -> ApiSettings:
    ports_file = data_dir / "bench_ports.json"
    if ports_file.exists():
        ports = json.loads(ports_file.read_text())
    else:
        ports = {"bolt": free_port(), "http": free_port()}
        data_dir.mkdir(parents=True, exist_ok=True)
        ports_file.write_text(json.dumps(ports))
    return ApiSettings(
        data_dir=data_dir,
        neo4j_uri=None,
        arcadedb_bolt_port=ports["bolt"],
        arcadedb_http_port=ports["http"],
        arcadedb_heap="2g",
        pseudonym_key=PSEUDONYM_KEY,
        face_dim=face_dim,
        same_face_threshold=FACE_THRESHOLD,
    )


def prepare_data(
    settings: ApiSettings, accounts: int, extra: int, seed: int, models: tuple[str, ...]
) -> Path:
    """Generate, ingest the history, train, batch-score. Returns the file of held-back new applications."""
    from graph.ingest.load import ingest_files
    from graph.learn.hetero import GraphInput
    from graph.learn.scoring import score_all
    from graph.learn.splits import ring_groups
    from graph.learn.training import TrainConfig, save_artifact, train
    from graph.store.bolt import GraphStore
    from graph.store.export import export_tables
    from graph.store.writeback import write_back
    from graph.synth import FaceParams, SynthConfig
    from graph.synth.dataset import generate

    marker = settings.data_dir / "bench_ready.json"
    new_file = settings.data_dir / "bench_new_applications.jsonl"
    if marker.exists():
        print(f"reusing prepared data in {settings.data_dir}")
        return new_file
    t0 = time.perf_counter()
    apps, truth = generate(
        accounts + extra, seed=seed, config=SynthConfig(face=FaceParams(dim=settings.face_dim))
    )
    apps = apps.merge(truth[["application_id", "label", "ring_id"]], on="application_id")
    apps = apps.sort_values("created_at", kind="stable").reset_index(drop=True)
    history, new = apps.iloc[:accounts], apps.iloc[accounts:].drop(columns=["label", "ring_id"])
    hist_file = settings.data_dir / "bench_history.parquet"
    history.to_parquet(hist_file, index=False)
    with new_file.open("w") as fh:
        for rec in new.to_dict(orient="records"):
            rec["face_embedding"] = (
                None if rec["face_embedding"] is None else list(map(float, rec["face_embedding"]))
            )
            fh.write(json.dumps({k: v for k, v in rec.items() if v is not None and v == v}) + "\n")
    print(f"generated {len(apps)} applications in {time.perf_counter() - t0:.1f} s")

    from embeddings.index import FaceIndex

    with GraphStore.connect(settings) as store:
        store.ensure_schema()
        index = FaceIndex(settings.face_dim)
        t1 = time.perf_counter()
        summary = ingest_files([hist_file], settings, store, index)
        index.save(settings.face_index_path)
        print(f"ingested {accounts} applications in {time.perf_counter() - t1:.1f} s: {summary}")
        t2 = time.perf_counter()
        graph = GraphInput(export_tables(store))
        labels = graph.labels
        groups = ring_groups(graph.tables.accounts["id"].to_numpy(), _ring_ids(history, graph))
        artifact = train(graph, labels, groups, settings, TrainConfig(models=models), progress=print)
        save_artifact(artifact, settings.models_dir)
        print(f"trained ({artifact.shipped} shipped) in {time.perf_counter() - t2:.1f} s")
        result = score_all(graph, artifact)
        write_back(store, result, settings.batch_size)
        print(f"batch-scored: {len(result.rings)} rings")
    marker.write_text(json.dumps({"accounts": accounts, "new": extra, "seed": seed}))
    return new_file


def serving_index(settings: ApiSettings, index_type: str) -> dict:
    """Convert the set-up's saved face index to ``index_type`` (once: the converted file is kept in the
    data dir). The set-up ingests with the default (``auto``: IVF-Flat at 100k)."""
    from embeddings.index import FaceIndex

    index = FaceIndex.load(settings.face_index_path)
    if index_type == "auto" or index.index_type == index_type:
        return {"index_type": index.index_type, "converted_s": 0.0}
    t0 = time.perf_counter()
    index.policy = index_type
    index.rebuild(index_type=index_type)
    index.save(settings.face_index_path)
    took = round(time.perf_counter() - t0, 1)
    print(f"face index converted to {index_type} in {took} s")
    return {"index_type": index_type, "converted_s": took}


def face_recall(settings: ApiSettings, records: list[dict], n: int, nprobe: int, ef_search: int) -> dict:
    """Recall of the serving index against exact search, for ``n`` of the held-back faces, as the API
    searches (top ``face_link_k`` at the SAME_FACE threshold): the share of the exact above-threshold
    neighbours that the index finds, and its single-thread search latency."""
    import faiss

    from embeddings.index import FaceIndex, normalise

    faiss.omp_set_num_threads(1)
    index = FaceIndex.load(settings.face_index_path)
    k = settings.face_link_k
    faces = [r["face_embedding"] for r in records if r.get("face_embedding")][:n]
    q = normalise(np.asarray(faces, dtype=np.float32), settings.face_dim)
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_k = np.full((len(q), k), -1, np.int64)
    with index.reading():
        for keys, x in index.iter_vectors(65_536):  # exact: every stored vector, a block at a time
            sims = q @ x.T
            cand_s = np.concatenate([best_s, sims], axis=1)
            cand_k = np.concatenate([best_k, np.broadcast_to(keys, sims.shape)], axis=1)
            top = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
            best_s, best_k = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_k, top, 1)
    truth = [set(kr[sr >= FACE_THRESHOLD].tolist()) for sr, kr in zip(best_s, best_k, strict=True)]
    found, ms = [], []
    for row in q:
        t0 = time.perf_counter()
        sims, keys = index.search_arrays(row[None], k, nprobe=nprobe, ef_search=ef_search)
        ms.append((time.perf_counter() - t0) * 1000)
        found.append(set(keys[0][sims[0] >= FACE_THRESHOLD].tolist()))
    pairs = sum(len(t) for t in truth)
    hit = sum(len(t & f) for t, f in zip(truth, found, strict=True))
    return {
        "index_type": index.index_type,
        "nprobe": nprobe,
        "ef_search": ef_search,
        "queries": len(q),
        "exact_pairs": pairs,
        "found": hit,
        "recall": round(hit / pairs, 4) if pairs else None,
        "search_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "search_p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def _ring_ids(history: pd.DataFrame, graph) -> np.ndarray:
    ring_of = dict(zip(history["application_id"], history["ring_id"], strict=True))
    return np.array([ring_of.get(i) for i in graph.tables.accounts["id"]], dtype=object)


def start_server(
    settings: ApiSettings,
    key: str,
    port: int,
    log_path: Path,
    log_level: str = "INFO",
    face: dict | None = None,
    refresh_accounts: int | None = None,
) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWATCH_")}
    env.update(
        RINGWATCH_DATA_DIR=str(settings.data_dir),
        RINGWATCH_ARCADEDB_BOLT_PORT=str(settings.arcadedb_bolt_port),
        RINGWATCH_ARCADEDB_HTTP_PORT=str(settings.arcadedb_http_port),
        RINGWATCH_PSEUDONYM_KEY=PSEUDONYM_KEY,
        RINGWATCH_FACE_DIM=str(settings.face_dim),
        RINGWATCH_SAME_FACE_THRESHOLD=str(FACE_THRESHOLD),
        RINGWATCH_API_KEYS=json.dumps([f"ingest:{hash_key(key)}"]),
        # INFO: one JSON line per request, the server-side latency; DEBUG adds one line per decision pass
        RINGWATCH_LOG_LEVEL=log_level,
        **{f"RINGWATCH_FACE_{k.upper()}": str(v) for k, v in (face or {}).items()},
    )
    if refresh_accounts is not None:
        env["RINGWATCH_SCORER_REFRESH_ACCOUNTS"] = str(refresh_accounts)
    cmd = [sys.executable, "-m", "api.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as out:  # a fresh log a run: server_side() reads it from the top
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def share_priority(pid: int) -> str:
    """Give the store server (started in its own session, so in its own scheduler autogroup) the priority
    of this benchmark's group. With ``kernel.sched_autogroup_enabled``, ``nice`` only ranks processes within
    a session: a timed run raised with ``echo -10 > /proc/self/autogroup`` (see the README) would otherwise
    leave the store competing at default priority with every other session's jobs."""
    try:
        mine = Path("/proc/self/autogroup").read_text().split()[-1]
        Path(f"/proc/{pid}/autogroup").write_text(mine)
        return mine
    except (OSError, IndexError):
        return "unchanged"


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready in time")


async def load(base: str, key: str, records: list[dict], rate: float, duration: float) -> dict:
    n = min(len(records), int(rate * duration))
    # bodies are encoded up front so the generator's own CPU use does not delay the schedule
    bodies = [json.dumps(r).encode() for r in records[:n]]
    headers = {"X-API-Key": key, "content-type": "application/json"}
    latencies = np.full(n, np.nan)
    statuses: list[int] = [0] * n
    decisions: dict[str, int] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as client:

        async def one(i: int, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            try:
                r = await client.post("/v1/applications", content=bodies[i])
                statuses[i] = r.status_code
                if r.status_code == 200:
                    d = r.json()["decision"]
                    decisions[d] = decisions.get(d, 0) + 1
            except httpx.HTTPError:
                statuses[i] = -1
            latencies[i] = time.perf_counter() - at

        t0 = time.perf_counter() + 0.5
        await asyncio.gather(*(one(i, t0 + i / rate) for i in range(n)))
        wall = time.perf_counter() - t0
    ok = np.array([s == 200 for s in statuses])
    ms = latencies * 1000
    # a tail from a few stalls (a pause of the store, the host) bunches in time; a slow server spreads it
    slow = np.flatnonzero(ms > SLOW_MS)
    per_second = np.bincount((slow / rate).astype(int), minlength=1)
    worst = np.argsort(-per_second, kind="stable")[:5]
    return {
        "requests": n,
        "rate_target": rate,
        "rate_achieved": round(n / wall, 1),
        "errors": int((~ok).sum()),
        "status_counts": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(np.max(ms)), 1),
        f"over_{SLOW_MS}_ms": len(slow),
        f"seconds_with_most_over_{SLOW_MS}_ms": [
            [int(t), int(per_second[t])] for t in worst if per_second[t]
        ],
        "decisions": decisions,
    }


def server_side(log_path: Path, skip: int) -> dict:
    """Latency as the server saw it (its access log), to tell server time from client or network lag."""
    ms = []
    for line in log_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("route") == "/v1/applications" and rec.get("msg") == "request":
            ms.append(rec["ms"])
    ms = np.array(ms[skip:])
    if not len(ms):
        return {}
    return {f"server_p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}


def scorer_refreshes(log_path: Path) -> list[float]:
    """Seconds each background refresh of the scorer's cache took during the run (from the server log)."""
    out = []
    for line in log_path.read_text().splitlines():
        if '"scorer refreshed"' in line:
            try:
                out.append(json.loads(line)["seconds"])
            except (ValueError, KeyError):
                continue
    return out


def stage_sums(base: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of each decision-pass stage and of the pass size, from the server's /metrics."""
    out = {}
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        for name, key in (
            ("ringwatch_decision_stage_seconds", "stage"),
            ("ringwatch_decision_pass_size", ""),
        ):
            for part in ("_sum", "_count"):
                if line.startswith(name + part):
                    label = line.split('stage="')[1].split('"')[0] if key else "size"
                    total, count = out.get(label, (0.0, 0.0))
                    value = float(line.rsplit(" ", 1)[1])
                    out[label] = (total + value, count) if part == "_sum" else (total, count + value)
    return out


def stage_means(before: dict, after: dict) -> dict:
    """Mean ms per pass of each stage over the measured run, and the mean pass size."""
    out = {}
    for label, (total, count) in after.items():
        t0, c0 = before.get(label, (0.0, 0.0))
        if count > c0:
            mean = (total - t0) / (count - c0)
            out[label] = round(mean, 2) if label == "size" else round(mean * 1000, 2)
    return {"passes": int(after.get("pass", (0, 0))[1] - before.get("pass", (0, 0))[1]), "pass_means": out}


def machine() -> str:
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        mem = ""
    load1 = os.getloadavg()[0]
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{mem}, load avg {load1:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000, help="accounts loaded before the run")
    ap.add_argument("--rate", type=float, default=50.0, help="requests per second (open loop)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="requests sent (and not measured) before the run; a freshly started ArcadeDB needs hundreds of "
        "write transactions before its commits reach their steady cost",
    )
    ap.add_argument("--face-dim", type=int, default=512)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--models", default="rules,gbt", help="models to train (rules,gbt,gnn); the best ships")
    ap.add_argument("--keep", type=Path, default=None, help="data dir to keep (and reuse) between runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    ap.add_argument("--prepare-only", action="store_true", help="build the --keep set-up cache, then stop")
    ap.add_argument(
        "--log-level", default="INFO", help="server log level (DEBUG: one line per decision pass)"
    )
    ap.add_argument(
        "--face-index-type",
        default="auto",
        choices=("auto", "flat", "ivf_flat", "hnsw"),
        help="serving face index (RINGWATCH_FACE_INDEX_TYPE); the set-up's index is converted once",
    )
    ap.add_argument("--face-nprobe", type=int, default=None, help="RINGWATCH_FACE_NPROBE for the server")
    ap.add_argument(
        "--face-ef-search", type=int, default=None, help="RINGWATCH_FACE_EF_SEARCH for the server"
    )
    ap.add_argument(
        "--scorer-refresh-accounts",
        type=int,
        default=None,
        help="RINGWATCH_SCORER_REFRESH_ACCOUNTS for the server (default: the setting's, 0: no refresh)",
    )
    ap.add_argument(
        "--face-recall",
        type=int,
        default=0,
        help="before the run, measure the serving index's recall against exact search on this many held-back "
        "faces (0: skip)",
    )
    args = ap.parse_args()
    # a SIGTERM (timeout, kill) unwinds through the finally below, so the server and the store are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="rw-bench-api-"))
    settings = bench_settings(data_dir.resolve(), args.face_dim)
    extra = int(args.rate * args.duration) + args.warmup
    store = arcade.start(settings)
    priority = share_priority(store.pid) if store.pid else "unchanged"
    proc = None
    try:
        new_file = prepare_data(settings, args.accounts, extra, args.seed, tuple(args.models.split(",")))
        if args.prepare_only:
            return
        # fresh ids per run, so a rerun measures new applications rather than idempotent replays
        run = f"-run{time.time_ns()}"
        records = [
            rec | {"application_id": rec["application_id"] + run}
            for rec in map(json.loads, new_file.read_text().splitlines())
        ]
        if len(records) < extra:
            raise SystemExit(f"only {len(records)} new applications prepared; rerun without --keep reuse")
        face_env = {"index_type": args.face_index_type}
        face_env |= {"nprobe": args.face_nprobe} if args.face_nprobe else {}
        face_env |= {"ef_search": args.face_ef_search} if args.face_ef_search else {}
        serving = serving_index(settings, args.face_index_type)
        recall = None
        if args.face_recall:
            recall = face_recall(
                settings,
                records[args.warmup :],
                args.face_recall,
                args.face_nprobe or settings.face_nprobe,
                args.face_ef_search or settings.face_ef_search,
            )
            print("face recall:", json.dumps(recall))
        key, port = new_key(), free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(
            settings,
            key,
            port,
            data_dir / "bench_server.log",
            args.log_level,
            face_env,
            args.scorer_refresh_accounts,
        )
        ready_s = wait_ready(base, proc)
        print(f"server ready in {ready_s:.1f} s (scorer cache built from {args.accounts} accounts)")
        warm, measured = records[: args.warmup], records[args.warmup :]
        asyncio.run(
            load(base, key, warm, rate=min(args.rate, 25.0), duration=len(warm) / min(args.rate, 25.0))
        )
        before = stage_sums(base)
        load_before = os.getloadavg()
        result = asyncio.run(load(base, key, measured, args.rate, args.duration))
        result.update(server_side(data_dir / "bench_server.log", skip=len(warm)))
        result.update(stage_means(before, stage_sums(base)))
        result["load_avg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
        result.update(accounts=args.accounts, machine=machine(), server_ready_s=round(ready_s, 1))
        result["autogroup_nice"] = priority
        result["store_jvm_args"] = os.environ.get("ARCADEDB_JVM_ARGS")  # the store server inherits them
        result["face_index"] = serving | {k: v for k, v in face_env.items() if k != "index_type"}
        result["scorer_refresh_s"] = scorer_refreshes(data_dir / "bench_server.log")
        if recall is not None:
            result["face_recall"] = recall
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        arcade.stop(settings)
        if args.keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
