"""The batch jobs behind ``ringwatch train | score | evaluate``, independent of where the graph came from.

Each takes a ``GraphTables`` (exported from the store, or built in memory from a file), so the CLI stays a thin
shell and the held-out-seed benchmark runs the very same code without a database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from graph.evaluate.metrics import Report, evaluate, judged_rows, write_report
from graph.learn.features import input_coverage
from graph.learn.hetero import GraphInput
from graph.learn.scoring import ScoreResult, ring_config_for, score_all
from graph.learn.splits import describe_split, ring_groups
from graph.learn.training import Artifact, TrainConfig, save_artifact, train
from graph.rings.clusters import extract_rings
from graph.settings import Settings
from graph.store.export import export_tables
from graph.store.investigate import append_score_history
from graph.store.writeback import write_back
from graph.tables import GraphTables


def read_labels(path: str | Path) -> pd.DataFrame:
    """CSV (or Parquet) with ``application_id,label`` and optionally ``ring_id`` (used only to keep whole rings
    on one side of the internal split) and ``scenario`` (the look-alike group of a negative, used only to bound
    the worst group's decline rate, see ``graph.learn.calibration``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such labels file")
    df = (
        pd.read_parquet(path)
        if path.suffix in (".parquet", ".pq")
        else pd.read_csv(path, dtype={"application_id": str})
    )
    if not {"application_id", "label"} <= set(df.columns):
        raise ValueError(f"{path.name}: labels need the columns application_id,label")
    df["application_id"] = df["application_id"].astype(str)
    df["label"] = pd.to_numeric(df["label"], errors="coerce")
    bad = df["label"].notna() & ~df["label"].isin([0, 1])
    if bad.any():
        raise ValueError(f"{path.name}: label must be 0 or 1 (row {int(np.flatnonzero(bad)[0]) + 2})")
    return df


def merge_review_labels(
    tables: GraphTables, labels: pd.DataFrame | None, reviews: pd.DataFrame
) -> pd.DataFrame | None:
    """Investigators' case reviews override other labels: they are the newest and most direct truth.
    Without a labels file the ingested ``label`` column is the base."""
    if not len(reviews):
        return labels
    if labels is None:
        acc = tables.accounts
        labels = pd.DataFrame({"application_id": acc["id"].astype(str), "label": acc["label"]})
        labels = labels[labels["label"].notna()]
    base = labels[~labels["application_id"].isin(reviews["application_id"])]
    return pd.concat([base, reviews[["application_id", "label"]]], ignore_index=True)


def labels_for(tables: GraphTables, labels: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Per account: label (NaN unknown) and the group key of the internal split.

    Groups are the ring id when the labels give one, else the account's linked component (accounts joined by
    rare signals or faces), so that linked accounts never straddle the split."""
    ids = tables.accounts["id"].astype(str)
    if labels is None:
        return pd.to_numeric(tables.accounts["label"], errors="coerce").to_numpy(np.float64), None
    lab = labels.drop_duplicates("application_id").set_index("application_id")
    y = lab["label"].reindex(ids).to_numpy(np.float64)
    if "ring_id" not in lab:
        return y, None
    return y, ring_groups(ids.to_numpy(dtype=object), lab["ring_id"].reindex(ids).to_numpy(dtype=object))


def benign_groups_for(tables: GraphTables, labels: pd.DataFrame | None) -> np.ndarray | None:
    """Per account: the labels' ``scenario`` (look-alike group) or None when the labels have no such column."""
    if labels is None or "scenario" not in labels:
        return None
    lab = labels.drop_duplicates("application_id").set_index("application_id")
    ids = tables.accounts["id"].astype(str)
    return lab["scenario"].reindex(ids).to_numpy(dtype=object)


@dataclass
class TrainOutcome:
    artifact: Artifact
    path: Path
    graph: GraphInput


def train_job(
    tables: GraphTables,
    settings: Settings,
    labels: pd.DataFrame | None = None,
    config: TrainConfig | None = None,
    progress=print,
) -> TrainOutcome:
    config = config or TrainConfig()
    graph = GraphInput(tables, config.features)
    y, groups = labels_for(tables, labels)
    # linked accounts stay on one side of the internal split; known rings stay whole
    comp = np.array([f"c{c}" for c in graph.state.component], dtype=object)
    groups = comp if groups is None else np.where(pd.Series(groups).str.startswith("ring:"), groups, comp)
    benign = benign_groups_for(tables, labels)
    artifact = train(graph, y, groups, settings, config, progress=progress, benign_groups=benign)
    artifact.trained_ids = tables.accounts["id"].astype(str).to_numpy()[~np.isnan(y)].tolist()
    path = save_artifact(artifact, settings.models_dir)
    return TrainOutcome(artifact, path, graph)


@dataclass
class StoreScoring:
    result: ScoreResult
    graph: GraphInput
    written: dict[str, int] | None
    scored_at: str


def score_store(store, artifact: Artifact, settings: Settings, write: bool = True) -> StoreScoring:
    """The one batch-score job (``ringwatch score`` and ``POST /v1/jobs/score``): every account in the
    store, rings redrawn; with ``write``, scores and rings go back to the graph and each ring's score is
    appended to its history."""
    graph = GraphInput(export_tables(store), artifact.config.features)
    result = score_all(graph, artifact)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    written = None
    if write:
        written = write_back(store, result, settings.batch_size)
        append_score_history(store, [{"id": r.id, "score": float(r.score)} for r in result.rings], at)
    return StoreScoring(result, graph, written, at)


def held_out_truth(
    truth: pd.DataFrame, artifact: Artifact, tables: GraphTables
) -> tuple[pd.DataFrame, list[str]]:
    """The truth rows an evaluation may judge (not training labels of the artifact), and report notes on how
    the artifact was trained: its internal split and the optional inputs it had. Raises ValueError when no
    such row labels an account of the graph: a model is never measured on its own training labels."""
    ids = tables.accounts["id"].astype(str).to_numpy()
    trained = set(artifact.trained_ids or [])
    before = len(truth)
    truth = truth[~truth["application_id"].astype(str).isin(trained)]
    excluded = before - len(truth)
    if not judged_rows(truth, ids)[0].any():
        fix = "pass a truth file with held-out rows"
        if before and excluded == before:
            raise ValueError(f"nothing left to evaluate: all {before} truth rows were training labels; {fix}")
        if excluded:
            raise ValueError(
                f"nothing left to evaluate: {excluded} of the {before} truth rows were training labels and the "
                f"other {before - excluded} label no account of this graph; {fix} of this graph"
            )
        raise ValueError(
            f"nothing to evaluate: none of the {before} truth rows labels an account of this graph"
        )
    notes = [describe_split(artifact.split)]
    if trained:
        notes.append(f"{excluded} truth rows were training labels and are excluded")
    if artifact.inputs is not None:
        absent = artifact.inputs["absent"]
        lacking = [c for c, n in input_coverage(tables).items() if not n and c in artifact.inputs["present"]]
        notes.append(
            "trained without the inputs " + ", ".join(absent)
            if absent
            else "trained with every optional input"
        )
        if lacking:
            notes.append("this graph lacks inputs the model was trained with: " + ", ".join(lacking))
    return truth, notes


def evaluate_job(
    tables: GraphTables,
    artifact: Artifact,
    truth: pd.DataFrame,
    out_dir: Path,
    graph: GraphInput | None = None,
) -> tuple[Report, ScoreResult]:
    """Every model of the artifact on the graph; metrics only on truth rows the artifact was not trained on
    (``held_out_truth``, checked before anything is scored)."""
    truth, notes = held_out_truth(truth, artifact, tables)
    graph = graph or GraphInput(tables, artifact.config.features)
    result = score_all(graph, artifact)
    ids = tables.accounts["id"].astype(str).to_numpy()
    scores = {name: artifact.raw_scores(graph, name) for name in artifact.models}
    shipped = f"{artifact.shipped} (shipped, calibrated)"
    scores[shipped] = result.risk
    rings = {shipped: [r.members for r in result.rings]}
    cfg = ring_config_for(artifact)
    for name in scores:
        if name in artifact.models:
            cal = artifact.calibrator if name == artifact.shipped else None
            risk = cal.transform(scores[name]) if cal else scores[name]
            # uncalibrated members: candidates above the same share of accounts as the shipped model
            thr = (
                cfg.min_risk if cal else float(np.quantile(scores[name], np.mean(result.risk < cfg.min_risk)))
            )
            rings[name] = [r.members for r in extract_rings(graph, risk, _with_min(cfg, thr))]
    notes.append(
        "ring metrics of non-shipped models use ring candidates at the same alert rate as the shipped model"
    )
    report = evaluate(
        truth,
        ids,
        scores,
        rings,
        shipped,
        artifact.calibrator.decline_at,
        artifact.calibrator.review_at,
        notes,
    )
    keep, rows = judged_rows(truth, ids)
    y = rows["label"].to_numpy(int)
    write_report(report, y, {k: np.asarray(v)[keep] for k, v in scores.items()}, out_dir)
    return report, result


def _with_min(cfg, min_risk: float):
    return replace(cfg, min_risk=min_risk)
