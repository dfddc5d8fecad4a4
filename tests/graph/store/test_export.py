"""Export round-trip: what ingest wrote, export reads back as the same tables the in-memory road builds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.ingest.pipeline import tables_from_file
from graph.store.export import export_heterodata, export_tables
from graph.tables import ACCOUNT_COLUMNS

from ..ingest_helpers import applications, ingest_settings, write_parquet


def _canonical(tables) -> tuple[pd.DataFrame, set, dict]:
    ids = tables.accounts["id"].to_numpy(dtype=object)
    acc = tables.accounts.astype({"id": object}).set_index("id").sort_index()
    links = {(ids[a], r, s) for a, r, s in tables.links.itertuples(index=False)}
    faces = {
        tuple(sorted((ids[a], ids[b]))): float(s) for a, b, s in tables.same_face.itertuples(index=False)
    }
    return acc, links, faces


def test_export_matches_the_in_memory_tables(clean_store, tmp_path):
    apps = applications(80, seed=11)
    apps["label"] = np.where(np.arange(len(apps)) % 3 == 0, 1.0, 0.0)
    apps.loc[5, "label"] = None
    settings = ingest_settings(tmp_path)
    path = write_parquet(apps, tmp_path / "apps.parquet")
    from graph.ingest.load import ingest_files

    ingest_files([path], settings, clean_store, progress=False)
    exported = export_tables(clean_store, page=7)  # many small pages: exercises the windows
    expected = tables_from_file(path, settings)

    assert list(exported.accounts.columns) == list(ACCOUNT_COLUMNS)
    assert exported.accounts["id"].is_unique and exported.n_accounts == len(apps)
    got_acc, got_links, got_faces = _canonical(exported)
    want_acc, want_links, want_faces = _canonical(expected)
    pd.testing.assert_frame_equal(got_acc, want_acc[got_acc.columns], check_dtype=False)
    assert got_links == want_links
    assert got_faces.keys() == want_faces.keys() and want_faces
    for k, v in want_faces.items():
        assert abs(got_faces[k] - v) < 1e-5
    sf = exported.same_face
    assert (sf["src"] < sf["dst"]).all()
    assert np.isnan(got_acc.loc[apps.loc[5, "application_id"], "label"])


def test_export_of_an_empty_store(clean_store):
    t = export_tables(clean_store)
    assert t.n_accounts == 0 and len(t.links) == 0 and len(t.same_face) == 0


def test_export_heterodata_chains_the_converter(clean_store, tmp_path):
    settings = ingest_settings(tmp_path)
    from graph.ingest.load import ingest_files

    ingest_files([write_parquet(applications(40, seed=2), tmp_path / "a.parquet")], settings, clean_store,
                 progress=False)  # fmt: skip
    data, maps = export_heterodata(clean_store)
    assert data["account"].num_nodes == 40
    assert len(maps.accounts) == 40


def test_export_packing_edge_cases(clean_store):
    """Links travel packed as one string per account: rings are dropped, SAME_FACE stays out of the links,
    an id holding a space falls back to per-item splitting, accounts without links keep their row, and a stub
    account without ``created_at`` is left out."""
    clean_store.write(
        "UNWIND $rows AS row CREATE (a:Account {id: row.id, created_at: row.t, label: row.label})",
        rows=[
            {"id": f"acc {i}", "t": 1_700_000_000_000 + i, "label": None if i % 2 else 1.0} for i in range(5)
        ],
    )
    clean_store.write(
        "MATCH (a:Account {id: 'acc 0'}), (b:Account {id: 'acc 1'}) "
        "CREATE (d:Device {id: 'dev one'}), (p:Phone {id: 'p1'}), (r:Ring {id: 'ring-x'}) "
        "CREATE (a)-[:USED_DEVICE]->(d), (b)-[:USED_DEVICE]->(d), (a)-[:HAS_PHONE]->(p), "
        "(a)-[:MEMBER_OF]->(r), (a)-[:SAME_FACE {similarity: 0.9}]->(b)"
    )
    clean_store.write("CREATE (:Account {id: 'stub without created_at'})")
    t = export_tables(clean_store, page=2)
    ids = t.accounts["id"].tolist()
    assert sorted(ids) == [f"acc {i}" for i in range(5)]
    links = {(ids[a], r, s) for a, r, s in t.links.itertuples(index=False)}
    assert links == {
        ("acc 0", "USED_DEVICE", "dev one"),
        ("acc 1", "USED_DEVICE", "dev one"),
        ("acc 0", "HAS_PHONE", "p1"),
    }
    assert [(ids[a], ids[b]) for a, b in zip(t.same_face.src, t.same_face.dst, strict=True)] == [
        ("acc 0", "acc 1")
    ]
    assert abs(float(t.same_face.similarity.iloc[0]) - 0.9) < 1e-6
    labels = dict(zip(ids, t.accounts["label"], strict=True))
    assert labels["acc 0"] == 1.0 and np.isnan(labels["acc 1"])
