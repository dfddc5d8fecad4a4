"""Ingest into a real ArcadeDB (the session fixture), with real FAISS and generated applications."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from embeddings.index import FaceIndex
from graph import schema
from graph.contract.prepare import prepare_file
from graph.ingest.load import (
    ThresholdMissing,
    decode_faces,
    ingest_files,
    ingest_records,
    journal_path,
    rebuild_face_index,
    same_face_threshold,
)
from graph.ingest.pipeline import face_pairs
from graph.settings import Settings

from ..ingest_helpers import applications, counts, ingest_settings, snapshot, write_parquet

N = 60


@pytest.fixture(scope="module")
def apps() -> pd.DataFrame:
    return applications(N, seed=3)


def test_ingest_builds_the_graph(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    path = write_parquet(apps, tmp_path / "apps.parquet")
    summary = ingest_files([path], settings, clean_store, progress=False)

    assert (summary.accepted, summary.rejected, summary.new_accounts) == (N, 0, N)
    c = counts(clean_store)
    assert c["Account"] == N
    batch = prepare_file(path, settings)
    for sig in schema.SIGNALS:
        present = batch.frame[sig.column].dropna()
        assert c.get(sig.rel, 0) == len(present), sig.rel
        assert c.get(sig.label, 0) == present.nunique(), sig.label
    assert summary.signal_links == sum(c.get(s.rel, 0) for s in schema.SIGNALS)

    # SAME_FACE links are exactly the exact-kNN pairs above the threshold
    expected = face_pairs(batch.faces, batch.face_ids, settings.same_face_threshold, settings.face_link_k)
    want = {tuple(sorted((a, b))) for a, b in zip(expected["a"], expected["b"], strict=True)}
    got = clean_store.read("MATCH (a:Account)-[r:SAME_FACE]->(b:Account) RETURN a.id AS a, b.id AS b")
    assert {(r["a"], r["b"]) for r in got} == want
    assert want, "the generated sample should contain repeated faces"
    assert summary.same_face_links == len(want)

    # faces persisted in the store and in the saved index agree
    index = FaceIndex.load(settings.face_index_path)
    assert set(index.ids()) == set(batch.face_ids)
    row = clean_store.read("MATCH (a:Account {id: $id}) RETURN a.face AS f", id=batch.face_ids[0])[0]
    np.testing.assert_allclose(decode_faces([row["f"]], settings.face_dim)[0], batch.faces[0], atol=1e-6)
    assert not journal_path(settings).exists()


def test_reingest_changes_nothing_and_a_changed_row_is_an_update(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    path = write_parquet(apps, tmp_path / "apps.parquet")
    ingest_files([path], settings, clean_store, progress=False)
    before = snapshot(clean_store)

    again = ingest_files([path], settings, clean_store, progress=False)
    assert (again.new_accounts, again.updated, again.unchanged) == (0, 0, N)
    assert snapshot(clean_store) == before

    changed = apps.copy()
    changed.loc[5, "email"] = "someone.new@example.org"
    path2 = write_parquet(changed, tmp_path / "apps2.parquet")
    upd = ingest_files([path2], settings, clean_store, progress=False)
    assert (upd.new_accounts, upd.updated, upd.unchanged) == (0, 1, N - 1)
    app = apps.loc[5, "application_id"]
    emails = clean_store.read("MATCH (:Account {id: $id})-[:HAS_EMAIL]->(e) RETURN e.id AS e", id=app)
    new_key = prepare_file(path2, settings).frame.set_index("application_id").loc[app, "email"]
    assert [r["e"] for r in emails] == [new_key]
    assert counts(clean_store)["Account"] == N
    # the update kept its face links: same snapshot apart from that account's email
    nodes, rels = snapshot(clean_store)
    assert [r for r in rels if r[0] == "SAME_FACE"] == [r for r in before[1] if r[0] == "SAME_FACE"]


def test_rejected_rows_are_reported_and_the_rest_loads(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    bad = apps.head(10).copy()
    bad.loc[0, "created_at"] = "not a date"
    bad.loc[1, "application_id"] = None
    bad.loc[2, "face_embedding"] = np.zeros(settings.face_dim, np.float32)
    path = write_parquet(bad, tmp_path / "bad.parquet")
    summary = ingest_files([path], settings, clean_store, progress=False)
    assert (summary.accepted, summary.rejected) == (7, 3)
    assert summary.rejects_files and (tmp_path / summary.rejects_files[0]).exists()
    assert counts(clean_store)["Account"] == 7


def test_raw_pii_is_never_stored(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    path = write_parquet(apps, tmp_path / "apps.parquet")
    ingest_files([path], settings, clean_store, progress=False)
    pii_cols = ("full_name", "date_of_birth", "national_id", "email", "phone", "address", "ip",
                "device_id", "document_number", "document_template")  # fmt: skip
    raw = {str(v) for c in pii_cols for v in apps[c].dropna() if len(str(v)) >= 5}
    raw |= {str(v).lower() for v in raw}
    stored: list[str] = []
    for row in clean_store.read("MATCH (n) RETURN properties(n) AS p"):
        stored += [str(v) for v in row["p"].values()]
    for row in clean_store.read("MATCH ()-[r]->() RETURN properties(r) AS p"):
        stored += [str(v) for v in (row["p"] or {}).values()]
    assert len(stored) > N
    leaks = [(r, s) for s in stored for r in raw if r in s]
    assert not leaks, leaks[:5]
    # nor in the face index file or anything else ingest wrote
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.suffix != ".parquet":
            blob = f.read_bytes()
            assert not [r for r in raw if r.encode() in blob], f


def test_threshold_comes_from_settings_calibration_or_fails_clearly(tmp_path):
    s = Settings(data_dir=tmp_path, pseudonym_key="k" * 32)
    with pytest.raises(ThresholdMissing, match="ringwatch faces calibrate"):
        same_face_threshold(s)
    assert same_face_threshold(s, 0.5) == 0.5
    s.face_calibration_path.write_text(json.dumps({"same_face_threshold": 0.61}))
    assert same_face_threshold(s) == 0.61
    assert same_face_threshold(Settings(data_dir=tmp_path, same_face_threshold=0.3)) == 0.3


def test_ingest_records_answers_per_record(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    index = FaceIndex(settings.face_dim)
    recs = apps.head(5).to_dict("records")
    for r in recs:
        r["face_embedding"] = [float(x) for x in r["face_embedding"]]
    first = ingest_records(recs[:3], settings, clean_store, index)
    assert [o.status for o in first.records] == ["new"] * 3

    twin = dict(recs[3], application_id="same-face-as-0", face_embedding=recs[0]["face_embedding"])
    broken = dict(recs[4], date_of_birth="31/31/1990")
    res = ingest_records([recs[0], twin, broken], settings, clean_store, index)
    assert [o.status for o in res.records] == ["unchanged", "new", "rejected"]
    assert res.records[1].face_matches and res.records[1].face_matches[0][0] == recs[0]["application_id"]
    assert res.records[1].face_matches[0][1] > 0.99
    assert any("date_of_birth" in reason for reason in res.records[2].reasons)
    link = clean_store.read(
        "MATCH (a:Account)-[r:SAME_FACE]-(b:Account {id: 'same-face-as-0'}) RETURN a.id AS a",
    )
    assert [r["a"] for r in link] == [recs[0]["application_id"]]
    assert len(index) == 4


def test_face_index_is_rebuilt_from_the_store(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    ingest_files([write_parquet(apps, tmp_path / "a.parquet")], settings, clean_store, progress=False)
    saved = FaceIndex.load(settings.face_index_path)
    settings.face_index_path.unlink()
    rebuilt = rebuild_face_index(clean_store, settings)
    assert sorted(rebuilt.ids()) == sorted(saved.ids())
    q = decode_faces(
        [clean_store.read("MATCH (a:Account) WHERE a.face IS NOT NULL RETURN a.face AS f LIMIT 1")[0]["f"]],
        settings.face_dim,
    )
    assert rebuilt.search(q, 3) == saved.search(q, 3)


def test_a_lost_index_is_caught_up_on_the_next_run(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    path = write_parquet(apps, tmp_path / "a.parquet")
    ingest_files([path], settings, clean_store, progress=False)
    settings.face_index_path.unlink()
    ingest_files([path], settings, clean_store, progress=False)
    n_faces = clean_store.read("MATCH (a:Account) WHERE a.face IS NOT NULL RETURN count(a) AS n")[0]["n"]
    assert len(FaceIndex.load(settings.face_index_path)) == n_faces > 0


def test_concurrent_overlapping_ingests_make_no_duplicates(clean_store, apps, tmp_path):
    """Two writers, overlapping rows, one store: MERGE on ids plus retries keep every node unique."""
    paths, setts = [], []
    for k, (lo, hi) in enumerate(((0, 40), (20, 60))):
        d = tmp_path / f"w{k}"
        d.mkdir()
        paths.append(write_parquet(apps.iloc[lo:hi], d / "part.parquet"))
        setts.append(ingest_settings(d, batch_size=10))
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            ingest_files([paths[k]], setts[k], clean_store, progress=False)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for label in ("Account", *schema.SIGNAL_LABELS):
        row = clean_store.read(f"MATCH (n:{label}) RETURN count(n) AS n, count(DISTINCT n.id) AS d")[0]
        assert row["n"] == row["d"], label
    assert counts(clean_store)["Account"] == N
    dup = clean_store.read(
        "MATCH (a:Account)-[r]->(s) WITH a.id AS a, type(r) AS t, s.id AS s, count(r) AS n WHERE n > 1 "
        "RETURN count(*) AS dup"
    )
    assert dup[0]["dup"] == 0


def test_a_changed_face_replaces_the_indexed_face_and_its_links(clean_store, apps, tmp_path):
    settings = ingest_settings(tmp_path)
    ingest_files([write_parquet(apps, tmp_path / "a.parquet")], settings, clean_store, progress=False)
    changed = apps.copy()
    target, donor = changed.loc[7, "application_id"], changed.loc[30, "application_id"]
    changed.at[7, "face_embedding"] = changed.at[30, "face_embedding"]
    summary = ingest_files(
        [write_parquet(changed, tmp_path / "b.parquet")], settings, clean_store, progress=False
    )
    assert summary.updated == 1
    index = FaceIndex.load(settings.face_index_path)
    (top,) = index.search(np.asarray(apps.loc[30, "face_embedding"], np.float32), 1)
    assert {i for i, _ in index.search(np.asarray(apps.loc[30, "face_embedding"], np.float32), 2)[0]} == {
        target,
        donor,
    }
    assert top[0][1] > 0.999
    linked = clean_store.read(
        "MATCH (:Account {id: $id})-[r:SAME_FACE]-(b:Account) RETURN b.id AS b, r.similarity AS s", id=target
    )
    assert donor in {r["b"] for r in linked}
    assert (
        len(index)
        == clean_store.read("MATCH (a:Account) WHERE a.face IS NOT NULL RETURN count(a) AS n")[0]["n"]
    )
