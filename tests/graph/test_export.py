"""Export round-trip: what ingest wrote, export reads back as the same tables the in-memory road builds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.export import export_heterodata, export_tables
from graph.pipeline import tables_from_file
from graph.tables import ACCOUNT_COLUMNS

from .ingest_helpers import applications, ingest_settings, write_parquet


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
    from graph.ingest import ingest_files

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
    from graph.ingest import ingest_files

    ingest_files([write_parquet(applications(40, seed=2), tmp_path / "a.parquet")], settings, clean_store,
                 progress=False)  # fmt: skip
    data, maps = export_heterodata(clean_store)
    assert data["account"].num_nodes == 40
    assert len(maps.accounts) == 40
