"""The evaluation harness: account metrics, ring metrics, look-alike false positives, model comparison.

Metrics are only meaningful on rows the models were not trained on; callers pass held-out rows (a held-out
generator seed, or the test side of a ring-grouped split) and the harness does nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

TRUTH_COLUMNS = ("application_id", "label", "ring_id", "scenario", "ring_style")


def read_truth(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such truth file")
    truth = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    missing = {"application_id", "label"} - set(truth.columns)
    if missing:
        raise ValueError(f"{path.name}: truth needs columns {sorted(missing)}")
    for c in TRUTH_COLUMNS:
        if c not in truth:
            truth[c] = None
    truth["application_id"] = truth["application_id"].astype(str)
    truth["label"] = pd.to_numeric(truth["label"], errors="coerce")
    return truth


def recall_at_fpr(y: np.ndarray, p: np.ndarray, fpr: float) -> float:
    f, t, _ = roc_curve(y, p)
    ok = f <= fpr
    return float(t[ok].max()) if ok.any() else 0.0


def account_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    if y.min(initial=0) == y.max(initial=0):
        return {
            "auroc": float("nan"),
            "auprc": float("nan"),
            "recall_at_0.1pct_fpr": float("nan"),
            "recall_at_1pct_fpr": float("nan"),
        }
    return {
        "auroc": float(roc_auc_score(y, p)),
        "auprc": float(average_precision_score(y, p)),
        "recall_at_0.1pct_fpr": recall_at_fpr(y, p, 0.001),
        "recall_at_1pct_fpr": recall_at_fpr(y, p, 0.01),
    }


def ring_metrics(predicted: list[list[str]], truth: pd.DataFrame) -> dict:
    """A true ring is found when one predicted ring holds >= half its members and >= half of that predicted
    ring are its members. A predicted ring is correct when it finds some true ring."""
    t = truth[truth["ring_id"].notna()]
    true_rings = t.groupby("ring_id")["application_id"].apply(set).to_dict()
    member_ring = dict(zip(t["application_id"], t["ring_id"], strict=True))
    found: set = set()
    correct = 0
    for ring in predicted:
        counts = pd.Series([member_ring.get(m) for m in ring], dtype=object).value_counts()
        hit = False
        for rid, k in counts.items():
            if k * 2 >= len(ring) and k * 2 >= len(true_rings[rid]):
                found.add(rid)
                hit = True
        correct += hit
    n_pred, n_true = len(predicted), len(true_rings)
    precision = correct / n_pred if n_pred else float("nan")
    recall = len(found) / n_true if n_true else float("nan")
    f1 = (
        2 * precision * recall / (precision + recall) if n_pred and n_true and precision + recall > 0 else 0.0
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "predicted": n_pred,
        "true": n_true,
        "found": sorted(found),
    }


def per_scenario(truth: pd.DataFrame, flagged: np.ndarray, reviewed: np.ndarray) -> dict[str, dict]:
    """False-positive (decline) and review rates for each benign scenario."""
    out = {}
    neg = truth["label"].to_numpy() == 0
    scen = truth["scenario"].fillna("").astype(str).to_numpy()
    for s in sorted(set(scen[neg])):
        m = neg & (scen == s)
        out[s or "unlabelled"] = {
            "n": int(m.sum()),
            "fpr": float(flagged[m].mean()),
            "review_rate": float(reviewed[m].mean()),
        }
    return out


def per_style(truth: pd.DataFrame, flagged: np.ndarray, found: set) -> dict[str, dict]:
    """Account recall (declined) and ring recall for each ring style."""
    out = {}
    pos = truth["label"].to_numpy() == 1
    style = truth["ring_style"].fillna("").astype(str).to_numpy()
    rings = truth["ring_id"].to_numpy(dtype=object)
    for s in sorted(set(style[pos])):
        m = pos & (style == s)
        ids = {r for r in rings[m] if r is not None and r == r}
        out[s or "unlabelled"] = {
            "accounts": int(m.sum()),
            "account_recall": float(flagged[m].mean()),
            "rings": len(ids),
            "ring_recall": float(len(ids & found) / len(ids)) if ids else float("nan"),
        }
    return out


@dataclass
class ModelResult:
    name: str
    account: dict
    ring: dict | None = None


@dataclass
class Report:
    n_accounts: int
    n_positive: int
    shipped: str
    models: list[ModelResult]
    scenarios: dict
    styles: dict
    thresholds: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for m in d["models"]:
            if m["ring"]:
                m["ring"] = {k: v for k, v in m["ring"].items() if k != "found"}
        return d

    def markdown(self) -> str:
        lines = [
            f"# ringwatch evaluation\n\n{self.n_accounts} held-out accounts, {self.n_positive} ring members. "
            f"Shipped model: **{self.shipped}**.\n",
            "## Model comparison\n",
            "| model | AUROC | AUPRC | recall@0.1%FPR | recall@1%FPR | ring P | ring R | ring F1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in self.models:
            a, r = m.account, m.ring or {}
            lines.append(
                f"| {m.name} | {a['auroc']:.4f} | {a['auprc']:.4f} | {a['recall_at_0.1pct_fpr']:.4f} | "
                f"{a['recall_at_1pct_fpr']:.4f} | {_f(r.get('precision'))} | {_f(r.get('recall'))} | "
                f"{_f(r.get('f1'))} |"
            )
        lines += [
            "",
            "## Benign look-alikes (shipped model)\n",
            "| scenario | n | decline FPR | review rate |",
            "|---|---|---|---|",
        ]
        for s, v in self.scenarios.items():
            lines.append(f"| {s} | {v['n']} | {v['fpr']:.4f} | {v['review_rate']:.4f} |")
        lines += [
            "",
            "## Ring styles (shipped model)\n",
            "| style | accounts | account recall | rings | ring recall |",
            "|---|---|---|---|---|",
        ]
        for s, v in self.styles.items():
            lines.append(
                f"| {s} | {v['accounts']} | {v['account_recall']:.4f} | {v['rings']} | "
                f"{_f(v['ring_recall'])} |"
            )
        lines += ["", f"Thresholds: {json.dumps(self.thresholds)}"]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _f(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def judged_rows(truth: pd.DataFrame, application_ids: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Which accounts (a mask in ``application_ids`` order) have a labelled truth row, and those rows in that
    order: the rows every metric and plot of one evaluation is computed on."""
    t = truth.drop_duplicates("application_id").set_index("application_id")
    ids = pd.Index(np.asarray(application_ids, dtype=object).astype(str))
    keep = ids.isin(t.index) & t["label"].reindex(ids).notna().to_numpy()
    return keep, t.loc[ids[keep]].reset_index()


def evaluate(
    truth: pd.DataFrame,
    application_ids: np.ndarray,
    scores: dict[str, np.ndarray],
    rings: dict[str, list[list[str]]],
    shipped: str,
    decline_at: float,
    review_at: float,
    notes: list[str] | None = None,
) -> Report:
    """``scores``: model name -> calibrated (for the shipped model) probability per application id.
    ``rings``: model name -> predicted rings (lists of application ids). Rows of ``application_ids`` absent
    from ``truth`` are ignored."""
    keep, tt = judged_rows(truth, application_ids)
    if not keep.any():
        raise ValueError("nothing to evaluate: no truth row labels an account of the graph")
    y = tt["label"].to_numpy(int)
    results = []
    found: set = set()
    for name, p in scores.items():
        pr = np.asarray(p, dtype=np.float64)[keep]
        rm = None
        if name in rings:
            members = set(tt["application_id"])
            # a predicted ring mostly made of rows outside the evaluation (e.g. training rows) is not judged
            judged = [[m for m in r if m in members] for r in rings[name]]
            judged = [j for j, r in zip(judged, rings[name], strict=True) if 2 * len(j) >= len(r)]
            rm = ring_metrics(judged, tt)
            if name == shipped:
                found = set(rm["found"])
        results.append(ModelResult(name, account_metrics(y, pr), rm))
    ps = np.asarray(scores[shipped], dtype=np.float64)[keep]
    flagged, reviewed = ps >= decline_at, ps >= review_at
    return Report(
        n_accounts=int(len(tt)),
        n_positive=int(y.sum()),
        shipped=shipped,
        models=results,
        scenarios=per_scenario(tt, flagged, reviewed),
        styles=per_style(tt, flagged, found),
        thresholds={"decline_at": decline_at, "review_at": review_at},
        notes=list(notes or []),
    )


def write_report(
    report: Report, truth_y: np.ndarray, scores: dict[str, np.ndarray], out_dir: Path
) -> list[Path]:
    """report.json, report.md, pr_curves.png, score_histograms.png. ``truth_y``/``scores`` on the same rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        out_dir / "report.json",
        out_dir / "report.md",
        out_dir / "pr_curves.png",
        out_dir / "score_histograms.png",
    ]
    paths[0].write_text(json.dumps(report.to_dict(), indent=2, default=float))
    paths[1].write_text(report.markdown())
    y = np.asarray(truth_y, dtype=int)
    fig, ax = plt.subplots(figsize=(6, 5))
    both = 0 < y.sum() < len(y)  # a curve needs both classes (e.g. held-out rows without ring members)
    for name, p in scores.items() if both else ():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=f"{name} (AP {average_precision_score(y, p):.3f})")
    title = "Precision-recall, held-out accounts" if both else "No precision-recall: one class held out"
    ax.set(xlabel="recall", ylabel="precision", title=title)
    if both:
        ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(paths[2], dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(scores), figsize=(4 * len(scores), 3.5), squeeze=False)
    for ax, (name, p) in zip(axes[0], scores.items(), strict=True):
        bins = np.linspace(0, 1, 41)
        ax.hist(p[y == 0], bins=bins, alpha=0.6, label="honest", log=True)
        ax.hist(p[y == 1], bins=bins, alpha=0.6, label="ring", log=True)
        ax.set(title=name, xlabel="score")
        ax.legend()
    fig.tight_layout()
    fig.savefig(paths[3], dpi=120)
    plt.close(fig)
    return paths
