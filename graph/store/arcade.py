"""The managed embedded ArcadeDB: start, stop and inspect the one local server that owns the data directory.

Only one process may open ArcadeDB's data directory, so ringwatch runs the server as a detached child
(:mod:`graph.store.arcade_server`) and every other process connects to it over Bolt. The child's working directory
is the data directory, which is what puts ArcadeDB's hard-wired ``./log`` there. A pid file and a status
file written by the child let any later process find it; a file lock makes concurrent ``start`` calls safe.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from graph.settings import Settings
from graph.store.arcade_server import PASSWORD_ENV, PID_FILE, STATUS_FILE

OUTPUT_FILE = "server.out"
LOCK_FILE = "start.lock"
_MODULE = "graph.store.arcade_server"


class ArcadeError(RuntimeError):
    """The embedded server could not be started or stopped; the message says why and where to look."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    message: str
    data_dir: Path
    pid: int | None = None
    bolt_port: int | None = None
    http_port: int | None = None
    host: str = "localhost"
    database: str | None = None
    already_running: bool = False

    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"


def status(settings: Settings) -> ServerStatus:
    """Running means: the child process is alive, says it is ready, and its Bolt port answers."""
    home = settings.store_dir.resolve()
    info = _read_json(home / STATUS_FILE)
    pid = _read_pid(home / PID_FILE) or info.get("pid")
    base = {
        "data_dir": home,
        "pid": pid,
        "bolt_port": info.get("bolt_port", settings.arcadedb_bolt_port),
        "http_port": info.get("http_port", settings.arcadedb_http_port),
        "host": info.get("host", settings.arcadedb_host),
        "database": info.get("database", settings.arcadedb_database),
    }
    if pid is None or not _is_our_server(pid):
        return ServerStatus(running=False, message=f"not running (data directory {home})", **base)
    state = info.get("state", "unknown")
    if state == "ready" and _port_open(base["host"], base["bolt_port"]):
        return ServerStatus(
            running=True, message=f"running, pid {pid}, Bolt on {base['host']}:{base['bolt_port']}", **base
        )
    return ServerStatus(running=False, message=f"process {pid} alive but not ready (state {state})", **base)


def start(settings: Settings, timeout: float | None = None, owner_pid: int | None = None) -> ServerStatus:
    """Start the server, or report the one already running; returns once Bolt answers.

    ``owner_pid`` ties the server's life to that process (test sessions): it stops itself when the owner
    is gone, so a killed test run leaves no server behind.
    """
    home = settings.store_dir.resolve()
    home.mkdir(parents=True, exist_ok=True)
    timeout = settings.arcadedb_start_timeout if timeout is None else timeout
    with _start_lock(home):
        current = status(settings)
        if current.running:
            return replace(current, already_running=True, message=f"already {current.message}")
        if current.pid is not None and _is_our_server(current.pid):
            # a child that never became ready (or is still starting after a timed-out start): wait, then give up
            waited = _wait_ready(settings, current.pid, timeout)
            if waited.running:
                return replace(waited, already_running=True, message=f"already {waited.message}")
            _terminate(current.pid, settings.arcadedb_stop_timeout)
        _clear_files(home)
        for port in (settings.arcadedb_bolt_port, settings.arcadedb_http_port):
            if _port_open(settings.arcadedb_host, port):
                raise ArcadeError(
                    f"port {port} on {settings.arcadedb_host} is already in use by another process; "
                    "set RINGWATCH_ARCADEDB_BOLT_PORT / RINGWATCH_ARCADEDB_HTTP_PORT to free ports"
                )
        child = _spawn(settings, home, owner_pid)
        pid = child.pid
        (home / PID_FILE).write_text(str(pid))
        result = _wait_ready(settings, pid, timeout, child)
        if not result.running:
            _terminate(pid, settings.arcadedb_stop_timeout)
            _clear_files(home)
            raise ArcadeError(f"ArcadeDB did not start: {result.message}\n{_tail(home / OUTPUT_FILE)}")
        return replace(result, message=f"started: {result.message}")


def stop(settings: Settings, timeout: float | None = None) -> ServerStatus:
    """SIGTERM lets the child close the server cleanly; SIGKILL only if it has not gone after ``timeout``."""
    home = settings.store_dir.resolve()
    timeout = settings.arcadedb_stop_timeout if timeout is None else timeout
    current = status(settings)
    if current.pid is None or not _is_our_server(current.pid):
        _clear_files(home)
        return replace(current, running=False, message=f"not running (data directory {home})")
    how = _terminate(current.pid, timeout)
    _clear_files(home)
    return replace(current, running=False, message=f"stopped pid {current.pid} ({how})")


def _spawn(settings: Settings, home: Path, owner_pid: int | None) -> subprocess.Popen:
    env = dict(os.environ)
    env[PASSWORD_ENV] = settings.arcadedb_password.get_secret_value()
    cmd = [
        sys.executable,
        "-P",  # the data directory is the working directory: never import from it
        "-m",
        _MODULE,
        "--home", str(home),
        "--database", settings.arcadedb_database,
        "--bolt-port", str(settings.arcadedb_bolt_port),
        "--http-port", str(settings.arcadedb_http_port),
        "--host", settings.arcadedb_host,
        "--heap", settings.arcadedb_heap,
    ]  # fmt: skip
    if owner_pid is not None:
        cmd += ["--owner-pid", str(owner_pid)]
    with open(home / OUTPUT_FILE, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: outlives the CLI and ignores its Ctrl-C
        )
    return proc


def _wait_ready(
    settings: Settings, pid: int, timeout: float, child: subprocess.Popen | None = None
) -> ServerStatus:
    """``child``: the process just spawned, whose exit code then goes into the message."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(settings)
        if current.running:
            return current
        gone = child.poll() is not None if child is not None else not _is_our_server(pid)
        if gone:
            how = f" ({_exit_text(child.returncode)})" if child is not None else ""
            return replace(current, running=False, message=f"process {pid} exited during start-up{how}")
        info = _read_json(settings.store_dir.resolve() / STATUS_FILE)
        if info.get("state") == "failed":
            return replace(current, running=False, message=info.get("error", "start-up failed"))
        if time.monotonic() > deadline:
            return replace(current, running=False, message=f"not ready after {timeout:.0f} s")
        time.sleep(0.2)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _terminate(pid: int, timeout: float) -> str:
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
        return "clean shutdown"
    except psutil.NoSuchProcess:
        return "already gone"
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return f"killed after {timeout:.0f} s"


def _is_our_server(pid: int) -> bool:
    """Guards against a recycled pid: the process must be our server module, not whatever got the number.

    A process that has just been spawned shows an empty command line until exec has set up its arguments,
    a window that grows under load: taking that as "not ours" made ``start`` stop the server it had just
    spawned (a CI run saw "exited during start-up" with an empty log). An empty command line is asked
    again before the answer is no."""
    for _ in range(20):
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        if cmdline:
            return _MODULE in cmdline
        time.sleep(0.05)
    return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    with open(home / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clear_files(home: Path) -> None:
    for name in (PID_FILE, STATUS_FILE):
        (home / name).unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no output in {path})"
