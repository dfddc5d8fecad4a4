"""``ringwatch ingest`` end to end through the real CLI, against the session's ArcadeDB."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.cli.main import app

from ..ingest_helpers import KEY, applications, write_parquet


@pytest.fixture
def env(clean_store, arcade_settings, monkeypatch):
    if clean_store.dialect != "arcadedb":
        pytest.skip("the CLI test points the command at the session's embedded server")
    s = arcade_settings
    for name, value in {
        "DATA_DIR": str(s.data_dir),
        "ARCADEDB_BOLT_PORT": str(s.arcadedb_bolt_port),
        "ARCADEDB_HTTP_PORT": str(s.arcadedb_http_port),
        "ARCADEDB_HOST": s.arcadedb_host,
        "ARCADEDB_DATABASE": s.arcadedb_database,
        "PSEUDONYM_KEY": KEY,
    }.items():
        monkeypatch.setenv(f"RINGWATCH_{name}", value)
    monkeypatch.delenv("RINGWATCH_NEO4J_URI", raising=False)
    monkeypatch.delenv("RINGWATCH_SAME_FACE_THRESHOLD", raising=False)
    (s.data_dir / "face_calibration.json").unlink(missing_ok=True)
    return clean_store


def test_ingest_command_loads_reports_rejects_and_is_idempotent(env, tmp_path):
    apps = applications(30, seed=8)
    apps.loc[3, "date_of_birth"] = "yesterday"
    path = write_parquet(apps, tmp_path / "apps.parquet")
    runner = CliRunner()

    first = runner.invoke(app, ["ingest", str(path), "--threshold", "0.45", "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "accepted                 29" in first.output and "rejected                  1" in first.output
    assert "rejected" in first.output and "rejects" in first.output
    assert env.read("MATCH (a:Account) RETURN count(a) AS n")[0]["n"] == 29

    again = runner.invoke(app, ["ingest", str(path), "--threshold", "0.45", "--no-progress"])
    assert again.exit_code == 0 and "unchanged                29" in again.output


def test_ingest_command_fatal_errors_exit_2(env, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.parquet"), "--threshold", "0.5"])
    assert missing.exit_code == 2 and "no such file" in missing.output
    path = write_parquet(applications(5, seed=1), tmp_path / "a.parquet")
    no_threshold = runner.invoke(app, ["ingest", str(path)])
    assert no_threshold.exit_code == 2 and "ringwatch faces calibrate" in no_threshold.output
