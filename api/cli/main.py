"""The ``ringwatch`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from api.cli import data as cli_data
from api.cli import db as cli_db
from api.cli import faces as cli_faces
from api.cli import generate as cli_generate
from api.cli import ingest as cli_ingest
from api.cli import models as cli_models
from api.cli import serve as cli_serve
from api.settings import ApiSettings

app = typer.Typer(
    name="ringwatch",
    help="Find synthetic-identity rings at onboarding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(ctx: typer.Context) -> None:
    """Find synthetic-identity rings at onboarding. Settings come from RINGWATCH_* environment variables."""
    try:
        ctx.obj = ApiSettings()
    except ValidationError as exc:
        typer.echo(f"error: invalid RINGWATCH_* setting: {exc}", err=True)
        raise typer.Exit(2) from None


for module in (cli_data, cli_generate, cli_db, cli_ingest, cli_faces, cli_models, cli_serve):
    module.register(app)

if __name__ == "__main__":
    app()
