"""``ringwatch generate`` end to end through the real typer app."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from api.cli.main import app

runner = CliRunner()


def test_generate_writes_files_and_prints_summary(tmp_path):
    out = tmp_path / "gen"
    result = runner.invoke(
        app,
        ["generate", "--applications", "1200", "--seed", "4", "--out", str(out), "--ring-fraction", "0.04",
         "--face-dim", "128", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 1200 and summary["rings"] > 0
    assert summary["seconds"] > 0 and summary["peak_rss_mb"] > 0
    apps = pq.read_table(out / "applications.parquet")
    assert apps.num_rows == 1200 and "label" not in apps.column_names
    assert len(apps["face_embedding"].drop_null()[0]) == 128
    truth = pq.read_table(out / "truth.parquet").to_pandas()
    assert abs(truth["label"].mean() - 0.04) < 0.01
    assert (out / "report.md").exists()


def test_generate_human_summary_and_mix(tmp_path):
    result = runner.invoke(
        app,
        ["generate", "-n", "800", "--out", str(tmp_path), "--ring-mix", "face_reuse=1,device_farm=1", "--no-report"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "peak memory" in result.output and "rings" in result.output
    styles = set(pq.read_table(tmp_path / "truth.parquet").to_pandas()["ring_style"].dropna())
    assert styles <= {"face_reuse", "device_farm"} and styles
    assert not (tmp_path / "report.md").exists()


def test_generate_rejects_bad_options(tmp_path):
    result = runner.invoke(app, ["generate", "-n", "100", "--out", str(tmp_path), "--ring-mix", "sybil=2"])
    assert result.exit_code != 0
    assert "unknown ring style" in result.output
    result = runner.invoke(app, ["generate", "-n", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0


def test_generate_help():
    result = runner.invoke(app, ["generate", "--help"])
    assert result.exit_code == 0
    assert "--applications" in result.output and "--ring-fraction" in result.output
