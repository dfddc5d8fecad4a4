"""``ringwatch ingest FILE...``: load applications into the identity graph and the face index."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)

FATAL = 2


def ingest(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(
        ..., help="Applications tables (.parquet, .csv or .jsonl), loaded in the order given."
    ),
    threshold: float = typer.Option(
        None,
        "--threshold",
        help="Cosine threshold for SAME_FACE links. Default: RINGWATCH_SAME_FACE_THRESHOLD, else the "
        "calibration written by `ringwatch faces calibrate`.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Load applications into the identity graph (Neo4j, or the embedded ArcadeDB) and the face index.

    Re-running a file changes nothing; a changed row is updated; a killed run is completed by re-running.

    Bad rows are rejected with reasons into a rejects file beside each input; the good rows go in.

    Exit status: 0 when the load succeeded (even with rejected rows), 2 on a fatal error.
    """
    from graph.contract.io import UnreadableFile
    from graph.contract.pseudonymise import MissingKeyError
    from graph.ingest.load import ThresholdMissing, ingest_files, same_face_threshold
    from graph.store.bolt import GraphStore, StoreError

    settings = ctx.obj
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        console.print(f"[red]error:[/red] no such file: {', '.join(missing)}")
        raise typer.Exit(FATAL)
    try:
        same_face_threshold(settings, threshold)
        with GraphStore.connect(settings) as store:
            store.ensure_schema()
            summary = ingest_files(files, settings, store, threshold=threshold, progress=progress)
    except (ThresholdMissing, MissingKeyError, UnreadableFile, StoreError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(FATAL) from exc
    for line in summary.lines():
        typer.echo(line)
    if summary.rejected:
        where = ", ".join(summary.rejects_files) or "the rejects file"
        console.print(f"[yellow]{summary.rejected:,} rows rejected[/yellow]; reasons in {where}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
