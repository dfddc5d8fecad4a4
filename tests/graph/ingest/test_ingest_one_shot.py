"""The real-time write (``one_shot_rows`` + ``write_one_shot``, one transaction per call) must leave the graph
the bulk path (``ingest_records``) leaves: same nodes, properties, signal links and SAME_FACE links, for new
accounts, accounts whose face matches one written earlier or in the same call, and updated accounts."""

from __future__ import annotations

import pandas as pd
import pytest

from embeddings.index import FaceIndex
from graph.contract.prepare import prepare_records, prepare_rows
from graph.contract.pseudonymise import Pseudonymiser
from graph.ingest.load import face_pairs, ingest_records, one_shot_rows, write_one_shot

from ..ingest_helpers import KEY, applications, ingest_settings, snapshot


@pytest.fixture(scope="module")
def records() -> list[dict]:
    recs = applications(40, seed=5).to_dict("records")
    for r in recs:
        r["face_embedding"] = (
            [float(x) for x in r["face_embedding"]] if r["face_embedding"] is not None else None
        )
        for k, v in list(r.items()):
            if v is None or (isinstance(v, float) and v != v):
                del r[k]
    # a face reused under another identity: once against an earlier account, once within one call
    recs.append(dict(recs[30], application_id="twin-of-30", full_name="Other Person", email="o@example.org"))
    recs.append(dict(recs[37], application_id="twin-of-37", full_name="Third Person", email="t@example.org"))
    return recs


def _one_shot(store, settings, index, recs: list[dict], updated: frozenset = frozenset()) -> None:
    batch = prepare_records(recs, settings, Pseudonymiser(KEY.encode()))
    assert not len(batch.rejects)
    frame = batch.frame
    pos = {a: k for k, a in enumerate(frame["application_id"])}
    face_of = {pos[a]: batch.faces[j] for j, a in enumerate(batch.face_ids)}
    ids = [str(a) for a in batch.face_ids]
    index.add(ids, batch.faces)
    pairs = face_pairs(index, ids, batch.faces, settings.same_face_threshold, settings.face_link_k)
    work = list(range(len(frame)))
    flags = [a in updated for a in frame["application_id"]]
    rows = one_shot_rows(settings, frame, work, flags, face_of, pairs)
    # the API's path: the same rows from prepared dicts, with no frame
    dicts = prepare_rows(recs, settings, Pseudonymiser(KEY.encode()))
    assert one_shot_rows(settings, dicts.rows, work, flags, face_of, pairs) == rows
    write_one_shot(store, rows)


def test_one_shot_writes_what_the_bulk_path_writes(clean_store, records, tmp_path) -> None:
    settings = ingest_settings(tmp_path)
    ingest_records(records, settings, clean_store, FaceIndex(settings.face_dim))
    bulk = snapshot(clean_store)
    assert any(t == "SAME_FACE" and "twin" in a + b for t, a, b, _ in bulk[1])

    clean_store.delete_all()
    index = FaceIndex(settings.face_dim)
    ingest_records(records[:25], settings, clean_store, index)  # history, then decisions of 1 to 5 records
    for lo, hi in ((25, 26), (26, 31), (31, 36), (36, len(records))):
        _one_shot(clean_store, settings, index, records[lo:hi])
    assert snapshot(clean_store) == bulk

    # an update rewrites what the account owned, as the bulk path's update does
    changed = dict(records[30], email="changed@example.net", device_id="another-device")
    _one_shot(clean_store, settings, index, [changed], updated=frozenset({changed["application_id"]}))
    one_shot = snapshot(clean_store)
    clean_store.delete_all()
    index = FaceIndex(settings.face_dim)
    ingest_records(records, settings, clean_store, index)
    ingest_records([changed], settings, clean_store, index)
    assert one_shot == snapshot(clean_store) != bulk


def test_a_failed_write_leaves_nothing(clean_store, records, tmp_path) -> None:
    """One transaction: a row the store refuses takes the others in the same call down with it."""
    settings = ingest_settings(tmp_path)
    batch = prepare_records(records[:3], settings, Pseudonymiser(KEY.encode()))
    empty = pd.DataFrame({"a": [], "b": [], "similarity": []})
    rows = one_shot_rows(settings, batch.frame, [0, 1, 2], [False] * 3, {}, empty)
    rows[2]["props"]["nested"] = {"a": {"b": 1}}  # a map is no property value: the server refuses row 3
    with pytest.raises(Exception):  # noqa: B017 - whichever error the driver raises, nothing may be stored
        write_one_shot(clean_store, rows)
    assert clean_store.read("MATCH (a:Account) RETURN count(a) AS n")[0]["n"] == 0
