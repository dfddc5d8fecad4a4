"""Stream replay: train on the applications before a time T, post those after T one by one, in arrival order,
through the real HTTP API, and set the real-time answers beside two batch references on the same rows:

- batch afterwards: ``graph.jobs.score_store`` on the store once the whole stream is in (sees the future);
- prospective batch: each window of the stream scored in batch on the graph as it stood at the window's end
  (``--windows`` cuts; with one application a window it is exactly "the graph at its arrival").

Reported per source: account AUPRC, ring-member recall at decline and at review-or-decline, the share of ring
members answered with a ring (all, and from each ring's third arrival on), and the decline and review rate of
every benign look-alike kind. The data is the project's generator on a seed of its own; nothing is tuned on it.

    .venv/bin/python scripts/bench_stream.py --n 20000 --json out/bench_stream.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.bench_api import (  # noqa: E402
    bench_settings,
    free_port,
    machine,
    start_server,
    wait_ready,
)

LOOKALIKES = ("household", "twin", "reapplicant", "nat", "kiosk", "campus", "business", "assisted")


def generate_split(n: int, seed: int, history: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from graph.synth.dataset import generate

    apps, truth = generate(n, seed=seed)
    apps = apps.sort_values("created_at", kind="stable").reset_index(drop=True)
    cut = int(len(apps) * history)
    return apps.iloc[:cut], apps.iloc[cut:], truth


def set_up(settings, hist: pd.DataFrame, truth: pd.DataFrame, models: tuple[str, ...]):
    """History into the store, a model trained on it, the history batch-scored: where production starts."""
    from graph.ingest.load import ingest_files
    from graph.jobs import score_store, train_job
    from graph.learn.training import TrainConfig
    from graph.store.bolt import GraphStore
    from graph.store.export import export_tables

    path = settings.data_dir / "history.parquet"
    hist.to_parquet(path, index=False)
    with GraphStore.connect(settings) as store:
        store.ensure_schema()
        ingest_files([path], settings, store)
        labels = truth[truth["application_id"].isin(hist["application_id"])]
        outcome = train_job(export_tables(store), settings, labels, TrainConfig(models=models))
        score_store(store, outcome.artifact, settings)
    return outcome.artifact


def post_stream(
    settings, stream: pd.DataFrame, key: str, log_path: Path, refresh_accounts: int | None = None
) -> pd.DataFrame:
    port = free_port()
    proc = start_server(settings, key, port, log_path, refresh_accounts=refresh_accounts)
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_ready(base, proc)
        headers = {"X-API-Key": key}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for rec in tqdm(stream.to_dict(orient="records"), desc="stream", unit="app"):
                body = {k: v for k, v in ((k, _jsonable(v)) for k, v in rec.items()) if _present(v)}
                r = client.post("/v1/applications", json=body)
                out = r.json() if r.status_code == 200 else {}
                rows.append(
                    {
                        "application_id": rec["application_id"],
                        "status": r.status_code,
                        "risk": out.get("risk_score", np.nan),
                        "decision": out.get("decision", "error"),
                        "ring_id": (out.get("ring") or {}).get("id"),
                    }
                )
    finally:
        proc.terminate()
        proc.wait(60)
    return pd.DataFrame(rows)


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and v != v)


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return [float(x) for x in v]
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def batch_afterwards(settings, artifact, ids: pd.Series) -> pd.DataFrame:
    from graph.jobs import score_store
    from graph.store.bolt import GraphStore

    with GraphStore.connect(settings) as store:
        job = score_store(store, artifact, settings, write=False)
    return _scored(job.result.scores, ids)


def prospective(settings, artifact, hist: pd.DataFrame, stream: pd.DataFrame, windows: int) -> pd.DataFrame:
    """Each window scored on the graph truncated at its last arrival (in memory, the same batch code)."""
    from graph.contract.pseudonymise import Pseudonymiser, load_key
    from graph.ingest.pipeline import tables_from_frame
    from graph.learn.hetero import GraphInput
    from graph.learn.scoring import score_all

    pseudonymiser = Pseudonymiser(load_key(settings))
    out = []
    bounds = np.linspace(0, len(stream), windows + 1).astype(int)
    for lo, hi in tqdm(list(zip(bounds[:-1], bounds[1:], strict=True)), desc="prospective", unit="window"):
        if hi <= lo:
            continue
        prefix = pd.concat([hist, stream.iloc[:hi]], ignore_index=True)
        tables = tables_from_frame(prefix, settings, pseudonymiser)
        result = score_all(GraphInput(tables, artifact.config.features), artifact)
        out.append(_scored(result.scores, stream["application_id"].iloc[lo:hi]))
    return pd.concat(out, ignore_index=True)


def _scored(scores: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    s = scores.set_index("application_id").reindex(ids.astype(str).to_numpy())
    return pd.DataFrame(
        {
            "application_id": s.index,
            "risk": s["risk_score"].to_numpy(float),
            "decision": s["decision"].to_numpy(object),
            "ring_id": s["ring_id"].to_numpy(object),
        }
    )


def metrics(answers: pd.DataFrame, truth: pd.DataFrame, arrival_rank: pd.Series) -> dict:
    t = truth.set_index("application_id")
    a = answers.set_index("application_id")
    y = t.loc[a.index, "label"].to_numpy(int)
    risk = np.nan_to_num(a["risk"].to_numpy(float), nan=0.0)
    ring = y == 1
    decision = a["decision"].to_numpy(object)
    answered_ring = pd.notna(a["ring_id"]).to_numpy()
    third = ring & (arrival_rank.reindex(a.index).to_numpy() >= 3)
    scen = t.loc[a.index, "scenario"].to_numpy(object)
    out = {
        "accounts": int(len(a)),
        "ring_members": int(ring.sum()),
        "auprc": round(float(average_precision_score(y, risk)), 4) if 0 < y.sum() < len(y) else None,
        "ring_recall_decline": _share(decision[ring] == "decline"),
        "ring_recall_review_or_decline": _share(np.isin(decision[ring], ["review", "decline"])),
        "ring_members_answered_with_ring": _share(answered_ring[ring]),
        "ring_members_from_third_answered_with_ring": _share(answered_ring[third]),
        "errors": int((decision == "error").sum()),
        "lookalikes": {},
    }
    for kind in [*LOOKALIKES, "honest"]:
        m = scen == kind
        if m.any():
            out["lookalikes"][kind] = {
                "n": int(m.sum()),
                "decline": _share(decision[m] == "decline"),
                "review": _share(decision[m] == "review"),
            }
    return out


def _share(mask: np.ndarray) -> float | None:
    return round(float(np.mean(mask)), 4) if len(mask) else None


def _revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return out.stdout.strip() + ("+changes" if dirty else "")
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="applications generated")
    ap.add_argument("--seed", type=int, default=11, help="generator seed (not one the tests or demo use)")
    ap.add_argument("--history", type=float, default=0.7, help="share of applications before T")
    ap.add_argument("--models", default="rules,gbt,gnn", help="models trained; the best ships")
    ap.add_argument("--windows", type=int, default=10, help="prospective-batch windows over the stream")
    ap.add_argument("--limit", type=int, default=None, help="post only the first N applications after T")
    ap.add_argument(
        "--refresh-accounts",
        type=int,
        default=None,
        help="RINGWATCH_SCORER_REFRESH_ACCOUNTS for the server (default: the setting's default)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()

    from graph.store import arcade

    started = time.perf_counter()
    hist, stream, truth = generate_split(args.n, args.seed, args.history)
    if args.limit:
        stream = stream.iloc[: args.limit]
    data_dir = Path(tempfile.mkdtemp(prefix="rw-stream-"))
    settings = bench_settings(data_dir, int(len(hist["face_embedding"].dropna().iloc[0])))
    key = "stream-bench-key"
    arcade.start(settings)
    try:
        artifact = set_up(settings, hist, truth, tuple(args.models.split(",")))
        print(f"history {len(hist):,} in, {artifact.shipped} shipped; posting {len(stream):,} after T")
        realtime = post_stream(settings, stream, key, data_dir / "server.log", args.refresh_accounts)
        after = batch_afterwards(settings, artifact, stream["application_id"])
        prosp = prospective(settings, artifact, hist, stream, args.windows)
    finally:
        arcade.stop(settings)
    order = pd.concat([hist, stream])[["application_id", "created_at"]]
    ranked = order.merge(truth[["application_id", "ring_id"]], on="application_id")
    ranked = ranked[ranked["ring_id"].notna()].sort_values("created_at", kind="stable")
    rank = ranked.groupby("ring_id").cumcount().add(1).set_axis(ranked["application_id"].to_numpy())
    result = {
        "machine": machine(),
        "command": "scripts/bench_stream.py " + " ".join(sys.argv[1:]),
        "revision": _revision(),
        "n": args.n,
        "seed": args.seed,
        "history": len(hist),
        "stream": len(stream),
        "shipped": artifact.shipped,
        "windows": args.windows,
        "refresh_accounts": args.refresh_accounts,
        "realtime": metrics(realtime, truth, rank),
        "batch_afterwards": metrics(after, truth, rank),
        "prospective_batch": metrics(prosp, truth, rank),
        "seconds": round(time.perf_counter() - started, 1),
    }
    rt, pb = result["realtime"], result["prospective_batch"]
    if rt["auprc"] and pb["auprc"]:
        result["realtime_over_prospective_auprc"] = round(rt["auprc"] / pb["auprc"], 3)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
