"""The managed embedded ArcadeDB: start, already-running, logs, stop, restart, crash recovery, and the CLI.

Each test here starts its own real server in its own data directory (not the session one), because
stopping and killing it is the point.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from api.cli.main import app
from graph.settings import Settings
from graph.store import arcade
from graph.store.bolt import GraphStore, StoreError


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_arcade_settings):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the server must not write ./log here
    settings = make_arcade_settings(tmp_path / "data")
    yield settings
    arcade.stop(settings, timeout=10)


def test_lifecycle_already_running_logs_restart_and_crash(own_server: Settings) -> None:
    settings = own_server
    assert not arcade.status(settings).running

    first = arcade.start(settings, owner_pid=os.getpid())
    assert first.running and not first.already_running
    again = arcade.start(settings, owner_pid=os.getpid())
    assert again.running and again.already_running and again.pid == first.pid
    assert "already running" in again.message
    assert arcade.status(settings).pid == first.pid

    # logs under the data directory, none in the working directory
    assert list((settings.store_dir / "log").glob("arcadedb.log*"))
    assert not Path("log").exists()

    with GraphStore.connect(settings, start_local=False) as store:
        store.ensure_schema()
        store.write("CREATE (:Account {id: 'survivor'})")

    stopped = arcade.stop(settings)
    assert not stopped.running and "clean shutdown" in stopped.message
    assert not psutil.pid_exists(first.pid)
    assert not arcade.status(settings).running
    assert "not running" in arcade.stop(settings).message  # stopping twice is fine

    with GraphStore.connect(settings, start_local=True) as store:  # starts it again
        assert store.read("MATCH (a:Account) RETURN a.id AS id") == [{"id": "survivor"}]
        store.write_batches(
            "UNWIND $rows AS row CREATE (:Account {id: row.id})", [{"id": f"k{i}"} for i in range(50)]
        )

    # committed data survives kill -9; the stale pid file left behind does not block the next start
    crashed = arcade.status(settings).pid
    os.kill(crashed, signal.SIGKILL)
    psutil.Process(crashed).wait(10)
    assert not arcade.status(settings).running
    owner = subprocess.Popen(["sleep", "120"])
    try:
        again = arcade.start(settings, owner_pid=owner.pid)
        assert again.running and not again.already_running and again.pid != crashed
        with GraphStore.connect(settings, start_local=False) as store:
            assert store.read("MATCH (a:Account) RETURN count(a) AS c") == [{"c": 51}]
    finally:
        owner.kill()
        owner.wait()
    # the owner is gone, so the server stops itself (how a killed test session leaves nothing behind)
    psutil.Process(again.pid).wait(60)
    assert not arcade.status(settings).running


def test_a_server_just_spawned_is_not_taken_for_a_stranger(
    own_server: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between exec and setting up its arguments a new process shows an empty command line (2 in 300 spawns
    here, idle); ``start`` once took that for "exited", stopped the server it had just spawned and failed a
    CI run with an empty log. The race is made certain here: the first reads come back empty."""
    real = psutil.Process.cmdline
    empty_reads = iter(range(3))

    def cmdline(proc: psutil.Process) -> list[str]:
        return [] if next(empty_reads, None) is not None else real(proc)

    monkeypatch.setattr(psutil.Process, "cmdline", cmdline)
    started = arcade.start(own_server, owner_pid=os.getpid())
    assert started.running and psutil.pid_exists(started.pid)


@pytest.mark.parametrize(
    ("code", "said"),
    [("import sys; sys.exit(3)", "exit code 3"), ("import os; os.kill(os.getpid(), 9)", "killed by SIGKILL")],
)
def test_a_server_that_dies_at_start_up_says_how(tmp_path: Path, make_arcade_settings, code, said) -> None:
    child = subprocess.Popen([sys.executable, "-c", code])
    child.wait(30)
    status = arcade._wait_ready(make_arcade_settings(tmp_path), child.pid, 5, child)
    assert not status.running
    assert status.message == f"process {child.pid} exited during start-up ({said})"


def test_start_refuses_a_port_taken_by_another_process(tmp_path: Path, make_arcade_settings) -> None:
    settings = make_arcade_settings(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.arcadedb_bolt_port))
        squatter.listen()
        with pytest.raises(arcade.ArcadeError, match="already in use"):
            arcade.start(settings)


def test_connect_without_a_running_server_says_how_to_start_one(tmp_path: Path, make_arcade_settings) -> None:
    with pytest.raises(StoreError, match="ringwatch db start"):
        GraphStore.connect(make_arcade_settings(tmp_path), start_local=False)


def test_a_wrong_password_is_a_clear_error(arcade_settings: Settings) -> None:
    wrong = arcade_settings.model_copy(update={"arcadedb_password": SecretStr("not-the-password")})
    with pytest.raises(StoreError, match="authentication .* failed .*root password"):
        GraphStore.connect(wrong, start_local=False)


def test_cli_db_start_status_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_arcade_settings
) -> None:
    settings = make_arcade_settings(tmp_path)
    env = {
        "RINGWATCH_DATA_DIR": str(settings.data_dir),
        "RINGWATCH_ARCADEDB_BOLT_PORT": str(settings.arcadedb_bolt_port),
        "RINGWATCH_ARCADEDB_HTTP_PORT": str(settings.arcadedb_http_port),
        "RINGWATCH_ARCADEDB_HEAP": settings.arcadedb_heap,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RINGWATCH_NEO4J_URI", raising=False)
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["db", "status"]).exit_code == 3
        started = runner.invoke(app, ["db", "start"])
        assert started.exit_code == 0, started.output
        again = runner.invoke(app, ["db", "start", "--json"])
        assert again.exit_code == 0 and '"already_running": true' in again.stdout
        assert runner.invoke(app, ["db", "status"]).exit_code == 0
        stopped = runner.invoke(app, ["db", "stop"])
        assert stopped.exit_code == 0 and "stopped" in stopped.output
        assert runner.invoke(app, ["db", "status"]).exit_code == 3
    finally:
        arcade.stop(settings, timeout=10)
