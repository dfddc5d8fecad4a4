"""The identity graph's one store: the official ``neo4j`` driver over Bolt, to Neo4j 5 or the embedded ArcadeDB.

One code path serves both servers (DESIGN.md §5). The rules that keep it correct on both live here, so
callers cannot get them wrong: writes run only in managed transactions (ArcadeDB's auto-commit is not
atomic), batches are built on the client (no ``CALL {} IN TRANSACTIONS``), and a batch that fails on a
transient error or a commit-time uniqueness conflict is retried as a whole, with backoff.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, Literal, TypeVar

from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase, ManagedTransaction
from neo4j.exceptions import (
    AuthError,
    ConstraintError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from graph import schema
from graph.settings import Settings
from graph.store import arcade

log = logging.getLogger(__name__)

Dialect = Literal["neo4j", "arcadedb"]

# Secondary indexes: (label, property). Uniqueness on `id` for every label comes from the constraints.
INDEXES: tuple[tuple[str, str], ...] = (
    ("Account", "ring_id"),
    ("Account", "risk_score"),
    ("Account", "created_at"),
    ("Ring", "score"),
    (schema.REVIEW_LABEL, "at"),
)
_RETRYABLE = (TransientError, ServiceUnavailable, SessionExpired)
T = TypeVar("T")


class StoreError(RuntimeError):
    """The graph store refused or could not run an operation; the message says which and why."""


class ConstraintViolation(StoreError):
    """A write broke a uniqueness constraint (e.g. ``CREATE`` of an ``id`` that already exists)."""


class GraphStore:
    """A Bolt connection to the identity graph. Thread-safe: the driver pools sessions."""

    def __init__(
        self,
        driver: Driver,
        database: str,
        dialect: Dialect,
        batch_size: int = 5000,
        max_attempts: int = 5,
        retry_backoff_s: float = 0.2,
    ) -> None:
        self._driver = driver
        self.database = database
        self._dialect: Dialect = dialect
        self.batch_size = batch_size
        self.max_attempts = max(1, max_attempts)
        self.retry_backoff_s = retry_backoff_s

    @classmethod
    def connect(cls, settings: Settings, start_local: bool = True) -> GraphStore:
        """Neo4j when ``settings.neo4j_uri`` is set; otherwise the managed local ArcadeDB (started if needed)."""
        if settings.neo4j_uri:
            uri, dialect, database = settings.neo4j_uri, "neo4j", settings.neo4j_database
            auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())
        else:
            server = arcade.status(settings)
            if not server.running:
                if not start_local:
                    raise StoreError(
                        f"the embedded ArcadeDB is not running ({server.message}); "
                        "start it with `ringwatch db start` or set RINGWATCH_NEO4J_URI"
                    )
                server = arcade.start(settings)
            uri, dialect, database = server.uri, "arcadedb", server.database or settings.arcadedb_database
            auth = (settings.arcadedb_user, settings.arcadedb_password.get_secret_value())
        driver = GraphDatabase.driver(uri, auth=auth)
        store = cls(
            driver,
            database,
            dialect,
            batch_size=settings.batch_size,
            max_attempts=settings.store_max_attempts,
            retry_backoff_s=settings.store_retry_backoff_s,
        )
        try:
            driver.verify_connectivity()
        except AuthError as exc:
            driver.close()
            hint = (
                " (the embedded server keeps the root password it was first started with, in "
                f"{settings.store_dir / 'databases' / 'config'})"
                if dialect == "arcadedb"
                else ""
            )
            raise StoreError(f"authentication to {uri} failed{hint}: {exc.message}") from exc
        except (DriverError, Neo4jError) as exc:
            driver.close()
            raise StoreError(f"cannot reach the graph store at {uri}: {exc}") from exc
        log.info("graph store connected: %s at %s, database %s", dialect, uri, database)
        return store

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def read(self, query: str, /, **params: Any) -> list[dict]:
        """Run a read query in a managed read transaction; each record as a dict."""
        return self._run(READ_ACCESS, _collect, query, params)

    def read_chunks(
        self, query: str, consume: Callable[[Iterator[list[tuple]]], T], /, chunk: int = 10_000, **params: Any
    ) -> T:
        """Stream a read query's records (tuples of values) to ``consume``, ``chunk`` at a time, in one managed
        read transaction; returns what ``consume`` returns.

        For results too large to hold as dicts (the whole-graph export): records are pulled ``chunk`` at a
        time, never turned into dicts, and ``consume`` sees them while the server computes the next ones. If
        the transaction is retried, ``consume`` is called again from the start, so it must build its state
        afresh on each call.
        """
        return self._run(READ_ACCESS, lambda result: consume(_chunks(result, chunk)), query, params, chunk)

    def write(self, query: str, /, **params: Any) -> list[dict]:
        """Run a write query in its own managed transaction, retried as a whole on transient failures."""
        return self._run(WRITE_ACCESS, _collect, query, params)

    def write_batches(
        self,
        query: str,
        rows: Iterable[dict],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write ``rows`` through ``query`` (which starts ``UNWIND $rows AS row``), one transaction per batch.

        Each batch commits or fails whole. A batch that still fails after its retries raises, and the batches
        before it stay committed: callers make their queries idempotent (``MERGE`` on ``id``) so a re-run
        picks up where it stopped. ``progress`` is called with each committed batch's row count.
        Returns the number of rows written.
        """
        size = self.batch_size if batch_size is None else batch_size
        if size < 1:
            raise ValueError(f"batch_size must be positive, got {size}")
        if "$rows" not in query:
            raise ValueError("a batched query must read its rows from $rows (UNWIND $rows AS row ...)")
        written = 0
        for batch in _chunks(rows, size):
            self._run(WRITE_ACCESS, _consume, query, {"rows": batch})
            written += len(batch)
            if progress is not None:
                progress(len(batch))
        return written

    def ensure_schema(self) -> None:
        """Uniqueness on ``id`` for every node label, plus the secondary indexes. Safe to run any number of times."""
        for label in (*schema.NODE_LABELS, schema.REVIEW_LABEL):
            self.write(
                f"CREATE CONSTRAINT {label.lower()}_id IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE"
            )
        for label, prop in INDEXES:
            self.write(f"CREATE INDEX {label.lower()}_{prop} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})")
        if self._dialect == "neo4j":
            # Neo4j populates indexes in the background; ArcadeDB builds them before the statement returns
            # (and has no db.awaitIndexes).
            self._run(WRITE_ACCESS, _consume, "CALL db.awaitIndexes(300)", {})

    def delete_all(self, batch_size: int | None = None) -> int:
        """Delete every node and relationship, in bounded transactions; keeps the schema. For tests and demos."""
        size = batch_size or self.batch_size
        deleted = 0
        while True:
            rows = self.write("MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted",
                              limit=size)  # fmt: skip
            count = rows[0]["deleted"] if rows else 0
            deleted += count
            if count == 0:
                return deleted

    def ping(self) -> bool:
        """True when the server answers a trivial query; never raises (for health checks)."""
        try:
            with self._driver.session(database=self.database, default_access_mode=READ_ACCESS) as session:
                return session.execute_read(lambda tx: tx.run("RETURN 1 AS ok").single()["ok"]) == 1
        except (DriverError, Neo4jError, OSError) as exc:
            log.warning("graph store ping failed: %s", exc)
            return False

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(
        self,
        mode: str,
        collect: Callable[[Any], Any],
        query: str,
        params: dict,
        fetch_size: int | None = None,
    ) -> Any:
        """One managed transaction, retried whole.

        The driver already retries transient errors inside ``execute_*``; this loop adds what it does not:
        commit-time uniqueness conflicts between concurrent MERGEs (ArcadeDB reports them as constraint
        errors), and transient failures that outlast the driver's own retry window.
        """

        def work(tx: ManagedTransaction) -> Any:
            return collect(tx.run(query, params))

        attempt = 0
        while True:
            attempt += 1
            try:
                extra = {} if fetch_size is None else {"fetch_size": fetch_size}
                with self._driver.session(
                    database=self.database, default_access_mode=mode, **extra
                ) as session:
                    run = session.execute_write if mode == WRITE_ACCESS else session.execute_read
                    return run(work)
            except ConstraintError as exc:
                # a conflict between concurrent MERGEs resolves on retry; a real duplicate surfaces here
                if attempt >= self.max_attempts:
                    raise ConstraintViolation(
                        f"uniqueness constraint violated (after {attempt} attempts): {exc.message}"
                    ) from exc
                self._backoff(attempt, exc)
            except _RETRYABLE as exc:
                if attempt >= self.max_attempts:
                    raise StoreError(f"graph store operation failed after {attempt} attempts: {exc}") from exc
                self._backoff(attempt, exc)
            except Neo4jError as exc:
                if exc.is_retryable() and attempt < self.max_attempts:
                    self._backoff(attempt, exc)
                    continue
                raise StoreError(f"graph store query failed: {exc.message or exc}") from exc
            except DriverError as exc:
                raise StoreError(f"graph store unavailable: {exc}") from exc

    def _backoff(self, attempt: int, exc: Exception) -> None:
        delay = self.retry_backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random())
        log.warning(
            "graph store: attempt %d failed (%s); retrying in %.2f s", attempt, type(exc).__name__, delay
        )
        time.sleep(delay)


def _collect(result: Any) -> list[dict]:
    return [record.data() for record in result]


def _consume(result: Any) -> None:
    result.consume()


def _chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch
