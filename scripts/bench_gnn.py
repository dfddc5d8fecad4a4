"""GNN training and full-inference time at scale (DESIGN.md §7: 1M accounts, training <= 15 min, full
inference <= 60 s, 2 cores).

The graph comes straight from the generator's raw rows (no normalisation or pseudonymisation, SAME_FACE
links from the generator's face identities instead of a FAISS search): this measures features + GNN, not
ingest. Training runs as ``ringwatch train`` does (``--epochs 0``: validation split by linked component,
AUPRC checked every 5 epochs, warm-up then cosine learning rate over 150 epochs, patience 30 epochs without a
0.001 gain, optional ``--time-budget``) or for a fixed number of epochs (``--epochs N``, the schedule
shortened to N); seconds per epoch are reported either way. Full inference is timed from the tables: features,
graph and one no-grad forward pass, each reported on its own.

    .venv/bin/python scripts/bench_gnn.py --sizes 100000 1000000 [--epochs 0] [--threads 1] [--no-realtime]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from embeddings.pairs import face_pairs_frame
from graph.learn.baselines import GBTModel
from graph.learn.calibration import Calibrator
from graph.learn.gnn import GNNModel
from graph.learn.hetero import GraphInput
from graph.learn.scoring import RealtimeScorer
from graph.learn.training import Artifact, TrainConfig
from graph.schema import SIGNALS
from graph.synth import FaceParams, SynthConfig, generate
from graph.tables import ACCOUNT_COLUMNS, GraphTables, from_prepared


def raw_tables(n: int, seed: int) -> GraphTables:
    apps, truth = generate(n, seed=seed, config=SynthConfig(face=FaceParams(dim=64)))
    apps = apps.drop(columns=["face_embedding"])
    frame = pd.DataFrame(
        {
            "application_id": apps["application_id"],
            "created_at": pd.to_datetime(apps["created_at"], utc=True).astype("int64") // 10**6,
            "name_key": apps["full_name"].str.lower(),
            "dob_key": apps["date_of_birth"],
            "birth_year": pd.to_numeric(apps["date_of_birth"].str[:4]),
            "liveness_score": apps["liveness_score"],
            "document_authenticity_score": apps["document_authenticity_score"],
            "label": truth["label"].to_numpy(float),
        }
    )
    for s in SIGNALS:
        if s.column == "ip_prefix":
            frame[s.column] = apps["ip"].str.rsplit(".", n=1).str[0]
        else:
            frame[s.column] = apps[s.column]
    face = truth[["application_id", "face_identity"]].dropna()
    face = face.sort_values("face_identity")
    same = face["face_identity"].to_numpy()[1:] == face["face_identity"].to_numpy()[:-1]
    ids = face["application_id"].to_numpy()
    pairs = face_pairs_frame(ids[:-1][same], ids[1:][same], np.full(int(same.sum()), 0.7))
    tables = from_prepared(
        frame[
            [
                c
                for c in frame
                if c in ACCOUNT_COLUMNS or c == "application_id" or c in {s.column for s in SIGNALS}
            ]
        ],
        pairs,
    )
    return tables


def realtime_latency(tables: GraphTables, gnn: GNNModel, n_new: int = 200) -> dict:
    """Per-request latency of ``score_new_accounts`` for one new account against the rest of the graph,
    with the GBT + GNN ensemble (the slowest shipped choice)."""
    rng = np.random.default_rng(0)
    new = np.sort(rng.choice(tables.n_accounts, n_new, replace=False))
    old = np.setdiff1d(np.arange(tables.n_accounts), new)
    remap = pd.Series(np.arange(len(old)), index=old)
    links = tables.links[tables.links["account"].isin(old)]
    links = links.assign(account=remap[links["account"]].to_numpy())
    sf = tables.same_face[tables.same_face["src"].isin(old) & tables.same_face["dst"].isin(old)]
    sf = sf.assign(src=remap[sf["src"]].to_numpy(), dst=remap[sf["dst"]].to_numpy())
    base = GraphTables(tables.accounts.iloc[old].reset_index(drop=True), links, sf)
    g = GraphInput(base)
    gbt = GBTModel(max_iter=100).fit(g, ~np.isnan(g.labels))
    y = g.labels
    raw = (gbt.predict_proba(g)[:, 1] + gnn.predict_proba(g)[:, 1]) / 2
    cal = Calibrator.fit(raw, y, 0.005, 0.02)
    art = Artifact(
        "bench", "", "ensemble", {"gbt": gbt, "gnn": gnn}, cal, list(g.features.columns), TrainConfig(), {}
    )
    t0 = time.perf_counter()
    scorer = RealtimeScorer(art, g)
    t_build = time.perf_counter() - t0
    frame = tables.accounts.iloc[new].rename(columns={"id": "application_id"}).reset_index(drop=True)
    for s in SIGNALS:
        lk = tables.links[(tables.links["rel"] == s.rel) & tables.links["account"].isin(new)]
        frame[s.column] = lk.drop_duplicates("account").set_index("account")["signal"].reindex(new).to_numpy()
    times = []
    for i in range(n_new):
        t0 = time.perf_counter()
        scorer.score_new_accounts(frame.iloc[[i]])
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {
        "scorer_build_s": round(t_build, 1),
        "realtime_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "realtime_p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> int:
    ap = argparse.ArgumentParser(description="GNN training and inference time at scale")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--epochs", type=int, default=0, help="0: early stopping; N: exactly N epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds for GNN training (RINGWATCH_GNN_TIME_BUDGET_S): stop at the best checkpoint so far",
    )
    ap.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time score_new_accounts for single new accounts",
    )
    ap.add_argument("--out", type=Path, default=Path("out/bench_gnn.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for n in args.sizes:
        t0 = time.perf_counter()
        tables = raw_tables(n, seed=0)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = GraphInput(tables)
        t_feat = time.perf_counter() - t0
        t0 = time.perf_counter()
        data, _ = g.hetero
        t_hetero = time.perf_counter() - t0
        print(
            f"{n}: generate {t_gen:.1f} s, features {t_feat:.1f} s, heterodata {t_hetero:.1f} s", flush=True
        )
        # val AUPRC and elapsed time every 5 epochs: a cut-off run still tells
        verbose = {"verbose": True, "time_budget_s": args.time_budget}
        model = (
            GNNModel(max_epochs=args.epochs, patience=10**6, **verbose)
            if args.epochs
            else GNNModel(**verbose)
        )
        groups = np.array([f"c{c}" for c in g.state.component], dtype=object)  # as graph.jobs.train_job
        t0 = time.perf_counter()
        model.fit(g, ~np.isnan(g.labels), groups=groups)
        t_train = time.perf_counter() - t0
        print(
            f"{n}: trained {model.epochs_} epochs in {t_train:.1f} s (stopped by {model.stopped_by_}, kept epoch "
            f"{model.best_epoch_}), peak RSS {rss_gb():.2f} GB, load {os.getloadavg()}",
            flush=True,
        )
        load_train = os.getloadavg()
        del g, data
        t0 = time.perf_counter()
        g2 = GraphInput(tables)  # full inference from the tables: features, graph, forward pass
        t_feat2 = time.perf_counter() - t0
        data2, _ = g2.hetero
        t_hetero2 = time.perf_counter() - t0 - t_feat2
        model.predict_proba(data2)
        t_infer = time.perf_counter() - t0
        row = {
            "accounts": n,
            "links": len(tables.links),
            "gnn_edges": int(sum(data2[et].edge_index.shape[1] for et in data2.edge_types)),
            "generate_s": round(t_gen, 1),
            "features_s": round(t_feat, 1),
            "heterodata_s": round(t_hetero, 1),
            "train_s": round(t_train, 1),
            "epochs": model.epochs_,
            "best_epoch": model.best_epoch_,
            "stopped_by": model.stopped_by_,
            "early_stopping": not args.epochs,
            "best_val_auprc": round(float(model.best_val_ap_), 4),
            "s_per_epoch": round(t_train / model.epochs_, 2),
            "train_total_s": round(t_feat + t_hetero + t_train, 1),
            "full_inference_s": round(t_infer, 1),
            "inference_features_s": round(t_feat2, 1),
            "inference_heterodata_s": round(t_hetero2, 1),
            "inference_forward_s": round(t_infer - t_feat2 - t_hetero2, 1),
            "load_avg_after_training": [round(v, 1) for v in load_train],
        }
        if args.realtime:
            row.update(realtime_latency(tables, model))
        row["peak_rss_gb"] = round(rss_gb(), 2)
        row["load_avg_1_5_15"] = [round(v, 1) for v in os.getloadavg()]
        rows.append(row)
        print(json.dumps(row))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}; "
        "shared with other jobs, timings are noisy"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
