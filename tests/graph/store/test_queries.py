"""Investigator queries against a real ArcadeDB loaded by ``ingest_files``; expectations come from the
prepared frame (pandas), not from the store."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from graph import schema
from graph.contract.prepare import prepare_file
from graph.ingest.load import ingest_files
from graph.store.queries import (
    account_profile,
    neighbourhood,
    ring_members,
    shared_signal_accounts,
    top_rings,
)

from ..ingest_helpers import applications, ingest_settings, write_parquet


@pytest.fixture
def loaded(clean_store, tmp_path):
    apps = applications(120, seed=21)
    settings = ingest_settings(tmp_path)
    path = write_parquet(apps, tmp_path / "apps.parquet")
    ingest_files([path], settings, clean_store, progress=False)
    return clean_store, prepare_file(path, settings).frame


def _sharers(frame: pd.DataFrame, app: str) -> dict[str, set[tuple[str, str]]]:
    """Other account -> {(rel, signal)} it shares with ``app``, computed from the frame."""
    me = frame.set_index("application_id").loc[app]
    out: dict[str, set] = {}
    for sig in schema.SIGNALS:
        v = me[sig.column]
        if v is None or pd.isna(v):
            continue
        for other in frame.loc[frame[sig.column] == v, "application_id"]:
            if other != app:
                out.setdefault(other, set()).add((sig.rel, v))
    return out


def _busiest(frame: pd.DataFrame) -> str:
    """The account that shares the most signals with others (a household or ring member)."""
    return max(frame["application_id"], key=lambda a: (len(_sharers(frame, a)), a))


def test_account_profile_counts_sharers(loaded):
    store, frame = loaded
    app = _busiest(frame)
    profile = account_profile(store, app)
    me = frame.set_index("application_id").loc[app]
    want = {
        (s.rel, me[s.column]): int((frame[s.column] == me[s.column]).sum()) - 1
        for s in schema.SIGNALS
        if me[s.column] is not None and not pd.isna(me[s.column])
    }
    assert {(s.rel, s.signal): s.shared_with for s in profile.signals} == want
    assert profile.created_at == me["created_at"]
    assert "face" not in profile.model_dump()
    assert account_profile(store, "no-such-account") is None


def test_shared_signal_accounts_with_evidence_and_hubs(loaded):
    store, frame = loaded
    app = _busiest(frame)
    want = _sharers(frame, app)
    got = shared_signal_accounts(store, app, limit=1000)
    assert {a.account_id: {(e.rel, e.signal) for e in a.shared} for a in got.accounts if a.shared} == want
    counts = [len(a.shared) + (a.face_similarity is not None) for a in got.accounts]
    assert counts == sorted(counts, reverse=True)

    capped = shared_signal_accounts(store, app, limit=1000, max_degree=2)
    hub_signals = {(h.rel, h.signal) for h in capped.skipped_hubs}
    assert hub_signals and all(h.accounts > 2 for h in capped.skipped_hubs)
    for a in capped.accounts:
        assert not {(e.rel, e.signal) for e in a.shared} & hub_signals


def test_neighbourhood_is_bounded_and_capped(loaded):
    store, frame = loaded
    app = _busiest(frame)
    one = neighbourhood(store, app, hops=1, hub_degree=10_000)
    n_signals = sum(
        1 for s in schema.SIGNALS if frame.set_index("application_id").loc[app, s.column] is not None
    )
    faces = store.read("MATCH (:Account {id: $id})-[:SAME_FACE]-(b) RETURN count(b) AS n", id=app)[0]["n"]
    assert len(one.nodes) == 1 + n_signals + faces
    assert len(one.edges) == n_signals + faces
    assert not one.truncated

    two = neighbourhood(store, app, hops=2, hub_degree=10_000, max_nodes=10_000)
    accounts = {n.id for n in two.nodes if n.label == "Account"}
    assert set(_sharers(frame, app)) <= accounts
    ids = {n.id for n in two.nodes}
    assert all(e.source in ids and e.target in ids for e in two.edges)

    small = neighbourhood(store, app, hops=3, max_nodes=8, hub_degree=10_000)
    assert len(small.nodes) <= 8 and small.truncated
    hubs = neighbourhood(store, app, hops=2, hub_degree=2)
    assert hubs.truncated and any(n.degree and n.degree > 2 and not n.expanded for n in hubs.nodes)
    assert neighbourhood(store, "missing") is None


def test_rings_top_and_members_with_evidence(loaded):
    store, frame = loaded
    app = _busiest(frame)
    members = [app, *sorted(_sharers(frame, app))[:3]]
    store.write(
        "UNWIND $rings AS g CREATE (:Ring {id: g.id, score: g.score, size: g.size, reasons: ['shared signals']})",
        rings=[
            {"id": "ring-a", "score": 0.9, "size": len(members)},
            {"id": "ring-b", "score": 0.4, "size": 2},
        ],
    )
    store.write(
        "UNWIND $ids AS id MATCH (a:Account {id: id}) MATCH (r:Ring {id: 'ring-a'}) CREATE (a)-[:MEMBER_OF]->(r)",
        ids=members,
    )
    store.write(
        "MATCH (r:Ring {id: 'ring-a'}) "
        "CREATE (r)-[:REVIEWED]->(:Review {id: 'v1', decision: 'dismissed', by: 'x', at: '2026-01-01T00:00:00Z'}) "
        "CREATE (r)-[:REVIEWED]->(:Review {id: 'v2', decision: 'confirmed', by: 'y', at: '2026-02-01T00:00:00Z'})"
    )
    top = top_rings(store, limit=10)
    assert [r.id for r in top] == ["ring-a", "ring-b"]
    assert top[0].last_review == "confirmed" and top[1].last_review is None
    assert [r.id for r in top_rings(store, min_score=0.5)] == ["ring-a"]

    detail = ring_members(store, "ring-a")
    assert sorted(m.id for m in detail.members) == sorted(members)
    sub = frame[frame["application_id"].isin(members)]
    want = {}
    for s in schema.SIGNALS:
        for v, n in Counter(sub[s.column].dropna()).items():
            if n > 1:
                want[(s.rel, v)] = (n, int((frame[s.column] == v).sum()))
    got = {(e.rel, e.signal): (e.members_sharing, e.accounts_overall) for e in detail.evidence}
    assert got == want and want
    assert ring_members(store, "nope") is None
