"""External check on real data: GADBench's Reddit graph (10,984 users, 366 anomalous).

Runs the GBT baseline (HistGradientBoosting on own + mean/max neighbour-aggregated features) and a
homogeneous variant of the ringwatch GNN (SAGE layers with residuals and LayerNorm, positive-class weight,
early stopping on validation AUPRC) over 5 random stratified 40/20/40 train/validation/test splits, as in
GADBench's fully-supervised setting, and prints AUROC/AUPRC on the test rows next to the published range
(AUROC 0.553-0.677, AUPRC 0.044-0.083 across GADBench's 14 models).

    .venv/bin/python scripts/gadbench.py [--splits 5] [--out out/gadbench.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import scatter

PUBLISHED = {"auroc": (0.553, 0.677), "auprc": (0.044, 0.083)}


def data_path() -> Path:
    root = Path(
        os.environ.get(
            "RINGWATCH_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
        )
    )
    return root / "gadbench" / "reddit.pt.zip"


def load(path: Path):
    with zipfile.ZipFile(path) as z, tempfile.TemporaryDirectory() as tmp:
        name = next(n for n in z.namelist() if n.endswith(".pt"))
        z.extract(name, tmp)
        return torch.load(Path(tmp) / name, weights_only=False)


def neighbour_features(x: np.ndarray, edge_index: np.ndarray) -> np.ndarray:
    """Own features plus the mean and max over neighbours (both directions), O(edges)."""
    src, dst = np.concatenate([edge_index[0], edge_index[1]]), np.concatenate([edge_index[1], edge_index[0]])
    xt, s, d = torch.from_numpy(x), torch.from_numpy(src), torch.from_numpy(dst)
    mean = scatter(xt[s], d, 0, dim_size=len(x), reduce="mean").numpy()
    mx = scatter(xt[s], d, 0, dim_size=len(x), reduce="max").numpy()
    deg = np.bincount(dst, minlength=len(x))[:, None].astype(np.float32)
    return np.concatenate([x, mean, mx, np.log1p(deg)], axis=1)


class SAGE(nn.Module):
    def __init__(self, d_in: int, hidden: int = 64, layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.enc = nn.Linear(d_in, hidden)
        self.convs = nn.ModuleList(SAGEConv(hidden, hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x, ei):
        h = h0 = torch.relu(self.enc(x))
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(h + self.drop(torch.relu(conv(h, ei))))
        return self.head(torch.cat([h0, h], -1)).squeeze(-1)


def run_gnn(x, ei, y, tr, va, te, seed: int, epochs: int = 300, patience: int = 40) -> np.ndarray:
    torch.manual_seed(seed)
    xs = (x - x[tr].mean(0)) / (x[tr].std(0) + 1e-6)
    xt = torch.from_numpy(xs.astype(np.float32))
    eit = torch.from_numpy(np.concatenate([ei, ei[::-1]], axis=1).astype(np.int64))
    yt = torch.from_numpy(y.astype(np.float32))
    net = SAGE(x.shape[1])
    pw = torch.tensor((len(tr) - y[tr].sum()) / max(y[tr].sum(), 1))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pw)
    opt = torch.optim.AdamW(net.parameters(), lr=0.005, weight_decay=1e-3)
    best, state, since = -1.0, None, 0
    trt = torch.from_numpy(tr)
    for _ in range(epochs):
        net.train()
        opt.zero_grad()
        loss = loss_fn(net(xt, eit)[trt], yt[trt])
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            p = net(xt, eit).numpy()
        ap = average_precision_score(y[va], p[va])
        if ap > best:
            best, state, since = ap, copy.deepcopy(net.state_dict()), 0
        else:
            since += 1
            if since >= patience:
                break
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        return net(xt, eit).numpy()[te]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("out/gadbench.json"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    path = data_path()
    if not path.exists():
        print(f"skipped: {path} not found (set RINGWATCH_SHARED_DATA)")
        return 0
    torch.set_num_threads(args.threads)
    data = load(path)
    x = data.x.numpy().astype(np.float32)
    y = data.y.numpy().astype(int).ravel()
    ei = data.edge_index.numpy()
    print(f"reddit: {len(x):,} nodes, {ei.shape[1]:,} edges, {y.sum()} anomalous ({y.mean():.1%})")
    xa = neighbour_features(x, ei)
    results: dict[str, list[dict]] = {"gbt": [], "gnn": []}
    for seed in range(args.splits):
        idx = np.arange(len(y))
        tr, rest = train_test_split(idx, train_size=0.4, stratify=y, random_state=seed)
        va, te = train_test_split(rest, train_size=1 / 3, stratify=y[rest], random_state=seed)
        t0 = time.perf_counter()
        gbt = HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.05,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=True,
            random_state=seed,
        )
        gbt.fit(np.concatenate([xa[tr], xa[va]]), np.concatenate([y[tr], y[va]]))
        p = gbt.predict_proba(xa[te])[:, 1]
        results["gbt"].append(
            {
                "auroc": roc_auc_score(y[te], p),
                "auprc": average_precision_score(y[te], p),
                "seconds": time.perf_counter() - t0,
            }
        )
        t0 = time.perf_counter()
        p = run_gnn(x, ei, y, tr, va, te, seed)
        results["gnn"].append(
            {
                "auroc": roc_auc_score(y[te], p),
                "auprc": average_precision_score(y[te], p),
                "seconds": time.perf_counter() - t0,
            }
        )
        print(
            f"split {seed}: "
            + "  ".join(
                f"{m} AUROC {r[-1]['auroc']:.3f} AUPRC {r[-1]['auprc']:.3f}" for m, r in results.items()
            )
        )
    summary = {
        m: {
            k: {"mean": float(np.mean([r[k] for r in rs])), "std": float(np.std([r[k] for r in rs]))}
            for k in ("auroc", "auprc", "seconds")
        }
        for m, rs in results.items()
    }
    print(
        f"\n{'model':<6} {'AUROC':>15} {'AUPRC':>15}   (GADBench published: AUROC "
        f"{PUBLISHED['auroc'][0]}-{PUBLISHED['auroc'][1]}, AUPRC {PUBLISHED['auprc'][0]}-{PUBLISHED['auprc'][1]})"
    )
    for m, s in summary.items():
        print(
            f"{m:<6} {s['auroc']['mean']:.3f} ± {s['auroc']['std']:.3f}   {s['auprc']['mean']:.3f} ± "
            f"{s['auprc']['std']:.3f}   ({s['seconds']['mean']:.1f} s per split)"
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{args.threads}; shared machine, timings are noisy"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"splits": args.splits, "results": results, "summary": summary, "published": PUBLISHED}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
