"""Shared by the ingest, query and export tests: small generated input files and graph snapshots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graph.settings import Settings
from graph.store.bolt import GraphStore
from graph.synth.dataset import generate

KEY = "test-key-0123456789abcdef0123456789"
THRESHOLD = 0.45  # the generator's genuine pairs sit near 0.69, impostors near 0.0


def ingest_settings(data_dir: Path, batch_size: int = 25, **extra) -> Settings:
    return Settings(
        data_dir=data_dir,
        pseudonym_key=KEY,
        same_face_threshold=THRESHOLD,
        batch_size=batch_size,
        **extra,
    )


def applications(n: int, seed: int = 3) -> pd.DataFrame:
    apps, _ = generate(n, seed=seed)
    return apps


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def snapshot(store: GraphStore) -> tuple[list, list]:
    """Every node and relationship with all its properties, in a canonical order."""
    nodes = store.read("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
    rels = store.read(
        "MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS type, b.id AS b, properties(r) AS props"
    )
    node_keys = sorted(
        (sorted(n["labels"])[0], n["props"]["id"], tuple(sorted((k, repr(v)) for k, v in n["props"].items())))
        for n in nodes
    )
    rel_keys = sorted(
        (r["type"], r["a"], r["b"], tuple(sorted((k, repr(v)) for k, v in (r["props"] or {}).items())))
        for r in rels
    )
    return node_keys, rel_keys


def counts(store: GraphStore) -> dict[str, int]:
    out = {}
    for row in store.read("MATCH (n) RETURN labels(n)[0] AS label, count(n) AS n"):
        out[row["label"]] = row["n"]
    for row in store.read("MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS n"):
        out[row["type"]] = row["n"]
    return out
