"""``ringwatch db start|stop|status``: manage the embedded ArcadeDB that serves the graph when no Neo4j is set."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console

from graph.settings import Settings
from graph.store import arcade

console = Console(stderr=True)
db_app = typer.Typer(
    name="db",
    help="Manage the embedded ArcadeDB graph store (used when RINGWATCH_NEO4J_URI is not set). "
    "Its data and logs live in $RINGWATCH_DATA_DIR/arcadedb.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print the status as JSON on stdout.")


def _report(result: arcade.ServerStatus, as_json: bool) -> None:
    if as_json:
        payload = asdict(result) | {"data_dir": str(result.data_dir), "uri": result.uri}
        typer.echo(json.dumps(payload, indent=2))
    else:
        colour = "green" if result.running else "yellow"
        console.print(f"[{colour}]{result.message}[/{colour}]")
        if result.running:
            console.print(f"  Bolt URI: {result.uri}  database: {result.database}  data: {result.data_dir}")


def _settings_or_exit(settings: Settings) -> Settings:
    if settings.neo4j_uri:
        console.print(
            f"[yellow]note:[/yellow] RINGWATCH_NEO4J_URI is set ({settings.neo4j_uri}); ringwatch uses that Neo4j, "
            "not the embedded store managed here."
        )
    return settings


@db_app.command()
def start(
    ctx: typer.Context,
    timeout: float = typer.Option(
        None, help="Seconds to wait for Bolt (default: RINGWATCH_ARCADEDB_START_TIMEOUT)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start the embedded ArcadeDB in the background, or report the one already running.

    Exit status: 0 when it is running (started now or already), 1 when it could not start.
    """
    settings = _settings_or_exit(ctx.obj)
    try:
        result = arcade.start(settings, timeout=timeout)
    except arcade.ArcadeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    _report(result, as_json)


@db_app.command()
def stop(
    ctx: typer.Context,
    timeout: float = typer.Option(
        None, help="Seconds between SIGTERM and SIGKILL (default: RINGWATCH_ARCADEDB_STOP_TIMEOUT)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop the embedded ArcadeDB cleanly (SIGTERM, then SIGKILL after the timeout). Not running is not an error."""
    _report(arcade.stop(_settings_or_exit(ctx.obj), timeout=timeout), as_json)


@db_app.command()
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Say whether the embedded ArcadeDB is running, where, and on which Bolt port.

    Exit status: 0 when running, 3 when not (as ``systemctl status`` does).
    """
    result = arcade.status(_settings_or_exit(ctx.obj))
    _report(result, as_json)
    raise typer.Exit(0 if result.running else 3)


@db_app.command()
def favorites(
    out_dir: Path = typer.Argument(..., help="Folder to write the .cypher favorites and style.grass into."),
) -> None:
    """Write the investigators' saved queries for Neo4j Browser, one .cypher file each, plus style.grass.

    Drag the .cypher files onto Browser's Favorites drawer and style.grass onto the Browser window.
    """
    from graph.store.browser import write_favorites

    for path in write_favorites(out_dir):
        typer.echo(str(path))


@db_app.command()
def bands(
    ctx: typer.Context,
    high: float = typer.Option(0.8, help="Score at or above which an account/ring is in the high band."),
    medium: float = typer.Option(0.5, help="Score at or above which it is in the medium band."),
) -> None:
    """Refresh the band labels (RiskHigh/Medium/Low, RingHigh/Medium/Low) that style.grass colours and sizes by.

    Run after each scoring run. Works on the configured store (Neo4j or the embedded one).
    """
    from graph.store.bolt import GraphStore, StoreError
    from graph.store.browser import apply_bands

    try:
        with GraphStore.connect(ctx.obj) as store:
            changed = apply_bands(store, high=high, medium=medium)
    except (StoreError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for label, n in changed.items():
        console.print(f"  {label:<11} {n:>9} relabelled")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
