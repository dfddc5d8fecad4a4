"""The child process that owns the embedded ArcadeDB (spawned by :mod:`graph.store.arcade`, not run by hand).

ArcadeDB writes its logs into ``./log`` of the current directory and only one process may open its data
directory, so the server lives in its own process whose working directory is the data directory. Everyone
else (the API, batch jobs, tests) talks to it over Bolt, exactly as they would to Neo4j.

Protocol with the parent: the root password arrives in ``RINGWATCH_ARCADEDB_ROOT_PASSWORD`` (never on the
command line, where ``ps`` shows it); once Bolt is up and the database exists, ``server.json`` is written
with ``state: ready``. SIGTERM or SIGINT closes the server cleanly, then removes the pid and status files.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

PASSWORD_ENV = "RINGWATCH_ARCADEDB_ROOT_PASSWORD"
PID_FILE = "server.pid"
STATUS_FILE = "server.json"


def write_status(path: Path, **fields: object) -> None:
    """Write atomically, so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fields))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--home", type=Path, required=True, help="data directory (also the working directory)"
    )
    parser.add_argument("--database", required=True)
    parser.add_argument("--bolt-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--owner-pid", type=int, default=None, help="stop when this process is gone")
    args = parser.parse_args(argv)

    home = args.home.resolve()
    os.chdir(home)  # ArcadeDB's ./log lands here
    status_path = home / STATUS_FILE
    pid_path = home / PID_FILE
    stop = threading.Event()
    common = {
        "pid": os.getpid(),
        "bolt_port": args.bolt_port,
        "http_port": args.http_port,
        "host": args.host,
        "database": args.database,
    }
    write_status(status_path, state="starting", **common)

    from arcadedb_embedded.server import ArcadeDBServer

    server = ArcadeDBServer(
        root_path=str(home / "databases"),
        root_password=os.environ.get(PASSWORD_ENV) or None,
        config={
            "host": args.host,
            "http_port": args.http_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": args.bolt_port,
        },
        # -Xrs: the JVM leaves SIGTERM/SIGINT to the handler below, which closes the server cleanly.
        # ExplicitGCInvokesConcurrent: ArcadeDB's System.gc() calls otherwise stop the world every few seconds
        # under write load, and those pauses were most of the real-time decisions' p99 (API benchmark).
        jvm_kwargs={"heap_size": args.heap, "jvm_args": ["-Xrs", "-XX:+ExplicitGCInvokesConcurrent"]},
    )
    # Handlers go in before start(): a SIGTERM during start-up must still stop the server.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server.start()
        server.create_database(args.database)  # opens it when it already exists
    except Exception as exc:
        write_status(status_path, state="failed", error=str(exc), **common)
        print(f"ArcadeDB failed to start: {exc}", file=sys.stderr, flush=True)
        server.stop()
        return 1
    write_status(status_path, state="ready", started_at=time.time(), **common)
    print(f"ArcadeDB ready: bolt {args.host}:{args.bolt_port}, pid {os.getpid()}", flush=True)

    while not stop.wait(0.5):
        if args.owner_pid is not None and not _alive(args.owner_pid):
            print(f"owner process {args.owner_pid} is gone", flush=True)
            break
    print("stopping ArcadeDB", flush=True)
    server.stop()
    for path in (status_path, pid_path):
        path.unlink(missing_ok=True)
    print("ArcadeDB stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
