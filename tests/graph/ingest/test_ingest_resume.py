"""Resumability: a real child process running ``ingest_files`` is killed with SIGKILL part-way through, and a
re-run must leave exactly the graph (and face index) of an uninterrupted run. On both servers (the store
fixture's): the Neo4j run skips where RINGWATCH_NEO4J_URI is unset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from embeddings.index import FaceIndex
from graph.ingest.load import ingest_files
from graph.settings import Settings
from graph.store.bolt import GraphStore

from ..ingest_helpers import KEY, THRESHOLD, applications, snapshot, write_parquet

ROOT = Path(__file__).resolve().parents[3]

# The child announces every committed write and then pauses, so the parent can kill it at a known point.
CHILD = """
import json, sys, time
from graph.ingest.load import ingest_files
from graph.settings import Settings
from graph.store.bolt import GraphStore
from graph.store.bolt import GraphStore
from neo4j import GraphDatabase

settings = Settings(**json.loads(sys.argv[1]))
uri, user, password, database, dialect = json.loads(sys.argv[3])
store = GraphStore(GraphDatabase.driver(uri, auth=(user, password)), database, dialect)
for name in ("write", "write_batches"):
    real = getattr(store, name)
    def announced(*a, _real=real, **k):
        out = _real(*a, **k)
        print("WROTE", flush=True)
        time.sleep(0.3)
        return out
    setattr(store, name, announced)
ingest_files([sys.argv[2]], settings, store, progress=False)
print("DONE", flush=True)
"""


def _child_settings(arcade: Settings, data_dir: Path) -> dict:
    return {
        "data_dir": str(data_dir),
        "pseudonym_key": KEY,
        "same_face_threshold": THRESHOLD,
        "batch_size": 10,
        "neo4j_uri": None,
        "arcadedb_bolt_port": arcade.arcadedb_bolt_port,
        "arcadedb_http_port": arcade.arcadedb_http_port,
        "arcadedb_host": arcade.arcadedb_host,
        "arcadedb_database": arcade.arcadedb_database,
        "arcadedb_password": arcade.arcadedb_password.get_secret_value(),
    }


def _bolt(store: GraphStore, arcade: Settings) -> list:
    """How the child reaches the test's store (its data dir is elsewhere, so no auto-discovery): the
    session's ArcadeDB, or the Neo4j that RINGWATCH_NEO4J_* configure (as the store fixture reads them)."""
    if store.dialect == "neo4j":
        neo4j = Settings()
        user, password = neo4j.neo4j_user, neo4j.neo4j_password.get_secret_value()
        return [neo4j.neo4j_uri, user, password, store.database, "neo4j"]
    return [
        f"bolt://{arcade.arcadedb_host}:{arcade.arcadedb_bolt_port}",
        arcade.arcadedb_user,
        arcade.arcadedb_password.get_secret_value(),
        arcade.arcadedb_database,
        "arcadedb",
    ]


def _kill_after(writes: int, settings: dict, path: Path, bolt: list) -> int:
    """Run the child, SIGKILL it after ``writes`` committed writes; returns how many it had announced."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(settings), str(path), json.dumps(bolt)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    seen = 0
    try:
        for line in child.stdout:
            if line.startswith("WROTE"):
                seen += 1
                if seen >= writes:
                    os.kill(child.pid, signal.SIGKILL)
                    break
            if line.startswith("DONE"):
                break
    finally:
        child.wait(timeout=120)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    return seen


@pytest.mark.parametrize("writes", [2, 5, 9])
def test_rerun_after_kill9_ends_with_the_uninterrupted_graph(clean_store, arcade_settings, tmp_path, writes):
    apps = applications(50, seed=5)
    # a repeated face in every segment, some across segments, so every kill point splits face links
    for i in range(3, len(apps), 4):
        apps.at[i, "face_embedding"] = apps.at[i - 3, "face_embedding"]
    path = write_parquet(apps, tmp_path / "apps.parquet")

    reference_dir = tmp_path / "reference"
    ref_settings = Settings(**_child_settings(arcade_settings, reference_dir))
    ingest_files([path], ref_settings, clean_store, progress=False)
    reference = snapshot(clean_store)
    reference_faces = sorted(FaceIndex.load(ref_settings.face_index_path).ids())
    clean_store.delete_all()

    killed_dir = tmp_path / "killed"
    child = _child_settings(arcade_settings, killed_dir)
    _kill_after(writes, child, path, _bolt(clean_store, arcade_settings))
    partial = snapshot(clean_store)
    assert partial != reference, "the kill should have left a partial graph"

    rerun = ingest_files([path], Settings(**child), clean_store, progress=False)
    assert snapshot(clean_store) == reference
    assert sorted(FaceIndex.load(Settings(**child).face_index_path).ids()) == reference_faces
    assert rerun.accepted == len(apps)
