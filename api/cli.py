"""The ``ringwatch`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import typer

from api import cli_data, cli_db, cli_faces, cli_generate, cli_ingest, cli_models, cli_serve

app = typer.Typer(
    name="ringwatch",
    help="Find synthetic-identity rings at onboarding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Find synthetic-identity rings at onboarding. Settings come from RINGWATCH_* environment variables."""


for module in (cli_data, cli_generate, cli_db, cli_ingest, cli_faces, cli_models, cli_serve):
    module.register(app)

if __name__ == "__main__":
    app()
