"""``ringwatch validate``: check a file against the data contract without loading anything."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from graph.contract.io import UnreadableFile
from graph.contract.prepare import validate_file
from graph.contract.validate import rejects_path

console = Console(stderr=True)


def validate(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Applications tables (.parquet, .csv or .jsonl)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Validate and normalise FILES without storing anything; write FILE.rejects.csv beside each.

    Exit status: 0 when every row is accepted, 1 when some rows were rejected, 2 when a file cannot be read.
    """
    settings = ctx.obj
    summaries, any_rejected = [], False
    for path in files:
        try:
            v = validate_file(path, settings)
        except UnreadableFile as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        s = v.summary
        s["file"] = str(path)
        if len(v.rejects):
            any_rejected = True
            s["rejects_file"] = str(rejects_path(path))
            s["reasons"] = v.rejects.groupby("reason").size().sort_values(ascending=False).to_dict()
        summaries.append(s)
        if not as_json:
            console.print(
                f"[bold]{path}[/bold]: {s['rows']} rows, [green]{s['accepted']} accepted[/green], "
                f"[{'red' if s['rejected'] else 'green'}]{s['rejected']} rejected[/]"
            )
            for reason, count in list(s.get("reasons", {}).items())[:15]:
                console.print(f"  {count:>7}  {reason}")
            if s.get("rejects_file"):
                console.print(f"  rejects written to {s['rejects_file']}")
    if as_json:
        typer.echo(json.dumps(summaries, indent=2))
    raise typer.Exit(1 if any_rejected else 0)


def register(app: typer.Typer) -> None:
    app.command()(validate)
