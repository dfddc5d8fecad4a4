"""``ringwatch generate``: write a synthetic onboarding dataset with ground truth and a report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from graph.synth import RING_STYLES, FaceParams, RingConfig, SynthConfig, write

console = Console(stderr=True)


def _parse_mix(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in RING_STYLES:
            raise typer.BadParameter(f"unknown ring style {name!r}; known: {', '.join(RING_STYLES)}")
        try:
            mix[name] = float(weight) if weight else 1.0
        except ValueError as exc:
            raise typer.BadParameter(f"weight of {name!r} is not a number: {weight!r}") from exc
        if mix[name] < 0:
            raise typer.BadParameter(f"weight of {name!r} is negative")
    return mix


def generate(
    ctx: typer.Context,
    applications: int = typer.Option(10_000, "--applications", "-n", min=1, help="Number of applications."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed; the same seed writes the same data."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: <RINGWATCH_DATA_DIR>/synthetic)."
    ),
    ring_fraction: float = typer.Option(
        0.03, "--ring-fraction", min=0.0, max=0.49, help="Share of applications that belong to fraud rings."
    ),
    ring_mix: str | None = typer.Option(
        None,
        "--ring-mix",
        help=f"Ring style weights, e.g. 'face_reuse=2,burst=1' (styles: {', '.join(RING_STYLES)}).",
    ),
    face_dim: int | None = typer.Option(
        None, "--face-dim", min=2, help="Face embedding dimension (default: RINGWATCH_FACE_DIM, 512)."
    ),
    days: int = typer.Option(90, "--days", min=1, help="Length of the period the applications span."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.md and PNG plots."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Generate synthetic onboarding applications: honest people (households, twins, re-applicants,
    carrier NAT, kiosks, campuses) and fraud rings of several styles.

    Writes applications.parquet (the data contract, no labels), truth.parquet (label, ring_id, scenario,
    ring_style per application) and report.md with PNG plots into OUT.
    """
    settings = ctx.obj
    out = out or settings.data_dir / "synthetic"
    dim = face_dim or settings.face_dim
    mix = _parse_mix(ring_mix)
    try:
        rings = RingConfig(fraction=ring_fraction, **({"mix": mix} if mix else {}))
        cfg = SynthConfig(days=days, face=FaceParams(dim=dim), rings=rings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    with Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=applications)
        summary = write(out, applications, seed, cfg, progress=lambda k: bar.advance(task, k), report=report)

    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(summary), indent=2))
        return
    console.print(
        f"[bold]{summary.rows:,}[/bold] applications, [bold]{summary.rings:,}[/bold] rings "
        f"({summary.ring_rows:,} ring applications, {summary.ring_rows / summary.rows:.2%}) "
        f"written to {summary.out_dir}"
    )
    console.print("  scenarios: " + ", ".join(f"{k} {v:,}" for k, v in summary.scenarios.items() if v))
    console.print("  ring styles: " + ", ".join(f"{k} {v:,}" for k, v in summary.ring_styles.items() if v))
    console.print(f"  files: {', '.join(summary.files)}")
    console.print(f"  time {summary.seconds:.1f} s, peak memory {summary.peak_rss_mb:,.0f} MB")


def register(app: typer.Typer) -> None:
    app.command()(generate)
