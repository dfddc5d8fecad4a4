"""Serving details that decide latency: the decision worker's thread pools, the frozen heap, the face index
type the server is asked to serve, and the per-stage timings it reports."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info
from typer.testing import CliRunner

from api.cli.main import app
from api.http.batcher import DecisionBatcher
from api.http.scorer import settle_heap
from embeddings.index import FaceIndex


def test_the_decision_worker_runs_one_thread_pools() -> None:
    """OpenMP's thread count is per thread: set only in the main thread, the worker's predict and face
    search used every core and spun on a busy machine (passes of 3 took up to 0.9 s to score)."""
    seen: dict[str, int] = {}

    def process(apps):
        for pool in threadpool_info():
            seen[pool["internal_api"]] = max(seen.get(pool["internal_api"], 0), pool["num_threads"])
        return {a.application_id: None for a in apps}

    batcher = DecisionBatcher(process)
    try:
        batcher.submit([]).result(timeout=30)
    finally:
        batcher.stop()
    assert seen and all(n == 1 for n in seen.values()), seen


def test_settle_heap_freezes_what_is_alive() -> None:
    keep = [{"k": i} for i in range(1000)]
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RINGWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RINGWATCH_FACE_INDEX_TYPE", raising=False)
    return tmp_path


def test_faces_rebuild_converts_to_the_type_asked_for(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    ids = [f"app-{i}" for i in range(len(x))]
    FaceIndex.build(ids, x, index_type="flat").save(data_dir / "faces.index")
    runner = CliRunner()
    result = runner.invoke(app, ["faces", "rebuild", "--type", "hnsw"])
    assert result.exit_code == 0, result.output
    index = FaceIndex.load(data_dir / "faces.index")
    assert index.index_type == "hnsw" and index.policy == "hnsw" and len(index) == len(x)
    assert index.search(x[7], k=1)[0][0][0] == "app-7"
    # the setting is the default for --type
    monkeypatch.setenv("RINGWATCH_FACE_INDEX_TYPE", "flat")
    result = runner.invoke(app, ["faces", "rebuild"])
    assert result.exit_code == 0, result.output
    assert FaceIndex.load(data_dir / "faces.index").index_type == "flat"
    result = runner.invoke(app, ["faces", "rebuild", "--type", "annoy"])
    assert result.exit_code != 0
    assert FaceIndex.load(data_dir / "faces.index").header()["count"] == len(x)
