"""``ringwatch train | score | evaluate | demo``: the model batch jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from graph.settings import Settings

console = Console(stderr=True)
FATAL = 2

APPS_HELP = (
    "Build the graph in memory from this applications file instead of exporting it from the store "
    "(no database needed; SAME_FACE links from an exact FAISS search)."
)


def _tables(settings: Settings, applications: Path | None):
    """The graph: from a file in memory, or exported from the store."""
    if applications is not None:
        from graph.ingest.pipeline import tables_from_file

        settings = settings.model_copy(update={"demo": settings.demo or settings.pseudonym_key is None})
        return tables_from_file(applications, settings)
    from graph.store.bolt import GraphStore
    from graph.store.export import export_tables

    with GraphStore.connect(settings) as store:
        return export_tables(store)


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(FATAL) from exc


def train(
    ctx: typer.Context,
    labels: Path = typer.Option(
        None,
        "--labels",
        help="CSV of application_id,label (optionally ring_id, scenario). Default: the ingested label column.",
    ),
    applications: Path = typer.Option(None, "--applications", help=APPS_HELP),
    models: str = typer.Option("rules,gbt,gnn", "--models", help="Models to train, comma-separated."),
    holdout: float = typer.Option(
        0.25,
        "--holdout",
        help="Share of labelled rows (whole rings) held out to "
        "choose the shipped model, calibrate it and set thresholds.",
    ),
    split: str = typer.Option(
        "time",
        "--split",
        help="Which labelled rows are held out: time (the latest period; a ring that reaches it goes with it) "
        "or random (a random share of the rings and linked groups).",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed for splits and initialisation."),
    epochs: int = typer.Option(300, "--epochs", help="Most GNN epochs (early stopping usually ends sooner)."),
) -> None:
    """Train the rules, GBT and GNN models, keep the best on held-out rows, calibrate it, save a versioned
    artifact under RINGWATCH_DATA_DIR/models (metrics, thresholds, feature schema, the split and the optional
    inputs the graph held in artifact.json)."""
    import torch

    from graph.jobs import read_labels, train_job
    from graph.learn.splits import SPLITS
    from graph.learn.training import MODEL_NAMES, TrainConfig

    settings = ctx.obj
    torch.set_num_threads(settings.torch_threads)
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    unknown = set(names) - set(MODEL_NAMES)
    if unknown:
        _fail(ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(MODEL_NAMES)}"))
    if split not in SPLITS:
        _fail(ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}"))
    try:
        lab = read_labels(labels) if labels else None
        tables = _tables(settings, applications)
        if applications is None:
            lab = _with_reviews(settings, tables, lab)
        cfg = TrainConfig(
            models=names, holdout_fraction=holdout, split=split, seed=seed, gnn_max_epochs=epochs
        )
        out = train_job(tables, settings, lab, cfg, progress=lambda m: console.print(m))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(exc)
    _print_metrics(out.artifact)
    if out.artifact.inputs["absent"]:
        typer.echo("trained without the optional inputs " + ", ".join(out.artifact.inputs["absent"]))
    typer.echo(f"model {out.artifact.version} saved to {out.path} (shipped: {out.artifact.shipped})")


def _with_reviews(settings: Settings, tables, lab):
    from graph.jobs import merge_review_labels
    from graph.store.bolt import GraphStore
    from graph.store.reviews import review_labels

    with GraphStore.connect(settings) as store:
        reviews = review_labels(store)
    if len(reviews):
        console.print(f"{len(reviews):,} labels from case reviews (they override other labels)")
    return merge_review_labels(tables, lab, reviews)


def score(
    ctx: typer.Context,
    out: Path = typer.Option(
        Path("out/scores"), "--out", help="Directory for scores.parquet and rings.json."
    ),
    applications: Path = typer.Option(
        None, "--applications", help=APPS_HELP + " Nothing is written to a store."
    ),
    write: bool = typer.Option(
        True, "--write/--no-write", help="Write risk_score, ring_id, Ring and MEMBER_OF back to the store."
    ),
) -> None:
    """Score every account with the latest model, extract rings with evidence, write them back to the store
    and to OUT/scores.parquet (application_id, risk_score, decision, ring_id, ring_score) and OUT/rings.json."""
    import torch

    from graph.learn.hetero import GraphInput
    from graph.learn.scoring import score_all, write_outputs
    from graph.learn.training import load_artifact

    settings = ctx.obj
    torch.set_num_threads(settings.torch_threads)
    try:
        artifact = load_artifact(settings.models_dir)
        t0 = time.perf_counter()
        if applications is not None:
            tables = _tables(settings, applications)
            result = score_all(GraphInput(tables, artifact.config.features), artifact)
            written = None
        else:
            from graph.jobs import score_store
            from graph.store.bolt import GraphStore

            with GraphStore.connect(settings) as store:
                job = score_store(store, artifact, settings, write=write)
            result, written = job.result, job.written
        paths = write_outputs(result, out)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(exc)
    counts = result.scores["decision"].value_counts().to_dict()
    typer.echo(
        f"scored {len(result.scores):,} accounts in {time.perf_counter() - t0:.1f} s with {artifact.version}: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    typer.echo(f"{len(result.rings)} rings; wrote {paths[0]} and {paths[1]}")
    if written:
        typer.echo(f"store: {written}")
    _print_rings(result.rings[:10])


def evaluate(
    ctx: typer.Context,
    truth: Path = typer.Option(
        ..., "--truth", help="truth.parquet (or CSV): application_id, label, ring_id, scenario, ring_style."
    ),
    applications: Path = typer.Option(None, "--applications", help=APPS_HELP),
    out: Path = typer.Option(
        Path("out/evaluation"), "--out", help="Directory for report.md, report.json and PNGs."
    ),
) -> None:
    """Evaluate the latest model: account AUROC/AUPRC/recall at 0.1% and 1% FPR, ring precision/recall/F1,
    FPR per benign look-alike, recall per ring style, a model comparison table. Rows whose labels trained
    the model are excluded."""
    import torch

    from graph.evaluate.metrics import read_truth
    from graph.jobs import evaluate_job
    from graph.learn.training import load_artifact

    settings = ctx.obj
    torch.set_num_threads(settings.torch_threads)
    try:
        artifact = load_artifact(settings.models_dir)
        t = read_truth(truth)
        tables = _tables(settings, applications)
        report, _ = evaluate_job(tables, artifact, t, out)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(exc)
    typer.echo(report.markdown())
    typer.echo(f"report written to {out}")


def demo(
    ctx: typer.Context,
    n: int = typer.Option(50_000, "--n", help="Applications to generate."),
    seed: int = typer.Option(0, "--seed", help="Generator seed."),
    test_fraction: float = typer.Option(0.3, "--test-fraction", help="Share of rings and people held out."),
    epochs: int = typer.Option(300, "--epochs", help="Most GNN epochs."),
    out: Path = typer.Option(Path("out/demo"), "--out", help="Where the data, scores and report go."),
) -> None:
    """Generate a synthetic dataset, ingest it into the embedded store, train on a split (whole rings on one
    side), score everything, write rings back, and print the top rings with evidence and the evaluation on
    the held-out side. That split is the demo's own, at random by ring; inside training, the latest quarter
    of the training rows chooses and calibrates the shipped model, as in `ringwatch train`."""
    import pandas as pd
    import torch

    from graph.evaluate.metrics import read_truth
    from graph.ingest.load import ThresholdMissing, ingest_files, same_face_threshold
    from graph.ingest.pipeline import calibrate_synthetic_faces
    from graph.jobs import evaluate_job, train_job
    from graph.learn.scoring import write_outputs
    from graph.learn.splits import group_split, ring_groups
    from graph.learn.training import TrainConfig
    from graph.store.bolt import GraphStore
    from graph.store.export import export_tables
    from graph.store.writeback import write_back
    from graph.synth import write as synth_write

    settings = ctx.obj
    if settings.pseudonym_key is None:
        settings = settings.model_copy(update={"demo": True})
    torch.set_num_threads(settings.torch_threads)
    t0 = time.perf_counter()
    try:
        console.print(f"[bold]1/5 generate[/bold] {n:,} applications (seed {seed})")
        synth_write(out / "data", n, seed, report=False)
        apps, truth_path = out / "data" / "applications.parquet", out / "data" / "truth.parquet"
        truth = read_truth(truth_path)
        test = group_split(
            ring_groups(truth["application_id"].to_numpy(), truth["ring_id"].to_numpy()), test_fraction, seed
        )
        labels = truth.loc[~test, ["application_id", "label", "ring_id", "scenario"]]
        with GraphStore.connect(settings) as store:
            store.ensure_schema()
            console.print("[bold]2/5 ingest[/bold] into the graph store")
            try:
                threshold = same_face_threshold(settings)
            except ThresholdMissing:
                threshold = calibrate_synthetic_faces(settings, gallery_size=n, seed=seed)
                console.print(
                    f"calibrated SAME_FACE threshold {threshold:.3f} on a separate synthetic face sample "
                    f"(1:N FPIR 1% at N={n:,}): {settings.face_calibration_path}"
                )
            summary = ingest_files([apps], settings, store, threshold=threshold)
            for line in summary.lines():
                console.print(line)
            tables = export_tables(store)
            console.print(
                f"[bold]3/5 train[/bold] on {len(labels):,} labelled rows ({int(test.sum()):,} held out)"
            )
            cfg = TrainConfig(gnn_max_epochs=epochs, seed=seed)
            trained = train_job(
                tables, settings, pd.DataFrame(labels), cfg, progress=lambda m: console.print(m)
            )
            console.print("[bold]4/5 score[/bold] every account and extract rings")
            report, result = evaluate_job(
                tables, trained.artifact, truth[test], out / "report", trained.graph
            )
            written = write_back(store, result, settings.batch_size)
            write_outputs(result, out / "scores")
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(exc)
    console.print(f"store: {written}")
    console.print("[bold]5/5 results[/bold]")
    _print_rings(result.rings[:5])
    typer.echo(report.markdown())
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f} s; report in {out / 'report'}")


def _print_metrics(artifact) -> None:
    from graph.learn.splits import describe_split

    t = Table(
        title=f"held-out metrics ({artifact.metrics['holdout_accounts']:,} accounts)",
        caption=describe_split(artifact.split),
    )
    for c in ("model", "AUROC", "AUPRC", "recall@0.1%FPR", "recall@1%FPR"):
        t.add_column(c)
    for name, m in artifact.metrics["holdout"].items():
        t.add_row(
            name + (" *" if name == artifact.shipped else ""),
            *(f"{m[k]:.4f}" for k in ("auroc", "auprc", "recall_at_0.1pct_fpr", "recall_at_1pct_fpr")),
        )
    Console().print(t)


def _print_rings(rings) -> None:
    for r in rings:
        typer.echo(f"{r.id}  score {r.score:.3f}  size {r.size}  {r.first_seen} .. {r.last_seen}")
        typer.echo("    " + "; ".join(r.reasons))
        for s in r.evidence["shared_signals"][:4]:
            typer.echo(
                f"    {s['kind']:<13} {s['signal'][:12]}…  used by {s['members']} members (degree {s['degree']})"
            )
        typer.echo("    members: " + json.dumps(r.members[:8]) + (" …" if r.size > 8 else ""))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("score")(score)
    app.command("evaluate")(evaluate)
    app.command("demo")(demo)
