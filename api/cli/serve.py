"""``ringwatch serve`` (the HTTP API under uvicorn) and ``ringwatch keys hash`` (API key provisioning)."""

from __future__ import annotations

import sys

import typer

from api.http.auth import Role, hash_key, new_key
from api.http.batcher import one_thread_pools

keys_app = typer.Typer(
    help="Create API keys. Only their SHA-256 hashes go into configuration.", no_args_is_help=True
)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 to expose it."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(
        1,
        min=1,
        max=1,
        help="Worker processes. Only 1: the face index lives in the process and has one writer.",
    ),
    log_level: str = typer.Option(None, help="Log level (default: RINGWATCH_LOG_LEVEL)."),
) -> None:
    """Serve the HTTP API (decisions, face search, investigator routes, /metrics, /healthz, /readyz).

    Settings come from RINGWATCH_* environment variables, API keys from RINGWATCH_API_KEYS (a JSON list of
    'role:sha256hex' entries; create them with `ringwatch keys hash`). SIGTERM or Ctrl-C shuts down
    gracefully: the running job finishes, the face index is saved, the store is closed.
    """
    import uvicorn

    from api.http import logs
    from api.http.app import create_app

    settings = ctx.obj
    logs.configure(log_level or settings.log_level)
    one_thread_pools()  # the main thread's pools; the decision worker limits its own
    if not settings.api_keys:
        typer.echo("warning: RINGWATCH_API_KEYS is empty; every /v1 route will answer 401", err=True)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@keys_app.command("hash")
def keys_hash(
    role: Role = typer.Option(Role.investigator, help="Role the key grants (admin implies all)."),
    stdin: bool = typer.Option(
        False, "--stdin", help="Hash a key read from standard input instead of a new one."
    ),
) -> None:
    """Print a new random API key (shown once) and the 'role:sha256hex' entry for RINGWATCH_API_KEYS."""
    key = sys.stdin.readline().strip() if stdin else new_key()
    if not key:
        raise typer.BadParameter("no key on standard input")
    if not stdin:
        typer.echo(f"key:   {key}")
    typer.echo(f"entry: {role.value}:{hash_key(key)}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
