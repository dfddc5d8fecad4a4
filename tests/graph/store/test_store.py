"""GraphStore against a real server over Bolt: ArcadeDB always, Neo4j too when RINGWATCH_NEO4J_URI is set."""

from __future__ import annotations

import threading

import pytest
from neo4j.exceptions import TransientError

from graph import schema
from graph.store.bolt import ConstraintViolation, GraphStore, StoreError

UPSERT = "UNWIND $rows AS row MERGE (a:Account {id: row.id}) SET a.n = row.n"
CREATE = "UNWIND $rows AS row CREATE (a:Account {id: row.id, n: row.n})"


def count(store: GraphStore, label: str = "Account") -> int:
    return store.read(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"]


def test_ping_and_dialect(store: GraphStore) -> None:
    assert store.ping()
    assert store.dialect in ("arcadedb", "neo4j")
    assert store.read("RETURN $x + 1 AS y", x=41) == [{"y": 42}]


def test_ensure_schema_is_idempotent_and_enforces_uniqueness_on_every_label(
    clean_store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clean_store, "max_attempts", 1)  # a real duplicate needs no retries to prove it
    clean_store.ensure_schema()
    clean_store.ensure_schema()
    for label in (*schema.NODE_LABELS, schema.REVIEW_LABEL):
        clean_store.write(f"CREATE (:{label} {{id: $id}})", id="same")
        with pytest.raises(ConstraintViolation):
            clean_store.write(f"CREATE (:{label} {{id: $id}})", id="same")
        assert count(clean_store, label) == 1, label


def test_constraint_violation_is_a_clear_error_and_changes_nothing(clean_store: GraphStore) -> None:
    clean_store.write("CREATE (:Account {id: 'acct-1', n: 1})")
    with pytest.raises(ConstraintViolation, match="uniqueness constraint violated") as info:
        clean_store.write("CREATE (:Account {id: 'acct-2', n: 2}) CREATE (:Account {id: 'acct-1', n: 3})")
    assert "acct-1" in str(info.value)
    rows = clean_store.read("MATCH (a:Account) RETURN a.id AS id, a.n AS n ORDER BY id")
    assert rows == [{"id": "acct-1", "n": 1}]


def test_write_batches_commits_every_row_in_batches(clean_store: GraphStore) -> None:
    seen: list[int] = []
    rows = ({"id": f"a{i}", "n": i} for i in range(2500))  # a generator: batches are cut lazily
    written = clean_store.write_batches(UPSERT, rows, batch_size=1000, progress=seen.append)
    assert written == 2500
    assert seen == [1000, 1000, 500]
    assert count(clean_store) == 2500
    # idempotent: the same rows again change no count
    assert clean_store.write_batches(UPSERT, [{"id": f"a{i}", "n": i} for i in range(2500)]) == 2500
    assert count(clean_store) == 2500
    assert clean_store.read("MATCH (a:Account {id: 'a2499'}) RETURN a.n AS n") == [{"n": 2499}]


def test_write_batches_rejects_a_query_without_rows(clean_store: GraphStore) -> None:
    with pytest.raises(ValueError, match=r"\$rows"):
        clean_store.write_batches("MERGE (a:Account {id: 'x'})", [{"id": "x"}])
    with pytest.raises(ValueError, match="batch_size"):
        clean_store.write_batches(UPSERT, [{"id": "x", "n": 1}], batch_size=0)


def test_a_failing_batch_leaves_nothing_half_written(clean_store: GraphStore) -> None:
    clean_store.write("CREATE (:Account {id: 'taken', n: 0})")
    rows = [{"id": f"b{i}", "n": i} for i in range(10)]
    rows[7]["id"] = "taken"  # in the second batch of 5
    with pytest.raises(ConstraintViolation):
        clean_store.write_batches(CREATE, rows, batch_size=5)
    ids = {r["id"] for r in clean_store.read("MATCH (a:Account) RETURN a.id AS id")}
    assert ids == {"taken", "b0", "b1", "b2", "b3", "b4"}  # first batch committed, second not at all


def test_a_runtime_error_mid_batch_rolls_the_batch_back(clean_store: GraphStore) -> None:
    rows = [{"id": "c1", "d": 1}, {"id": "c2", "d": 1}, {"id": "c3", "d": 0}]
    with pytest.raises(StoreError):
        clean_store.write("UNWIND $rows AS row CREATE (:Account {id: row.id, q: 10 / row.d})", rows=rows)
    assert count(clean_store) == 0


def test_concurrent_overlapping_batches_make_no_duplicates(clean_store: GraphStore) -> None:
    """Three writers MERGE the same accounts, devices and links: commit-time conflicts are retried away."""
    query = (
        "UNWIND $rows AS row MERGE (a:Account {id: row.id}) SET a.writer = row.w "
        "MERGE (d:Device {id: row.dev}) MERGE (a)-[:USED_DEVICE]->(d)"
    )
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        rows = [{"id": f"a{i}", "w": w, "dev": f"d{i % 40}"} for i in range(1200)]
        try:
            clean_store.write_batches(query, rows[::-1] if w % 2 else rows, batch_size=300)
        except BaseException as exc:  # surfaced below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert clean_store.read("MATCH (a:Account) RETURN count(a) AS c, count(DISTINCT a.id) AS d") == [
        {"c": 1200, "d": 1200}
    ]
    assert count(clean_store, "Device") == 40
    assert clean_store.read("MATCH (:Account)-[r:USED_DEVICE]->(:Device) RETURN count(r) AS c") == [
        {"c": 1200}
    ]


def test_timestamps_pass_as_iso_strings(clean_store: GraphStore) -> None:
    clean_store.write("CREATE (:Account {id: 't1', at: datetime($iso)})", iso="2024-03-01T12:30:00Z")
    rows = clean_store.read(
        "MATCH (a:Account {id: 't1'}) WHERE a.at >= datetime($since) RETURN a.at.year AS y",
        since="2024-01-01T00:00:00Z",
    )
    assert rows == [{"y": 2024}]


def test_delete_all_empties_the_graph_in_bounded_batches(clean_store: GraphStore) -> None:
    clean_store.write_batches(
        "UNWIND $rows AS row CREATE (a:Account {id: row.id})-[:USED_DEVICE]->(:Device {id: row.id})",
        [{"id": f"x{i}"} for i in range(250)],
    )
    assert clean_store.delete_all(batch_size=100) == 500
    assert clean_store.read("MATCH (n) RETURN count(n) AS c") == [{"c": 0}]
    clean_store.write("CREATE (:Account {id: 'x0'})")  # schema kept: still unique
    with pytest.raises(ConstraintViolation):
        clean_store.write("CREATE (:Account {id: 'x0'})")


class _FlakySession:
    """Stands in for a driver session that fails with a transient error: a real server cannot be made to fail
    transiently on demand, and the retry policy must be pinned exactly."""

    def __init__(self, failures: list[int]) -> None:
        self.failures = failures

    def __enter__(self) -> _FlakySession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute_write(self, work):  # noqa: ANN001
        self.failures[0] += 1
        if self.failures[0] <= self.failures[1]:
            raise TransientError("Neo.TransientError.Transaction.DeadlockDetected", "deadlock")
        return [{"ok": True}]


class _FlakyDriver:
    def __init__(self, fail_times: int) -> None:
        self.calls = [0, fail_times]

    def session(self, **kwargs: object) -> _FlakySession:
        return _FlakySession(self.calls)


@pytest.mark.parametrize(("fail_times", "succeeds"), [(2, True), (3, False)])
def test_transient_errors_are_retried_then_surface(fail_times: int, succeeds: bool) -> None:
    driver = _FlakyDriver(fail_times)
    store = GraphStore(driver, "db", "arcadedb", max_attempts=3, retry_backoff_s=0.001)  # type: ignore[arg-type]
    if succeeds:
        assert store.write("RETURN 1") == [{"ok": True}]
        assert driver.calls[0] == 3
    else:
        with pytest.raises(StoreError, match="after 3 attempts"):
            store.write("RETURN 1")
