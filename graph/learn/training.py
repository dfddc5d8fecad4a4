"""Train every model on one graph, pick the one that ships, calibrate it, and save a versioned artifact.

The labelled rows are split with whole rings on one side (``graph.learn.splits``): models are fitted on one
side; the other side (``holdout_fraction``) chooses the shipped model, fits the calibrator and the decision
thresholds, and gives the metrics stored in the artifact. Nothing is measured on rows a model was fitted on.
By default the held-out side is the latest period (``TrainConfig.split = "time"``), since a model is used on
applications that arrive after it was trained and fraud patterns drift; a random share of the rings
(``"random"``) measures the same model on a mix of old and new. The artifact records the split, and which
optional inputs its graph held (``features.input_coverage``): every optional column may be absent, and a
model trained without one must still score an application, with or without it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from graph.evaluate.metrics import account_metrics
from graph.learn.baselines import EnsembleModel, GBTModel, RulesModel
from graph.learn.calibration import Calibrator
from graph.learn.features import FeatureConfig, feature_coverage, input_coverage
from graph.learn.gnn import GNNModel
from graph.learn.hetero import GraphInput
from graph.learn.splits import holdout_split
from graph.rings.clusters import RingConfig
from graph.settings import Settings

MODEL_NAMES = ("rules", "gbt", "gnn")
ARTIFACT_FORMAT = 1


@dataclass
class TrainConfig:
    models: tuple[str, ...] = MODEL_NAMES
    holdout_fraction: float = 0.25
    split: str = "time"  # graph.learn.splits.SPLITS: the latest period held out, or a random share of rings
    seed: int = 0
    gnn_hidden: int = 32
    gnn_layers: int = 2
    gnn_max_epochs: int = 150  # the GNN's schedule ends training (GNNModel.anneal_epochs)
    ensemble: bool = True
    calibration: str = "isotonic"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    rings: RingConfig = field(default_factory=RingConfig)


@dataclass
class Artifact:
    """Everything scoring needs: fitted models, the shipped choice, calibration, feature schema, metrics."""

    version: str
    created_at: str
    shipped: str
    models: dict
    calibrator: Calibrator
    feature_columns: list[str]
    config: TrainConfig
    metrics: dict
    path: Path | None = None
    trained_ids: list[str] | None = None  # accounts whose labels were used; evaluation excludes them
    split: dict | None = None  # the internal holdout (graph.learn.splits.holdout_split); None before recorded
    inputs: dict | None = None  # what the graph held (trained_inputs); None before recorded

    @property
    def model(self):
        """The shipped model: ``predict_proba(graph)`` for a whole graph, ``predict_new(new)`` in real time."""
        return self.models[self.shipped]

    def raw_scores(self, graph: GraphInput, name: str | None = None) -> np.ndarray:
        return self.models[name or self.shipped].predict_proba(graph)[:, 1]

    def risk(self, graph: GraphInput) -> np.ndarray:
        """Calibrated probability of the shipped model."""
        self.check_schema(graph)
        return self.calibrator.transform(self.raw_scores(graph))

    def check_schema(self, graph: GraphInput) -> None:
        if list(graph.features.columns) != self.feature_columns:
            raise ValueError(
                "the artifact was trained on a different feature schema; retrain with `ringwatch train`"
            )

    def summary(self) -> dict:
        return {
            "version": self.version,
            "created_at": self.created_at,
            "shipped": self.shipped,
            "metrics": self.metrics,
            "thresholds": {"decline_at": self.calibrator.decline_at, "review_at": self.calibrator.review_at},
            "feature_columns": self.feature_columns,
            "split": self.split,
            "inputs": self.inputs,
            "config": _jsonable(asdict(self.config)),
            "format": ARTIFACT_FORMAT,
        }


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def _make(name: str, cfg: TrainConfig, settings: Settings | None = None):
    if name == "rules":
        return RulesModel()
    if name == "gbt":
        return GBTModel(seed=cfg.seed)
    if name == "gnn":
        return GNNModel(
            hidden=cfg.gnn_hidden,
            layers=cfg.gnn_layers,
            max_epochs=cfg.gnn_max_epochs,
            seed=cfg.seed,
            time_budget_s=settings.gnn_time_budget_s if settings else None,
        )
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


def _stop_note(model) -> str:
    """For the GNN: how many epochs, why it stopped, which checkpoint it kept (a time budget says so)."""
    if not isinstance(model, GNNModel):
        return ""
    return (
        f" ({model.epochs_} epochs, stopped by {model.stopped_by_}; kept epoch {model.best_epoch_},"
        f" validation AUPRC {model.best_val_ap_:.4f})"
    )


def trained_inputs(graph: GraphInput, fit_mask: np.ndarray) -> dict:
    """What the models were trained with: per optional input, the accounts of the graph that carry it, the
    inputs absent from it, and the feature columns without a value (``all_nan``) or with one value
    (``constant``) on the fitted rows. The GBT fits the all-NaN ones as zeros and the GNN scales both to 0
    (``GBTModel.fit``, ``gnn.Scaler``): none of them moves a score."""
    have = input_coverage(graph.tables)
    cover = feature_coverage(graph.features.to_numpy(np.float32)[fit_mask], list(graph.features.columns))
    return {
        "accounts": int(graph.n),
        "present": {c: n for c, n in have.items() if n},
        "absent": [c for c, n in have.items() if not n],
        "all_nan_features": cover["all_nan"],
        "constant_features": cover["constant"],
    }


def _check_sides(labels: np.ndarray, fit_mask: np.ndarray, hold: np.ndarray, split: dict) -> None:
    """Both sides need both classes: models are fitted on one, the shipped model chosen, calibrated and its
    thresholds set on the other."""
    how = f"the {split['kind']} split" + (f" (cut at {split['cut']})" if split["kind"] == "time" else "")
    fix = (
        "change --holdout, add labels, or use --split random"
        if split["kind"] == "time"
        else "add labels or change the seed"
    )
    if not hold.any():
        raise ValueError(f"nothing left to hold out: {how} held out no labelled account; {fix}")
    if not fit_mask.any():
        raise ValueError(f"nothing left to fit on: {how} held out every labelled account; {fix}")
    for side, m in (("held-out", hold), ("fitted", fit_mask)):
        for cls, name in ((1, "positives"), (0, "negatives")):
            if not (labels[m] == cls).any():
                raise ValueError(
                    f"{how} left no {name} on the {side} side ({int(m.sum())} labelled accounts); {fix}"
                )


def train(
    graph: GraphInput,
    labels: np.ndarray,
    groups: np.ndarray,
    settings: Settings,
    config: TrainConfig | None = None,
    progress=print,
    benign_groups: np.ndarray | None = None,
) -> Artifact:
    """``labels``: 1/0 per account, NaN when unknown. ``groups``: ring-aware group key per account, kept on
    one side of the split. ``benign_groups``: optional look-alike group per account (household, carrier
    NAT...); the decline threshold then bounds the worst group on the held-out side
    (``graph.learn.calibration``). Never a model feature."""
    cfg = config or TrainConfig()
    labels = np.asarray(labels, dtype=np.float64)
    known = ~np.isnan(labels)
    if known.sum() < 20 or np.nansum(labels) < 4 or (labels[known] == 0).sum() < 4:
        raise ValueError("too few labels to train: need at least 20 labelled accounts with 4 of each class")
    arrival = graph.tables.accounts["created_at"].to_numpy(np.int64)
    hold, split = holdout_split(cfg.split, arrival, groups, labels, cfg.holdout_fraction, cfg.seed)
    fit_mask = known & ~hold
    _check_sides(labels, fit_mask, hold, split)
    models, raw, timings = {}, {}, {}
    for name in cfg.models:
        t0 = time.perf_counter()
        models[name] = _make(name, cfg, settings).fit(graph, fit_mask, labels, groups)
        timings[name] = round(time.perf_counter() - t0, 2)
        raw[name] = models[name].predict_proba(graph)[:, 1]
        progress(f"trained {name} in {timings[name]} s{_stop_note(models[name])}")
    if cfg.ensemble and {"gbt", "gnn"} <= set(models):
        models["ensemble"] = EnsembleModel([models["gbt"], models["gnn"]])
        raw["ensemble"] = models["ensemble"].combine([raw["gbt"], raw["gnn"]])
    y_hold = labels[hold]
    metrics = {name: account_metrics(y_hold, p[hold]) for name, p in raw.items()}
    shipped = max((n for n in raw if n != "rules"), key=lambda n: metrics[n]["auprc"], default="rules")
    hold_groups = None if benign_groups is None else np.asarray(benign_groups, dtype=object)[hold]
    cal = Calibrator.fit(
        raw[shipped][hold], y_hold, settings.target_fpr, settings.review_fpr, cfg.calibration, hold_groups
    )
    created = datetime.now(UTC)
    digest = hashlib.sha1(json.dumps(metrics, sort_keys=True).encode()).hexdigest()[:6]
    return Artifact(
        version=created.strftime("%Y%m%dT%H%M%SZ") + "-" + digest,
        created_at=created.isoformat(),
        shipped=shipped,
        models=models,
        calibrator=cal,
        feature_columns=list(graph.features.columns),
        config=cfg,
        metrics={
            "holdout": metrics,
            "holdout_accounts": int(hold.sum()),
            "holdout_positives": int(y_hold.sum()),
            "fit_accounts": int(fit_mask.sum()),
            "train_seconds": timings,
            "gnn_epochs": getattr(models.get("gnn"), "epochs_", None),
            "gnn_best_epoch": getattr(models.get("gnn"), "best_epoch_", None),
            "gnn_stopped_by": getattr(models.get("gnn"), "stopped_by_", None),
        },
        split=split,
        inputs=trained_inputs(graph, fit_mask),
    )


def save_artifact(artifact: Artifact, models_dir: Path) -> Path:
    """``models_dir/<version>/`` with ``artifact.json`` (readable) and ``models.pkl``; ``LATEST`` names it."""
    out = Path(models_dir) / artifact.version
    out.mkdir(parents=True, exist_ok=True)
    (out / "artifact.json").write_text(json.dumps(artifact.summary(), indent=2, default=float))
    with (out / "models.pkl").open("wb") as f:
        pickle.dump(
            {
                "models": artifact.models,
                "calibrator": artifact.calibrator.to_dict(),
                "config": artifact.config,
                "trained_ids": artifact.trained_ids,
            },
            f,
        )
    (Path(models_dir) / "LATEST").write_text(artifact.version + "\n")
    artifact.path = out
    return out


def load_artifact(models_dir: Path, version: str | None = None) -> Artifact:
    """The named version, or the one ``LATEST`` points at. Artifacts are pickles: load only your own."""
    models_dir = Path(models_dir)
    if version is None:
        latest = models_dir / "LATEST"
        if not latest.exists():
            raise FileNotFoundError(f"no trained model in {models_dir}; run `ringwatch train` first")
        version = latest.read_text().strip()
    path = models_dir / version
    if not (path / "artifact.json").exists():
        raise FileNotFoundError(f"no model version {version!r} in {models_dir}")
    meta = json.loads((path / "artifact.json").read_text())
    with (path / "models.pkl").open("rb") as f:
        blob = pickle.load(f)  # noqa: S301 - our own artifact
    models = blob["models"]
    if meta["shipped"] == "ensemble" and "ensemble" not in models:  # saved before the ensemble was a model
        models["ensemble"] = EnsembleModel([models["gbt"], models["gnn"]])
    return Artifact(
        version=meta["version"],
        created_at=meta["created_at"],
        shipped=meta["shipped"],
        models=models,
        calibrator=Calibrator.from_dict(blob["calibrator"]),
        feature_columns=meta["feature_columns"],
        config=blob["config"],
        metrics=meta["metrics"],
        path=path,
        trained_ids=blob.get("trained_ids"),
        split=meta.get("split"),
        inputs=meta.get("inputs"),
    )
