"""Neo4j Browser case review: every saved query runs on a real store, the bands follow the scores, the style
sheet names only labels and types the graph has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graph import schema
from graph.store import browser
from graph.store.bolt import GraphStore

GRAPH = """
CREATE (a1:Account {id: 'a1', risk_score: 0.93}), (a2:Account {id: 'a2', risk_score: 0.61}),
       (a3:Account {id: 'a3', risk_score: 0.05}), (a4:Account {id: 'a4'}),
       (d:Device {id: 'dev-1'}), (p:Phone {id: 'ph-1'}), (ip:IP {id: 'ip-1'}),
       (r:Ring {id: 'ring-1', score: 0.9, size: 2, reasons: ['shared device', 'same face']}),
       (q:Ring {id: 'ring-2', score: 0.3, size: 2, reasons: ['shared phone']}),
       (a1)-[:USED_DEVICE]->(d), (a2)-[:USED_DEVICE]->(d), (a3)-[:USED_DEVICE]->(d),
       (a1)-[:HAS_PHONE]->(p), (a2)-[:HAS_PHONE]->(p), (a1)-[:FROM_IP]->(ip), (a4)-[:FROM_IP]->(ip),
       (a1)-[:SAME_FACE {similarity: 0.91}]->(a2),
       (a1)-[:MEMBER_OF]->(r), (a2)-[:MEMBER_OF]->(r), (a3)-[:MEMBER_OF]->(q), (a4)-[:MEMBER_OF]->(q),
       (r)-[:REVIEWED]->(:Review {id: 'rev-1', ring_id: 'ring-1', decision: 'confirmed', by: 'key-1',
                                  at: '2026-01-02T03:04:05Z', reason: 'same face, shared device',
                                  members: ['a1', 'a2']})
"""
OVERRIDES = {"ring_id": "ring-1", "account_id": "a1"}


@pytest.fixture
def case_store(clean_store: GraphStore) -> GraphStore:
    clean_store.write(GRAPH)
    return clean_store


def test_saved_queries_parse_into_named_parameterised_blocks() -> None:
    queries = browser.load_saved_queries()
    names = [q.name for q in queries]
    for wanted in ("Top rings", "Ring with its evidence", "Account neighbourhood", "Recent reviews"):
        assert wanted in names
    for q in queries:
        used = set(re.findall(r"\$(\w+)", q.query))
        assert used == set(q.params), f"{q.name}: uses {used}, declares {set(q.params)}"
        assert ":param" not in q.query and q.description


def test_every_saved_query_runs_and_finds_the_case(case_store: GraphStore) -> None:
    results = {}
    for q in browser.load_saved_queries():
        # the defaults are Cypher literals: let the server evaluate them, then point at the test case
        params = {k: case_store.read(f"RETURN {v} AS v")[0]["v"] for k, v in q.params.items()}
        params.update({k: v for k, v in OVERRIDES.items() if k in params})
        results[q.name] = case_store.read(q.query, **params)

    assert [r["ring"] for r in results["Top rings"]] == ["ring-1", "ring-2"]
    assert results["Top rings"][0]["review"] == "confirmed"
    assert results["Top rings"][1]["review"] == "unreviewed"
    evidence = {(r["via"], r["signal_id"]): r for r in results["Ring evidence table"]}
    assert set(evidence) == {("USED_DEVICE", "dev-1"), ("HAS_PHONE", "ph-1")}
    assert evidence[("USED_DEVICE", "dev-1")]["accounts_overall"] == 3
    assert sorted(evidence[("HAS_PHONE", "ph-1")]["members"]) == ["a1", "a2"]
    assert results["Ring with its evidence"], "the evidence graph is empty"
    neighbours = {row["b"]["id"] for row in results["Account neighbourhood"] if row["b"]}
    assert neighbours == {"a2", "a3", "a4"}
    assert [(r["ring"], r["decision"]) for r in results["Recent reviews"]] == [("ring-1", "confirmed")]
    assert [r["account"] for r in results["High-risk accounts not in a reviewed ring"]] == []


def test_bands_follow_scores_and_rerun_changes_nothing(case_store: GraphStore) -> None:
    first = browser.apply_bands(case_store, high=0.8, medium=0.5)
    assert first == {
        "RiskHigh": 1,
        "RiskMedium": 1,
        "RiskLow": 1,
        "RingHigh": 1,
        "RingMedium": 0,
        "RingLow": 1,
    }
    assert set(browser.apply_bands(case_store).values()) == {0}
    labels = {
        r["id"]: set(r["labels"])
        for r in case_store.read("MATCH (n) WHERE n:Account OR n:Ring RETURN n.id AS id, labels(n) AS labels")
    }
    assert labels["a1"] == {"Account", "RiskHigh"} and labels["a2"] == {"Account", "RiskMedium"}
    assert labels["a4"] == {"Account"}  # unscored: no band
    assert labels["ring-2"] == {"Ring", "RingLow"}

    case_store.write("MATCH (a:Account {id: 'a1'}) SET a.risk_score = 0.1")  # rescored
    assert browser.apply_bands(case_store)["RiskLow"] == 1
    assert set(case_store.read("MATCH (a:Account {id: 'a1'}) RETURN labels(a) AS l")[0]["l"]) == {
        "Account",
        "RiskLow",
    }
    # a banded account is still the one Account with that id: re-ingest MERGEs it, no duplicate
    case_store.write("MERGE (a:Account {id: 'a1'}) SET a.seen = true")
    assert case_store.read("MATCH (a:Account {id: 'a1'}) RETURN count(a) AS c, a.seen AS seen") == [
        {"c": 1, "seen": True}
    ]
    with pytest.raises(ValueError):
        browser.apply_bands(case_store, high=0.4, medium=0.6)


def test_style_sheet_names_only_labels_and_types_the_graph_has() -> None:
    text = browser.STYLE_PATH.read_text()
    assert text.count("{") == text.count("}")
    selectors = re.findall(r"^(node|relationship)((?:\.\w+)*)\s*\{", text, flags=re.MULTILINE)
    band_labels = {label for _, _, bands in browser.BANDED for label in bands.values()}
    known_nodes = {*schema.NODE_LABELS, schema.REVIEW_LABEL, *band_labels}
    known_rels = {s.rel for s in schema.SIGNALS} | {schema.SAME_FACE, schema.MEMBER_OF, schema.REVIEWED}
    seen = set()
    for tag, classes in selectors:
        for name in filter(None, classes.split(".")):
            assert name in (known_nodes if tag == "node" else known_rels), (
                f"{tag}.{name} is not in the schema"
            )
            seen.add(name)
    assert band_labels <= seen and {"Account", "Ring"} <= seen


def test_write_favorites_writes_one_file_per_query_and_the_style(tmp_path: Path) -> None:
    paths = browser.write_favorites(tmp_path / "fav")
    cypher = [p for p in paths if p.suffix == ".cypher"]
    assert len(cypher) == len(browser.load_saved_queries())
    assert (tmp_path / "fav" / "style.grass").read_text() == browser.STYLE_PATH.read_text()
    first = cypher[0].read_text()
    assert (
        first.startswith("// Top rings\n") and ":param limit => 25;" in first and first.rstrip().endswith(";")
    )
