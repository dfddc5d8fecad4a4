"""``ringwatch faces ...``: calibrate the SAME_FACE threshold, inspect, search and rebuild the face index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

console = Console(stderr=True)
faces = typer.Typer(
    help="Face 1:N search: threshold calibration, the face index, the embedding extractor.",
    no_args_is_help=True,
)


def _load_labelled(path: Path, embeddings_col: str, labels_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and identity labels from an .npz (arrays) or a table (.parquet/.csv/.jsonl, list column)."""
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="INPUT")
    if path.suffix == ".npz":
        data = np.load(path, allow_pickle=False)
        missing = [k for k in (embeddings_col, labels_col) if k not in data.files]
        if missing:
            raise typer.BadParameter(
                f"{path} has no array(s) {missing}; it has {data.files}", param_hint="INPUT"
            )
        return np.asarray(data[embeddings_col], dtype=np.float32), np.asarray(data[labels_col])
    from graph.contract.io import UnreadableFile, read_table

    try:
        frame, _ = read_table(path)
    except UnreadableFile as e:
        raise typer.BadParameter(str(e), param_hint="INPUT") from e
    missing = [c for c in (embeddings_col, labels_col) if c not in frame.columns]
    if missing:
        raise typer.BadParameter(f"{path} has no column(s) {missing}", param_hint="INPUT")
    frame = frame[frame[embeddings_col].notna() & frame[labels_col].notna()]
    vectors = [json.loads(v) if isinstance(v, str) else v for v in frame[embeddings_col]]
    try:
        x = np.asarray(np.stack([np.asarray(v, dtype=np.float32) for v in vectors]))
    except ValueError as e:
        raise typer.BadParameter(f"embeddings in {path} do not all have one dimension: {e}") from e
    return x, frame[labels_col].astype(str).to_numpy()


@faces.command()
def calibrate(
    ctx: typer.Context,
    input: Path = typer.Argument(
        ..., help="Labelled embeddings: .npz (arrays) or .parquet/.csv/.jsonl (columns)."
    ),
    out: Path | None = typer.Option(
        None,
        help="Calibration JSON (a PNG DET curve is written beside it). "
        "Default: the settings' face_calibration_path, which SAME_FACE linking reads.",
    ),
    embeddings_col: str = typer.Option("embeddings", help="Array/column holding the embeddings."),
    labels_col: str = typer.Option("identity", help="Array/column holding the identity labels."),
    target_fpir: float = typer.Option(0.01, help="Target 1:N false-positive identification rate."),
    gallery_size: int = typer.Option(1_000_000, help="Gallery size N the threshold must hold at."),
    target_fmr: float = typer.Option(1e-3, help="Pairwise false-match rate to report a threshold for."),
    seed: int = typer.Option(0, help="Seed for impostor sampling and enrolment choice."),
) -> None:
    """Calibrate the SAME_FACE cosine threshold from embeddings with identity labels.

    Genuine and impostor pair scores give FMR/FNMR; the threshold keeps 1:N FPIR at or below TARGET_FPIR
    for a gallery of GALLERY_SIZE faces (FPIR grows with N: 1-(1-FMR)^N, the far tail modelled). One
    enrolment per identity also measures rank-1 and FNIR at FPIR 1% and 0.3% on the data itself.
    """
    from embeddings.calibrate import calibrate_identities, save_calibration

    x, labels = _load_labelled(input, embeddings_col, labels_col)
    try:
        cal = calibrate_identities(x, labels, target_fmr, target_fpir, gallery_size, seed=seed)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    json_path, png = save_calibration(cal, out or ctx.obj.face_calibration_path)
    m = cal.measured_1n or {}
    console.print(
        f"[bold]SAME_FACE threshold {cal.same_face_threshold:.4f}[/bold] (FPIR {target_fpir:g} at N={gallery_size:,}; "
        f"FNIR {cal.fnir_at_same_face_threshold:.3f}{', tail extrapolated' if cal.extrapolated else ''})\n"
        f"pairwise: threshold {cal.threshold_at_fmr:.4f} at FMR {target_fmr:g}, FNMR {cal.fnmr_at_threshold:.3f}; "
        f"{cal.n_genuine:,} genuine / {cal.n_impostor:,} impostor pairs\n"
        f"measured on this data (gallery {m.get('gallery_size')}): rank-1 {m.get('rank1', float('nan')):.3f}, "
        f"FNIR at FPIR 1% {m.get('fnir_at_fpir', {}).get('0.01', {}).get('fnir', float('nan')):.3f}\n"
        f"wrote {json_path} and {png}"
    )


@faces.command()
def info(
    ctx: typer.Context,
    index: Path | None = typer.Argument(None, help="Face index file (default: settings' face_index_path)."),
) -> None:
    """Print a face index's header (dimension, metric, type, count) without loading it."""
    from embeddings.index import read_header

    path = index or ctx.obj.face_index_path
    try:
        typer.echo(json.dumps(read_header(path), indent=2))
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e


@faces.command()
def extract(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="An image file with one face."),
    model: str | None = typer.Option(
        None, help="'dlib' or a path to an ArcFace-style .onnx (default: settings)."
    ),
) -> None:
    """Print the face embedding of IMAGE as a JSON array (the face nearest the centre)."""
    from embeddings.extract import NoFaceFound, UnreadableImage, make_extractor

    try:
        vector = make_extractor(model or ctx.obj.face_model).extract(image)
    except (NoFaceFound, UnreadableImage) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    typer.echo(json.dumps([round(float(v), 7) for v in vector]))


@faces.command()
def search(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="An image file with one face."),
    k: int = typer.Option(10, min=1, help="How many matches to list."),
    index: Path | None = typer.Option(None, help="Face index file (default: settings' face_index_path)."),
    model: str | None = typer.Option(None, help="'dlib' or a path to an .onnx model (default: settings)."),
) -> None:
    """Search the face index for IMAGE's face; prints application ids with cosine similarity."""
    from embeddings.extract import NoFaceFound, UnreadableImage, make_extractor
    from embeddings.index import FaceIndex

    settings = ctx.obj
    try:
        gallery = FaceIndex.load(index or settings.face_index_path)
        vector = make_extractor(model or settings.face_model).extract(image)
        hits = gallery.search(vector, k=k, nprobe=settings.face_nprobe)[0]
    except (OSError, ValueError, NoFaceFound, UnreadableImage) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    typer.echo(json.dumps([{"application_id": i, "similarity": round(s, 5)} for i, s in hits], indent=2))


@faces.command()
def rebuild(
    ctx: typer.Context,
    index: Path | None = typer.Argument(None, help="Face index file (default: settings' face_index_path)."),
    index_type: str | None = typer.Option(
        None,
        "--type",
        help="auto, flat, ivf_flat or hnsw (default: RINGWATCH_FACE_INDEX_TYPE when set, else the index's own "
        "policy). hnsw makes a serving index for real-time decisions: minutes to build at 100k faces.",
    ),
) -> None:
    """Retrain a face index from its own vectors (or convert it to another type) and save it atomically."""
    from embeddings.index import INDEX_TYPES, FaceIndex

    settings = ctx.obj
    path = index or settings.face_index_path
    wanted = index_type or settings.face_index_type
    if wanted != "auto" and wanted not in INDEX_TYPES:
        raise typer.BadParameter(f"--type must be auto or one of {', '.join(INDEX_TYPES)}")
    try:
        gallery = FaceIndex.load(path)
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    before = gallery.header()
    if index_type is not None or wanted != "auto":
        gallery.policy = wanted  # later growth (and the saved header) follow the new type
    gallery.rebuild(index_type=None if gallery.policy == "auto" else gallery.policy)
    gallery.save(path)
    console.print(f"rebuilt {path}: {before['index_type']} -> {gallery.index_type}, {len(gallery):,} faces")


def register(app: typer.Typer) -> None:
    app.add_typer(faces, name="faces")
