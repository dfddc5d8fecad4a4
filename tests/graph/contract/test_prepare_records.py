"""``prepare_records`` (the API's row-by-row preparation) must give exactly what ``prepare`` gives: the same
pseudonyms, timestamps and content hash (else a file re-ingest of an API application would look changed),
and the same rejects (it hands anything it would reject to ``prepare``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import SecretStr

from graph.contract.io import records_frame
from graph.contract.prepare import prepare, prepare_records
from graph.contract.pseudonymise import Pseudonymiser
from graph.settings import Settings
from graph.synth.dataset import generate
from tests.graph.contract_rows import BREAKAGES, DIM, valid_rows

P = Pseudonymiser(b"prepare-records-test-key-0123456789")


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("prep"), face_dim=DIM, pseudonym_key=SecretStr("x" * 32))


def _same(fast, full) -> None:
    a, b = fast.frame, full.frame
    assert sorted(a.columns) == sorted(b.columns)
    for c in b.columns:
        left, right = a[c].to_numpy(dtype=object), b[c].to_numpy(dtype=object)
        assert [None if x is None or x != x else x for x in left] == [
            None if x is None or x != x else x for x in right
        ], c
        assert a[c].dtype == b[c].dtype, c
    np.testing.assert_array_equal(fast.faces, full.faces)
    assert list(fast.face_ids) == list(full.face_ids)
    assert fast.rejects.to_dict("records") == full.rejects.to_dict("records")


def _fast(records, settings, monkeypatch):
    """``prepare_records`` that must not hand over to ``prepare`` (clean records take the fast path)."""
    with monkeypatch.context() as m:
        m.setattr("graph.contract.prepare.prepare", lambda *a, **k: pytest.fail("fell back to prepare"))
        return prepare_records(records, settings, P)


def test_contract_rows_match_prepare(settings, monkeypatch) -> None:
    rows = valid_rows(40)
    rows[3]["face_embedding"] = None
    rows[4]["created_at"] = "2026-02-03T04:05:06.789123+02:00"  # offset and microseconds
    rows[5]["created_at"] = "2026-02-03T04:05:06"  # no offset: UTC
    rows[6]["email"] = "  First.Last+promo@GoogleMail.com "
    rows[7]["ip"] = "::ffff:10.1.2.3"
    rows[8]["liveness_score"] = None
    rows[9]["document_type"] = "   "
    rows[10]["label"] = 1
    for n in (1, 3, 40):
        _same(_fast(rows[:n], settings, monkeypatch), prepare(records_frame(rows[:n]), settings, P))


def _given(v) -> bool:
    return v is not None and not (isinstance(v, float) and v != v)


def test_generated_applications_match_prepare(settings, monkeypatch) -> None:
    """JSON records from the generator, as the API receives them (missing fields left out)."""
    apps, _ = generate(300, seed=3)
    dim = len(apps["face_embedding"].dropna().iloc[0])
    s = settings.model_copy(update={"face_dim": dim})
    records = [
        json.loads(json.dumps({k: v for k, v in r.items() if _given(v)}, default=lambda o: o.tolist()))
        for r in apps.head(60).to_dict("records")
    ]
    for lo in range(0, len(records), 7):
        chunk = records[lo : lo + 7]
        _same(_fast(chunk, s, monkeypatch), prepare(records_frame(chunk), s, P))


@pytest.mark.parametrize("name,column,mutate", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_rejects_read_the_same(settings, name, column, mutate) -> None:
    rows = valid_rows(3)
    mutate(rows[1])
    fast, full = prepare_records(rows, settings, P), prepare(records_frame(rows), settings, P)
    _same(fast, full)
    assert column in set(fast.rejects["column"])


def test_duplicate_ids_fall_back(settings) -> None:
    rows = valid_rows(2)
    rows[1]["application_id"] = rows[0]["application_id"]
    fast = prepare_records(rows, settings, P)
    assert len(fast.frame) == 1 and len(fast.rejects) == 1
