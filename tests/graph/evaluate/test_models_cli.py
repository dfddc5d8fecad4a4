"""``ringwatch train | score | evaluate`` on a file without the optional upstream scores, in memory (issue 16).

Such a file used to ingest fine and then stop ``train`` inside sklearn; and ``evaluate`` on truth rows that
were all training labels stopped inside matplotlib's precision-recall curve instead of saying so.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from graph.learn.splits import group_split, ring_groups
from graph.synth import RingConfig, SynthConfig, generate

KEY = "test-key-0123456789abcdef0123456789"
SCORES = ["liveness_score", "document_authenticity_score"]


def _flat(text: str) -> str:
    """Console output without the line wrapping of a narrow terminal."""
    return " ".join(text.split())


@pytest.fixture
def files(tmp_path, monkeypatch):
    for name, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "PSEUDONYM_KEY": KEY,
        "SAME_FACE_THRESHOLD": "0.45",
        "TORCH_THREADS": "1",
    }.items():
        monkeypatch.setenv(f"RINGWATCH_{name}", value)
    monkeypatch.delenv("RINGWATCH_NEO4J_URI", raising=False)
    apps, truth = generate(1200, seed=3, config=SynthConfig(rings=RingConfig(fraction=0.1, max_size=12)))
    held = group_split(ring_groups(truth["application_id"].to_numpy(), truth["ring_id"].to_numpy()), 0.3, 0)
    paths = {k: tmp_path / f"{k}.parquet" for k in ("apps", "labels", "held_out")}
    apps.drop(columns=SCORES).to_parquet(paths["apps"], index=False)
    truth[~held].to_parquet(paths["labels"], index=False)
    truth[held].to_parquet(paths["held_out"], index=False)
    return paths, int((~held).sum()), tmp_path


def test_train_score_evaluate_without_the_upstream_scores(files):
    paths, n_labels, tmp = files
    runner = CliRunner()
    apps = ["--applications", str(paths["apps"])]
    trained = runner.invoke(app, ["train", *apps, "--labels", str(paths["labels"]), "--epochs", "15"])
    assert trained.exit_code == 0, trained.output
    assert "trained without the optional inputs liveness_score, document_authenticity_score" in _flat(
        trained.output
    )
    models = tmp / "data" / "models"
    meta = json.loads((models / (models / "LATEST").read_text().strip() / "artifact.json").read_text())
    assert meta["inputs"]["absent"] == SCORES and meta["split"]["kind"] == "time"
    assert "liveness_score" in meta["inputs"]["all_nan_features"]

    scored = runner.invoke(app, ["score", *apps, "--out", str(tmp / "scores")])
    assert scored.exit_code == 0, scored.output

    report = runner.invoke(
        app, ["evaluate", *apps, "--truth", str(paths["held_out"]), "--out", str(tmp / "report")]
    )
    assert report.exit_code == 0, report.output
    text = _flat((tmp / "report" / "report.md").read_text())
    assert f"internal holdout: time split at {meta['split']['cut']}" in text
    assert "trained without the inputs liveness_score, document_authenticity_score" in text

    # every truth row was a training label: a clear message and the CLI's fatal exit code
    own = runner.invoke(app, ["evaluate", *apps, "--truth", str(paths["labels"]), "--out", str(tmp / "own")])
    assert own.exit_code == 2, own.output
    assert (
        f"error: nothing left to evaluate: all {n_labels} truth rows were training labels; pass a truth file "
        "with held-out rows"
    ) in _flat(own.output)
    assert not (tmp / "own").exists()


def test_train_split_option(files):
    paths, _, tmp = files
    runner = CliRunner()
    args = ["train", "--applications", str(paths["apps"]), "--labels", str(paths["labels"])]
    bad = runner.invoke(app, [*args, "--split", "weekly"])
    assert bad.exit_code == 2 and "unknown split 'weekly'; use one of time, random" in _flat(bad.output)
    rand = runner.invoke(app, [*args, "--split", "random", "--models", "rules,gbt"])
    assert rand.exit_code == 0, rand.output
    models = tmp / "data" / "models"
    meta = json.loads((models / (models / "LATEST").read_text().strip() / "artifact.json").read_text())
    assert meta["split"] == {"kind": "random", "seed": 0, "holdout_fraction": 0.25}
