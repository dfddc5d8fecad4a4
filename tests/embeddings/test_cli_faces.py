"""``ringwatch faces ...`` end to end through typer, on small generated files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from api.cli.main import app
from embeddings.calibrate import load_threshold
from embeddings.index import FaceIndex

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RINGWATCH_DATA_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def labelled(n_ids: int = 150, per_id: int = 4, dim: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, dim))
    labels = np.repeat(np.arange(n_ids), per_id)
    return (centres[labels] + 0.5 * rng.standard_normal((len(labels), dim))).astype(np.float32), labels


def test_calibrate_from_npz_writes_the_settings_file(tmp_path: Path, data_dir: Path):
    x, labels = labelled()
    np.savez(tmp_path / "faces.npz", embeddings=x, identity=labels.astype(str))
    result = runner.invoke(app, ["faces", "calibrate", str(tmp_path / "faces.npz"), "--gallery-size", "5000"])
    assert result.exit_code == 0, result.output
    path = data_dir / "face_calibration.json"
    assert path.exists() and path.with_suffix(".png").exists()
    assert json.loads(path.read_text())["gallery_size"] == 5000
    assert -1 < load_threshold(path) < 1


def test_calibrate_from_parquet_with_named_columns(tmp_path: Path, data_dir: Path):
    x, labels = labelled(seed=1)
    pd.DataFrame({"face_embedding": list(x), "person": labels}).to_parquet(tmp_path / "faces.parquet")
    out = tmp_path / "cal.json"
    args = ["faces", "calibrate", str(tmp_path / "faces.parquet"), "--embeddings-col", "face_embedding"]
    result = runner.invoke(app, [*args, "--labels-col", "person", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_threshold(out) > 0


def _unboxed(text: str) -> str:
    """The CLI's error box wraps long paths at any character: compare the text without layout."""
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)


def test_calibrate_bad_input_is_a_clear_error(tmp_path: Path, data_dir: Path):
    np.savez(tmp_path / "faces.npz", vectors=np.zeros((3, 4)))
    result = runner.invoke(app, ["faces", "calibrate", str(tmp_path / "faces.npz")])
    assert result.exit_code == 2 and "noarray(s)" in _unboxed(result.output)
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    result = runner.invoke(app, ["faces", "calibrate", str(deep / "absent.npz")])
    assert result.exit_code == 2 and "doesnotexist" in _unboxed(result.output)


def test_info_and_rebuild(tmp_path: Path, data_dir: Path):
    x, _ = labelled()
    FaceIndex.build([f"app-{i}" for i in range(len(x))], x).save(data_dir / "faces.index")
    result = runner.invoke(app, ["faces", "info"])
    assert result.exit_code == 0, result.output
    header = json.loads(result.stdout)
    assert header["count"] == len(x) and header["dim"] == 32 and header["metric"] == "cosine"
    result = runner.invoke(app, ["faces", "rebuild"])
    assert result.exit_code == 0, result.output
    assert len(FaceIndex.load(data_dir / "faces.index")) == len(x)
    (tmp_path / "junk.index").write_bytes(b"junk")
    result = runner.invoke(app, ["faces", "info", str(tmp_path / "junk.index")])
    assert result.exit_code == 2 and "not a ringwatch face index" in " ".join(result.output.split())
